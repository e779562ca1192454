"""``bilstm bench``: the training-speed sweep of ``benchmarks/train_speed.py`` (same options).

    bilstm bench --quick                       # a few small CPU cases on every installed backend, seconds each
    bilstm bench --backend jax --quick         # one backend (and its raw framework)
    bilstm bench --budget 1200 [--resume]      # the full sweep on every device present
    bilstm bench --backend jax --data-parallel # also keras.distribution.DataParallel over all local devices

Results go to ./results/bench/<machine>/ (or --out DIR); a folder that already holds a result set
is refused unless --resume (continue it) or --overwrite (replace it). Every argument is checked
before any work: a bad one is one line on stderr and exit status 2.

Each backend runs in its own worker process, so this command imports no framework itself.
"""
from __future__ import annotations


def add_arguments(parser):
    from benchmarks.train_speed import add_arguments as add
    add(parser)


def run(args) -> int:
    from benchmarks.train_speed import run as run_sweep
    return run_sweep(args)


COMMANDS = [("bench", "Time Keras training steps on every backend and device against raw PyTorch and JAX.",
             add_arguments, run)]
