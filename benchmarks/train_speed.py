"""The training-speed sweep: Keras on every backend against raw PyTorch and raw JAX, on every device present.

Commands (``bilstm bench`` takes the same options):

    python -m benchmarks.train_speed --budget 1200                 # full sweep, results in ./results/bench/<machine>/
    python -m benchmarks.train_speed --budget 1200 --resume        # continue an interrupted sweep
    python -m benchmarks.train_speed --quick --out /tmp/bench      # a few small CPU cases, seconds a backend
    python -m benchmarks.train_speed --backend jax --devices gpu --budget 300
    python -m benchmarks.summary results/bench/<machine>           # redraw figures and summary.md
    python -m benchmarks.train_speed --shard 2/4 ...               # a quarter of the grid (benchmarks/shards.py)
    bilstm bench merge DIR... --out DIR                            # shard folders into one result set

Every argument is checked before any work (no framework imported, nothing
written): a bad value is one line on stderr and exit status 2. Results go to
``./results/bench/<machine>`` (relative to the current folder) unless ``--out``
says otherwise; a folder that already holds a result set is refused unless
``--resume`` (continue it: whole records consistent with this run's settings
are kept, the rest run again, and the log says which) or ``--overwrite``
(replace it). One run a folder: the run holds ``DIR/.bench.lock`` throughout,
and a second run on the folder is refused with the holder's pid.

What is timed: one training step (forward, backward, Adam) of
Bidirectional(LSTM(U, return_sequences=True), "concat") -> TimeDistributed(Dense(1, sigmoid))
with binary cross-entropy, float32, over batch B in {1, 8, 64, 256, 1024}, timesteps T in {10, 100},
units U in {20, 128, 512, 1024}, D = 16 input features, for

    keras  on each installed backend (jax, torch, tensorflow): use_cudnn="auto" ("auto"), and on a GPU also
           use_cudnn=False ("generic"); the record names the kernel that actually ran (benchmarks/keras_step.py)
    raw    torch.nn.LSTM(bidirectional=True) ("native": cuDNN on a GPU, ATen on the CPU); JAX lax.scan
           ("scan"); jax.experimental.rnn.lstm ("cudnn", GPU only) (benchmarks/baselines.py)

FLOP model (benchmarks/cases.py): forward F = T * (2 * (8BU(D+U) + 13BU) + 4BU + 2B), a training step
3F + 12P with P the parameter count; achieved GFLOP/s = step FLOPs / median step time / 1e9.

One framework a process: each group of cases (implementation, framework, device, path) runs in its own
worker process (benchmarks/runner.py), with KERAS_BACKEND, the visible devices and TF32 set in its
environment before any import. The budget is shared out among groups as they start (an even share of
what is left); inside a group, repeats are sized to the time left and cases that cannot fit are recorded
as skipped. Each finished case is written at once (atomically) to DIR/results.json and DIR/results.csv,
so an interrupted sweep resumes with --resume; a worker that dies or overruns has its case recorded as
an error and the next worker carries on. A worker dies with the driver (benchmarks/lifeline.py): killing
the driver stops the sweep, and no worker goes on writing beside the next run.

Across machines: ``--shard K/N`` (default from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT) runs
shard K of N of the grid, by the rule in ``benchmarks/shards.py``; every folder's ``sweep.json`` says
which shard of which grid it holds, and ``bilstm bench merge`` (``benchmarks/merge.py``) combines them.
``--stand-in`` times a step that imports no framework (``benchmarks/stand_in.py``): a rehearsal.

Across processes: ``--data-parallel --coordinator HOST:PORT --num-processes N --process-id K`` (each
defaulting from the environment as ``keras_impl.multiprocess`` reads it: JAX_COORDINATOR_ADDRESS,
KERAS_DISTRIBUTION_*, SLURM's) runs the same command on N processes, one a host: they join one JAX
runtime and time only the data-parallel group, over every device of every process, in lockstep
(``benchmarks/runner.py``); each writes its own folder (default ``.../process-K-of-N``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cases import BATCHES, FEATURES, QUICK_SHAPES, TIMESTEPS, UNITS, Case, shapes
from benchmarks.destination import DEFAULT_RESULTS, check_out_folder, default_folder
from benchmarks.environment import describe_machine, gpu_names, hide_gpus_env, tf32_env, threads_env
from benchmarks.lock import FolderLock, FolderLocked
from benchmarks.runner import base_record
from benchmarks.shards import (SWEEP_FILE, WHOLE, Shard, grid_difference, read_sweep, resolve_shard, select,
                               sweep_definition, write_sweep)
from benchmarks.store import ResultsFileError, ResultsStore, record_problem
from keras_impl.multiprocess import ProcessGroup, resolve_process_group
from keras_impl.options import UsageError, add_backend_option, add_out_option, checked, positive_int

ROOT = Path(__file__).resolve().parent.parent
# What a result set is made of: a folder holding any of these is not written over unasked.
RESULT_FILES = ("results.json", "results.csv", "ratios.csv", "summary.md", SWEEP_FILE)
MACHINE_FIELDS = ("cpu", "cpu_count", "gpus")  # a resumed result set must come from a machine like this one
FRAMEWORKS = ("jax", "torch", "tensorflow")
PREFIX = "bilstm bench"  # every line this command prints starts with it, errors with "bilstm bench: error:"
# In a run with a GPU, where time is short, these shapes run first in every group: the tutorial's
# model, the headline case (B256, T100, U512) and the largest one.
PRIORITY_SHAPES = ((1, 10, 20), (256, 100, 512), (1024, 100, 1024))
GRACE_S = 90.0  # beyond its budget, a worker gets this long (imports, one last step) before it is killed
END_GRACE_S = 30.0  # ... and never later than this after the whole sweep's deadline
MAX_RESTARTS = 3
EXTRA_PASSES = 2    # passes over groups with skipped cases, while time is left
MIN_PASS_S = 60.0   # ... at least this much


def installed(framework: str) -> bool:
    return importlib.util.find_spec(framework) is not None


def detect_devices() -> list[str]:
    return (["gpu"] if gpu_names() else []) + ["cpu"]


def plan(backends: list[str], devices: list[str], *, quick: bool = False, raw: bool = True, tf32: bool = False,
         data_parallel: int = 1, batches=BATCHES, timesteps=TIMESTEPS, units=UNITS,
         shape_list: list[tuple[int, int, int]] | None = None) -> list[Case]:
    """Every case to run, grouped (one group = one worker process) and in running order. ``shape_list``: these
    (B, T, U) instead of ``quick``'s or the product of ``batches``, ``timesteps`` and ``units``."""
    grid = (list(shape_list) if shape_list is not None else list(QUICK_SHAPES) if quick
            else shapes(batches, timesteps, units))
    cases = []
    for device in devices:
        order = grid
        if "gpu" in devices and not quick:  # a GPU run is short of time: headline shapes first, CPU too
            order = [s for s in PRIORITY_SHAPES if s in grid] + [s for s in grid if s not in PRIORITY_SHAPES]
        groups = []  # (impl, framework, path, n_devices): headline comparisons first
        for fw in backends:
            groups.append(("keras", fw, "auto", 1))
            if raw and fw == "torch":
                groups.append(("raw", "torch", "native", 1))
            if raw and fw == "jax":
                groups += [("raw", "jax", "cudnn", 1)] if device == "gpu" else []
                groups.append(("raw", "jax", "scan", 1))
        if device == "gpu":
            groups += [("keras", fw, "generic", 1) for fw in backends]
        if data_parallel > 1 and "jax" in backends and device == devices[0]:  # JAX's default devices
            groups.append(("keras", "jax", "auto", data_parallel))
        for impl, fw, path, n in groups:
            for b, t, u in order:
                if b % n == 0:
                    cases.append(Case(impl, fw, device, path, b, t, u, FEATURES, "float32", tf32 and device == "gpu", n))
    return cases


def group_cases(cases: list[Case]) -> dict[str, list[Case]]:
    groups: dict[str, list[Case]] = {}
    for c in cases:
        groups.setdefault(c.group, []).append(c)
    return groups


def worker_env(case: Case, gpu_present: bool, threads: int | None = None) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if case.impl == "keras":
        env["KERAS_BACKEND"] = case.framework
    if case.device == "cpu" and gpu_present:
        env = hide_gpus_env(env)
    return threads_env(tf32_env(env, case.tf32), threads)


def mark_dead(store: ResultsStore, cases: list[Case], why: str) -> None:
    for c in cases:
        record = store.records.get(c.key)
        if record is not None and record.get("status") == "running":
            store.put({**record, "status": "error", "error": why})


def run_group_worker(name: str, group: list[Case], out: Path, deadline: float, groups_left: int, *,
                     case_seconds: float, threads: int | None, estimate_skip: bool, gpu_present: bool, log,
                     lock_fd: int | None = None, stand_in: bool = False, processes: ProcessGroup | None = None) -> None:
    """Run the pending cases of one group in worker processes (restarted if one dies), with an even
    share of the time left before ``deadline`` among ``groups_left`` groups.

    The worker gets this process's pid and a pipe on its stdin, and dies with this process
    (``benchmarks.lifeline``); it inherits ``lock_fd``, so the folder stays locked while it lives.
    """
    out = Path(out).resolve()  # the worker runs in ROOT: a relative folder would be another one
    for attempt in range(MAX_RESTARTS + 1):
        store = ResultsStore(out)
        pending = [c for c in group if not store.is_done(c.key)]
        if not pending:
            return
        left = deadline - time.time()
        if left <= 0:  # no time to start a worker: say so case by case
            for c in pending:
                if store.status(c.key) != "skipped":
                    store.put({**base_record(c, {}), "status": "skipped", "reason": "time budget used up"})
            log(f"[{name}] {len(pending)} cases not run: time budget used up")
            return
        group_deadline = time.time() + left / groups_left
        started = time.time()
        log(f"[{name}] {len(pending)} cases" + (f" (restart {attempt})" if attempt else ""))
        cmd = [sys.executable, "-m", "benchmarks.runner", "--out", str(out), "--deadline", str(group_deadline),
               "--case-seconds", str(case_seconds), "--cases", json.dumps([c.as_dict() for c in pending]),
               "--parent-pid", str(os.getpid())]
        if not estimate_skip:
            cmd.append("--no-estimate-skip")
        if stand_in:
            cmd.append("--stand-in")
        if processes is not None:
            cmd += ["--process-group", f"{processes.coordinator},{processes.num_processes},{processes.process_id}"]
        # Killed GRACE_S after its own deadline, and never much after the sweep's.
        limit = min(group_deadline + GRACE_S, deadline + END_GRACE_S) - time.time()
        proc = subprocess.Popen(cmd, env=worker_env(group[0], gpu_present, threads), cwd=ROOT, stdin=subprocess.PIPE,
                                pass_fds=() if lock_fd is None else (lock_fd,))
        try:
            rc = proc.wait(timeout=max(1.0, limit))
            why = f"worker process exited with status {rc}"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc, why = -1, "worker killed: the group overran its time budget"
        except BaseException:  # Ctrl-C, or an error here: never leave a worker running on its own
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdin.close()
        mark_dead(ResultsStore(out), group, why)
        done = ResultsStore(out)
        counts: dict[str, int] = {}
        for c in pending:
            counts[done.status(c.key) or "missing"] = counts.get(done.status(c.key) or "missing", 0) + 1
        log(f"[{name}] {format_counts(counts)} in {time.time() - started:.0f} s")  # the time it took, not its share
        if rc == 0:
            return
        log(f"[{name}] {why}")


def fits(record: dict | None, seconds: float) -> bool:
    """Whether a case not yet done might run in ``seconds``: never tried, or estimated to fit."""
    cost = (record or {}).get("estimated_cost_s")
    return cost is None or cost < seconds


def run_sweep(cases: list[Case], out: Path, budget_s: float, *, case_seconds: float = 4.0,
              threads: int | None = None, estimate_skip: bool = True, lock_fd: int | None = None,
              stand_in: bool = False, processes: ProcessGroup | None = None,
              log=lambda s: print(s, flush=True)) -> ResultsStore:
    """Run the cases of ``cases`` not done in ``out`` (prepared by ``prepare_folder``) within ``budget_s``."""
    store = ResultsStore(out)
    gpu_present = bool(store.machine.get("gpus"))
    deadline = time.time() + budget_s
    groups = group_cases(cases)
    # Pass 1 gives every group an even share of the time left as it starts; later passes give the
    # time groups left unused to the groups that skipped cases (estimates carry over from pass 1).
    for sweep_pass in range(1 + EXTRA_PASSES):
        store = ResultsStore(out)
        left = deadline - time.time()
        todo = {name: group for name, group in groups.items()
                if any(not store.is_done(c.key) and fits(store.records.get(c.key), left) for c in group)}
        if not todo or (sweep_pass and left < MIN_PASS_S) or (sweep_pass and processes is not None):
            break  # across processes: one pass (each process's passes would differ)
        if sweep_pass:
            log(f"pass {sweep_pass + 1}: {deadline - time.time():.0f} s left for {len(todo)} groups with cases to run")
        for i, (name, group) in enumerate(todo.items()):
            run_group_worker(name, group, out, deadline, len(todo) - i, case_seconds=case_seconds, threads=threads,
                             estimate_skip=estimate_skip, gpu_present=gpu_present, log=log, lock_fd=lock_fd,
                             stand_in=stand_in, processes=processes)
    return ResultsStore(out)


# ---------------------------------------------------------------- the command line: every check before any work


@dataclass
class Settings:
    backends: list[str]
    devices: list[str]
    grid: dict[str, tuple[int, ...]]
    budget: float | None        # None: the default for the plan (known once the groups are counted)
    case_seconds: float
    threads: int | None
    out: Path
    resume: bool
    overwrite: bool
    shard: Shard = WHOLE
    stand_in: bool = False
    processes: ProcessGroup | None = None  # --data-parallel across processes (more than one)


def parse_list(text: str, allowed, name: str) -> list[str]:
    values = [v.strip() for v in text.split(",")]
    if not text.strip() or any(v not in allowed for v in values):
        raise UsageError(f"{name} must be a comma-separated subset of {','.join(allowed)}, got {text!r}")
    return values


def parse_sizes(text: str, name: str) -> tuple[int, ...]:
    """Comma-separated positive integers, e.g. ``1,8,64``."""
    values = [v.strip() for v in text.split(",")]
    if not text.strip() or not all(re.fullmatch(r"[0-9]+", v) and int(v) >= 1 for v in values):
        raise UsageError(f"{name} must be comma-separated positive integers, got {text!r}")
    return tuple(int(v) for v in values)


def parse_seconds(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name} must be a positive, finite number of seconds, got {text!r}")
    return value


def check_arguments(args) -> Settings:
    """Every argument, checked without importing a framework or writing anything; raises ``UsageError``."""
    backends = args.backend or [f for f in FRAMEWORKS if installed(f)]
    missing = [b for b in backends if not installed(b)]
    if missing:
        raise UsageError(f"backend(s) not installed: {', '.join(missing)}")
    if not backends:
        raise UsageError(f"no backend installed: pip install one of {', '.join(FRAMEWORKS)}")
    devices = parse_list(args.devices, ("cpu", "gpu"), "--devices") if args.devices is not None else None
    grid = {k: parse_sizes(getattr(args, k), f"--{k}") if getattr(args, k) is not None else default
            for k, default in (("batches", BATCHES), ("timesteps", TIMESTEPS), ("units", UNITS))}
    budget = parse_seconds(args.budget, "--budget")
    case_seconds = parse_seconds(args.case_seconds, "--case-seconds")
    threads = None
    if args.threads is not None:
        threads = checked(positive_int("--threads"), args.threads)
    if args.resume and args.overwrite:
        raise UsageError("--resume continues a result set and --overwrite replaces it: pass one of them")
    processes = check_processes(args, backends)
    if processes is not None and args.stand_in:
        raise UsageError("--stand-in times no framework: it cannot run across processes (--num-processes > 1)")
    if processes is not None and args.resume:  # each process would skip the cases its own folder holds
        raise UsageError("--resume cannot continue a run across processes (they must all run the same cases): "
                         "start afresh with --overwrite or another --out")
    shard = resolve_shard(args.shard)
    n_shapes = len(QUICK_SHAPES) if args.quick else len(set(shapes(**grid)))
    if shard.count > n_shapes:
        source = "--shard" if args.shard is not None else "the SLURM array (SLURM_ARRAY_TASK_COUNT)"
        raise UsageError(f"{source} asks for {shard.count} shards, but the grid has {n_shapes} shapes "
                         f"and a shard holds whole shapes: use at most {n_shapes} shards")
    out = check_out_folder(args.out) if args.out is not None else default_folder(shard)
    if processes is not None and args.out is None:  # processes on one file system never share a folder
        out = out / f"process-{processes.process_id}-of-{processes.num_processes}"
    if devices is None:
        devices = ["cpu"] if args.quick else detect_devices()
    elif args.quick:
        devices = ["cpu"]
    return Settings(backends, devices, grid, budget, case_seconds or (0.3 if args.quick else 4.0), threads, out,
                    args.resume, args.overwrite, shard, args.stand_in, processes)


MULTIPROCESS_OPTIONS = ("--coordinator", "--num-processes", "--process-id")


def check_processes(args, backends: list[str]) -> ProcessGroup | None:
    """The multi-process settings of ``--data-parallel`` (options, else the environment), checked; None: one process."""
    given = [o for o in MULTIPROCESS_OPTIONS if getattr(args, o[2:].replace("-", "_"), None) is not None]
    if not args.data_parallel:
        if given:
            raise UsageError(f"{', '.join(given)}: data parallelism across processes needs --data-parallel")
        return None  # the environment's settings (a SLURM job, say) are for --data-parallel only
    try:
        processes = resolve_process_group(args.coordinator, args.num_processes, args.process_id,
                                          names=MULTIPROCESS_OPTIONS)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--data-parallel: {exc}") from None
    if processes is None or processes.num_processes == 1:
        return None
    if "jax" not in backends:
        raise UsageError(f"--data-parallel across processes runs on JAX: add --backend jax (got {', '.join(backends)})")
    return processes


def check_result_set(out: Path, *, resume: bool, overwrite: bool, machine: dict, sweep: dict | None = None) -> None:
    """Refuse to run over a result set unasked, to resume one that cannot be read, one from another machine,
    or one that is a run of another grid or another shard (``sweep``: this run's ``sweep.json``)."""
    present = [name for name in RESULT_FILES if (out / name).exists()]
    if not present or overwrite:
        return
    if not resume:
        raise UsageError(f"{out} already holds a result set ({', '.join(present)}); pass --resume to continue it, "
                         "--overwrite to replace it, or --out for another folder")
    if not (out / "results.json").exists():
        raise UsageError(f"cannot resume {out}: it has {', '.join(present)} but no results.json; pass --overwrite to start afresh")
    try:
        saved = ResultsStore(out).machine
    except ResultsFileError as exc:
        raise UsageError(f"cannot resume: {exc}; pass --overwrite to replace it") from None
    differs = [f"{k} {saved.get(k)!r} there, {machine.get(k)!r} here" for k in MACHINE_FIELDS
               if saved.get(k) != machine.get(k)]
    if differs:
        raise UsageError(f"cannot resume {out}: measured on another machine ({'; '.join(differs)}); "
                         "pass --out for a new folder or --overwrite to replace it")
    if sweep is None or not (out / SWEEP_FILE).exists():
        return  # a folder from before sweep.json: nothing to compare (this run writes one)
    try:
        saved_sweep = read_sweep(out)
    except ResultsFileError as exc:
        raise UsageError(f"cannot resume: {exc}; pass --overwrite to replace it") from None
    if saved_sweep["fingerprint"] != sweep["fingerprint"]:
        raise UsageError(f"cannot resume {out}: it is a run of another grid "
                         f"({grid_difference(saved_sweep['grid'], sweep['grid'], ('there', 'here'))}); "
                         "pass --out for a new folder or --overwrite to replace it")
    there = ",".join(map(str, saved_sweep["shards"])) + f"/{saved_sweep['of']}"
    here = ",".join(map(str, sweep["shards"])) + f"/{sweep['of']}"
    if there != here:
        raise UsageError(f"cannot resume {out}: it holds shard {there} of this grid, this run is shard {here}; "
                         "pass --out for the shard's own folder or --overwrite to replace it")


def prepare_folder(out: Path, cases: list[Case], settings: Settings, machine: dict, log,
                   sweep: dict | None = None) -> ResultsStore:
    """The store this run starts from (under the folder's lock): empty, or on --resume the records that are
    whole and consistent with this run's settings; the rest run again, and the log says which and why.
    ``sweep`` (what this run is: grid, shard, versions) is written to ``sweep.json``."""
    if settings.overwrite:
        for name in RESULT_FILES:
            (out / name).unlink(missing_ok=True)
        for figure in out.glob("*.png"):
            figure.unlink()
    store = ResultsStore(out)
    store.machine = machine
    planned = {c.key for c in cases}
    rerun = {key: why for key, r in store.records.items() if (why := record_problem(r))}
    for key, r in store.records.items():
        if key in planned and key not in rerun and r.get("status") == "ok" and r.get("threads") != settings.threads:
            rerun[key] = f"timed with --threads {r.get('threads')}, this run asks for {settings.threads}"
    for key, why in rerun.items():
        del store.records[key]
        log(f"{PREFIX}: resume: {key} not reused ({why}); it runs again" if key in planned else
            f"{PREFIX}: resume: {key} dropped ({why})")
    for why in store.dropped:
        log(f"{PREFIX}: resume: {why}: dropped")
    store.save()
    if sweep is not None:
        write_sweep(out, sweep)
    return store


def grid_options(settings: Settings, full: list[Case], *, raw: bool, tf32: bool, n_dp: int) -> dict:
    """The options that define a sweep's grid (``sweep.json``'s ``grid``): what a merge compares."""
    return {"backends": sorted(settings.backends), "devices": list(settings.devices),
            "shapes": [list(s) for s in sorted({(c.batch, c.timesteps, c.units) for c in full})], "features": FEATURES,
            "raw": raw, "tf32": tf32, "data_parallel": n_dp, "threads": settings.threads,
            "stand_in": settings.stand_in} | (
        {"processes": settings.processes.num_processes} if settings.processes is not None else {})


def plan_of_grid(grid: dict) -> list[Case]:
    """The whole plan a sweep's ``grid`` (``grid_options``) describes, every shard's cases: what ``bench merge``
    checks a folder's ``sweep.json`` against. ValueError (or KeyError, TypeError) where the grid is not one."""
    full = plan(list(grid["backends"]), list(grid["devices"]), raw=bool(grid["raw"]), tf32=bool(grid["tf32"]),
                data_parallel=int(grid["data_parallel"]),
                shape_list=[(int(b), int(t), int(u)) for b, t, u in grid["shapes"]])
    if grid.get("processes") is not None:  # across processes: the data-parallel group alone (as ``run`` plans it)
        full = [c for c in full if c.n_devices == grid["data_parallel"]]
    return full


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Numbers are read as text and checked in check_arguments: a bad value is one line and status 2.
    add_backend_option(parser, repeatable=True)
    parser.add_argument("--devices", default=None, help="comma-separated: cpu,gpu (default: every device present)")
    parser.add_argument("--quick", action="store_true", help=f"only the shapes {QUICK_SHAPES}, on the CPU, a short budget")
    parser.add_argument("--budget", default=None, metavar="SECONDS",
                        help="seconds for the whole sweep (default 1200; --quick: 30 a group)")
    parser.add_argument("--case-seconds", default=None, metavar="SECONDS",
                        help="most seconds spent timing one case after its first step (default 4; --quick: 0.3)")
    add_out_option(parser, f"{DEFAULT_RESULTS}/<machine>, relative to the current folder", what="results folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue the result set in --out: keep its whole finished cases (ok or error), run the rest")
    parser.add_argument("--overwrite", action="store_true", help="replace the result set already in --out")
    parser.add_argument("--no-raw", action="store_true", help="time Keras only, not the raw frameworks")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on a GPU (default off: true float32)")
    parser.add_argument("--data-parallel", action="store_true",
                        help="also time Keras on JAX with keras.distribution.DataParallel over all local devices")
    parser.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                        help="--data-parallel across processes: process 0's address (default: JAX_COORDINATOR_ADDRESS, "
                             "KERAS_DISTRIBUTION_JOB_ADDRESSES, or SLURM's first node)")
    parser.add_argument("--num-processes", default=None, metavar="N",
                        help="--data-parallel across N processes, one command on each (default: "
                             "KERAS_DISTRIBUTION_NUM_PROCESSES or SLURM_NTASKS)")
    parser.add_argument("--process-id", default=None, metavar="K",
                        help="this process's number, 0..N-1; 0 runs the coordinator (default: "
                             "KERAS_DISTRIBUTION_PROCESS_ID or SLURM_PROCID)")
    # Lists, where verify and export take one number: the metavar says so.
    parser.add_argument("--batches", default=None, metavar="B[,B...]",
                        help="comma-separated batch sizes (default: the full grid)")
    parser.add_argument("--timesteps", default=None, metavar="T[,T...]",
                        help="comma-separated timesteps (default: the full grid)")
    parser.add_argument("--units", default=None, metavar="U[,U...]", help="comma-separated units (default: the full grid)")
    parser.add_argument("--threads", default=None, metavar="N",
                        help="pin every worker to N CPUs before any framework import (default: each framework's own choice)")
    parser.add_argument("--no-summary", action="store_true", help="do not draw figures and summary.md")
    parser.add_argument("--shard", default=None, metavar="K/N",
                        help="run shard K of N of the grid (default: SLURM_ARRAY_TASK_ID/COUNT in a SLURM array, "
                             "else the whole grid); results default to results/bench/<machine>/shard-K-of-N")
    parser.add_argument("--stand-in", action="store_true",
                        help="time a stand-in step that imports no framework: rehearses the machinery, measures nothing")


def local_device_count() -> int:
    """Devices JAX sees, counted in a child process (this one must not import a framework)."""
    code = "import jax; print(jax.local_device_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return int(out.stdout.strip() or 1) if out.returncode == 0 else 1


def format_counts(counts: dict[str, int]) -> str:
    """Case statuses as words, most common first: ``15 ok`` or ``12 ok, 3 skipped``."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{n} {status}" for status, n in ordered) or "no cases"


def refuse(message) -> int:
    print(f"{PREFIX}: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    log = lambda text: print(text, flush=True)  # noqa: E731
    try:
        settings = check_arguments(args)
        machine = describe_machine()
        n_dp = local_device_count() if args.data_parallel and "jax" in settings.backends else 1
        if settings.processes is not None:  # every process has as many devices as this one (the worker checks)
            n_dp *= settings.processes.num_processes
        full = plan(settings.backends, settings.devices, quick=args.quick, raw=not args.no_raw, tf32=args.tf32,
                    data_parallel=n_dp, **settings.grid)
        if settings.processes is not None:  # across processes, the data-parallel group alone, in lockstep
            full = [c for c in full if c.n_devices == n_dp]
            if not full:
                raise UsageError(f"--data-parallel across {settings.processes.num_processes} processes: no batch size "
                                 f"in the grid is a multiple of the {n_dp} devices")
        cases = select(full, settings.shard)
        sweep = sweep_definition(full, cases, settings.shard,
                                 grid_options(settings, full, raw=not args.no_raw, tf32=args.tf32, n_dp=n_dp))
        check_result_set(settings.out, resume=settings.resume, overwrite=settings.overwrite, machine=machine,
                         sweep=sweep)
    except UsageError as exc:
        return refuse(exc)
    out = settings.out
    lock = FolderLock(out)
    try:
        lock.acquire()
    except FolderLocked as exc:
        return refuse(exc)
    except OSError as exc:
        return refuse(f"cannot create {out}: {exc.strerror or exc}")
    try:
        try:  # again under the lock: another run may have written the folder since the first look
            check_result_set(out, resume=settings.resume, overwrite=settings.overwrite, machine=machine, sweep=sweep)
        except UsageError as exc:
            return refuse(exc)
        n_groups = len(group_cases(cases))
        budget = settings.budget if settings.budget is not None else (30.0 * n_groups if args.quick else 1200.0)
        from keras_impl.backend import print_header
        print_header("bench", backends=settings.backends, device=",".join(settings.devices),
                     dtype="float32" + (", TF32 allowed" if args.tf32 else ""),
                     chosen_by="--backend" if args.backend else "every installed one")
        prepare_folder(out, cases, settings, machine, log, sweep=sweep)
        if settings.shard.count > 1:
            log(f"{PREFIX}: shard {settings.shard}: {len(cases)} of the grid's {len(full)} cases "
                f"(grid {sweep['fingerprint']})")
        if settings.stand_in:
            log(f"{PREFIX}: --stand-in: every step is a stand-in (no framework): a rehearsal, the figures measure nothing")
        log(f"{PREFIX}: {len(cases)} cases in {n_groups} worker processes, budget {budget:.0f} s, results in {out}")
        t0 = time.time()
        if settings.processes is not None:
            log(f"{PREFIX}: data-parallel across processes: {settings.processes} ({n_dp} devices in all)")
        store = run_sweep(cases, out, budget, case_seconds=settings.case_seconds, threads=settings.threads,
                          estimate_skip=not args.quick, lock_fd=lock.fd, stand_in=settings.stand_in,
                          processes=settings.processes, log=log)
        counts: dict[str, int] = {}
        for c in cases:
            status = store.status(c.key) or "missing"
            counts[status] = counts.get(status, 0) + 1
        log(f"{PREFIX}: {format_counts(counts)} in {time.time() - t0:.0f} s")
        if not args.no_summary:
            from benchmarks.summary import write_summary
            for path in write_summary(out):
                log(f"{PREFIX}: wrote {path}")
    finally:
        lock.release()
    if not counts.get("ok"):
        print(f"{PREFIX}: error: no case was timed ({format_counts(counts)}); see {out / 'results.json'}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
