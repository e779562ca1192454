"""``bilstm bench``: the training-speed sweep of ``benchmarks/train_speed.py`` (same options), and
``bilstm bench merge``: shard folders into one result set (``benchmarks/merge.py``).

    bilstm bench --quick                       # a few small CPU cases on every installed backend, seconds each
    bilstm bench --backend jax --quick         # one backend (and its raw framework)
    bilstm bench --budget 1200 [--resume]      # the full sweep on every device present
    bilstm bench --backend jax --data-parallel # also keras.distribution.DataParallel over all local devices
    bilstm bench --backend jax --data-parallel --coordinator HOST:PORT --num-processes N --process-id K
                                               # on each of N hosts: DataParallel over every host's devices
    bilstm bench --shard 2/4                   # shard 2 of 4 of the grid (default: the SLURM array's task)
    bilstm bench merge DIR... --out DIR        # shard folders, from one machine or many, into one result set
    bilstm bench oracle [--models NAME...]     # the oracle's forward vs Keras-JAX's on the test zoo
                                               # (benchmarks/oracle_zoo.py), and bilstm verify's time on each

Results go to ./results/bench/<machine>/ (or --out DIR); a folder that already holds a result set
is refused unless --resume (continue it) or --overwrite (replace it). Every argument is checked
before any work: a bad one is one line on stderr and exit status 2. A merge missing a shard
writes what it has, names the missing shards, and exits with status 1.

Each backend runs in its own worker process, so this command imports no framework itself.
"""
from __future__ import annotations

import argparse

MERGE_HELP = "Combine shard folders (from one machine or many) into one result set and summary."
ORACLE_HELP = ("Time the oracle's forward against Keras-JAX's compiled float32 forward on the test zoo's models, "
               "and bilstm verify on each.")


def add_arguments(parser):
    from benchmarks.merge import add_arguments as add_merge
    from benchmarks.oracle_zoo import add_arguments as add_oracle
    from benchmarks.train_speed import add_arguments as add
    add(parser)
    # `merge` is an optional second command, not an argument of the sweep: said once, in the epilog, rather than
    # in the usage and the positional arguments (where argparse would list it twice, as if it were required).
    parser.epilog = (f"then: bilstm bench merge DIR... --out DIR (its own --help): {MERGE_HELP[0].lower()}{MERGE_HELP[1:]} "
                     f"Also: bilstm bench oracle (its own --help): {ORACLE_HELP[0].lower()}{ORACLE_HELP[1:]}")
    sub = parser.add_subparsers(dest="bench_command", required=False, help=argparse.SUPPRESS)
    merge = sub.add_parser("merge", help=MERGE_HELP, description=MERGE_HELP)
    add_merge(merge)
    oracle = sub.add_parser("oracle", help=ORACLE_HELP, description=ORACLE_HELP)
    add_oracle(oracle)


def run(args) -> int:
    if getattr(args, "bench_command", None) == "merge":
        from benchmarks.merge import run as run_merge
        return run_merge(args)
    if getattr(args, "bench_command", None) == "oracle":
        from benchmarks.oracle_zoo import run as run_oracle
        return run_oracle(args)
    from benchmarks.train_speed import run as run_sweep
    return run_sweep(args)


COMMANDS = [("bench", "Time Keras training steps on every backend and device against raw PyTorch and JAX.",
             add_arguments, run)]
