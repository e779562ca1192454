"""The training-speed sweep: Keras on every backend against raw PyTorch and raw JAX, on every device present.

Commands (from the repository root; ``bilstm bench`` takes the same options):

    python -m benchmarks.train_speed --budget 1200                 # full sweep, results in benchmarks/results/<machine>/
    python -m benchmarks.train_speed --budget 1200 --resume        # continue an interrupted sweep
    python -m benchmarks.train_speed --quick --out /tmp/bench      # a few small CPU cases, seconds a backend
    python -m benchmarks.train_speed --backend jax --devices gpu --budget 300
    python -m benchmarks.summary benchmarks/results/<machine>      # redraw figures and summary.md

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
an error and the next worker carries on.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.cases import BATCHES, FEATURES, QUICK_SHAPES, TIMESTEPS, UNITS, Case, shapes
from benchmarks.environment import describe_machine, gpu_names, hide_gpus_env, machine_id, tf32_env, threads_env
from benchmarks.runner import base_record
from benchmarks.store import ResultsStore

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FRAMEWORKS = ("jax", "torch", "tensorflow")
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
         data_parallel: int = 1, batches=BATCHES, timesteps=TIMESTEPS, units=UNITS) -> list[Case]:
    """Every case to run, grouped (one group = one worker process) and in running order."""
    grid = list(QUICK_SHAPES) if quick else shapes(batches, timesteps, units)
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
                     case_seconds: float, threads: int | None, estimate_skip: bool, gpu_present: bool, log) -> None:
    """Run the pending cases of one group in worker processes (restarted if one dies), with an even
    share of the time left before ``deadline`` among ``groups_left`` groups."""
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
        log(f"[{name}] {len(pending)} cases, {group_deadline - time.time():.0f} s" + (f" (restart {attempt})" if attempt else ""))
        cmd = [sys.executable, "-m", "benchmarks.runner", "--out", str(out), "--deadline", str(group_deadline),
               "--case-seconds", str(case_seconds), "--cases", json.dumps([c.as_dict() for c in pending])]
        if not estimate_skip:
            cmd.append("--no-estimate-skip")
        try:
            # Killed GRACE_S after its own deadline, and never much after the sweep's.
            limit = min(group_deadline + GRACE_S, deadline + END_GRACE_S) - time.time()
            proc = subprocess.run(cmd, env=worker_env(group[0], gpu_present, threads), cwd=ROOT, timeout=max(1.0, limit))
            rc, why = proc.returncode, f"worker process exited with status {proc.returncode}"
        except subprocess.TimeoutExpired:
            rc, why = -1, "worker killed: the group overran its time budget"
        mark_dead(ResultsStore(out), group, why)
        if rc == 0:
            return
        log(f"[{name}] {why}")


def fits(record: dict | None, seconds: float) -> bool:
    """Whether a case not yet done might run in ``seconds``: never tried, or estimated to fit."""
    cost = (record or {}).get("estimated_cost_s")
    return cost is None or cost < seconds


def run_sweep(cases: list[Case], out: Path, budget_s: float, *, resume: bool = False, case_seconds: float = 4.0,
              threads: int | None = None, estimate_skip: bool = True,
              log=lambda s: print(s, flush=True)) -> ResultsStore:
    store = ResultsStore(out, machine=describe_machine())
    if not resume:  # run every planned case again; other records in the folder stay
        for c in cases:
            store.records.pop(c.key, None)
    store.save()
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
        if not todo or (sweep_pass and left < MIN_PASS_S):
            break
        if sweep_pass:
            log(f"pass {sweep_pass + 1}: {deadline - time.time():.0f} s left for {len(todo)} groups with cases to run")
        for i, (name, group) in enumerate(todo.items()):
            run_group_worker(name, group, out, deadline, len(todo) - i, case_seconds=case_seconds, threads=threads,
                             estimate_skip=estimate_skip, gpu_present=gpu_present, log=log)
    return ResultsStore(out)


def parse_list(text: str, allowed, name: str, convert=str) -> list:
    values = [convert(v) for v in text.split(",") if v]
    bad = [v for v in values if allowed is not None and v not in allowed]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"{name}: got {text!r}, expected a comma-separated subset of {allowed}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", action="append", choices=FRAMEWORKS,
                        help="Keras backend to time, and its raw framework (repeatable; default: every installed one)")
    parser.add_argument("--devices", default=None, help="comma-separated: cpu,gpu (default: every device present)")
    parser.add_argument("--quick", action="store_true", help=f"only the shapes {QUICK_SHAPES}, on the CPU, a short budget")
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole sweep (default 1200; --quick: 30 a group)")
    parser.add_argument("--case-seconds", type=float, default=None,
                        help="most seconds spent timing one case after its first step (default 4; --quick: 0.3)")
    parser.add_argument("--out", default=None, help="results folder (default benchmarks/results/<machine>)")
    parser.add_argument("--resume", action="store_true", help="keep finished cases (ok or error) and run the rest")
    parser.add_argument("--no-raw", action="store_true", help="time Keras only, not the raw frameworks")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 on a GPU (default off: true float32)")
    parser.add_argument("--data-parallel", action="store_true",
                        help="also time Keras on JAX with keras.distribution.DataParallel over all local devices")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default: the full grid)")
    parser.add_argument("--timesteps", default=None, help="comma-separated timesteps")
    parser.add_argument("--units", default=None, help="comma-separated units")
    parser.add_argument("--threads", type=int, default=None,
                        help="pin each worker to this many CPUs (default: the frameworks' own thread counts); "
                             "1 gives repeatable CPU timings on a machine shared with other work")
    parser.add_argument("--no-summary", action="store_true", help="do not draw figures and summary.md")


def local_device_count() -> int:
    """Devices JAX sees, counted in a child process (this one must not import a framework)."""
    code = "import jax; print(jax.local_device_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return int(out.stdout.strip() or 1) if out.returncode == 0 else 1


def run(args) -> int:
    backends = args.backend or [f for f in FRAMEWORKS if installed(f)]
    missing = [b for b in backends if not installed(b)]
    if missing:
        print(f"bench: backend(s) not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        devices = parse_list(args.devices, ("cpu", "gpu"), "--devices") if args.devices else detect_devices()
        grid = {k: parse_list(getattr(args, k), None, f"--{k}", int) if getattr(args, k) else default
                for k, default in (("batches", BATCHES), ("timesteps", TIMESTEPS), ("units", UNITS))}
    except (argparse.ArgumentTypeError, ValueError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    if args.quick:
        devices = ["cpu"]
    if args.threads is not None and args.threads < 1:
        print(f"bench: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return 2
    n_dp = local_device_count() if args.data_parallel and "jax" in backends else 1
    cases = plan(backends, devices, quick=args.quick, raw=not args.no_raw, tf32=args.tf32, data_parallel=n_dp, **grid)
    n_groups = len(group_cases(cases))
    budget = args.budget if args.budget is not None else (30.0 * n_groups if args.quick else 1200.0)
    case_seconds = args.case_seconds if args.case_seconds is not None else (0.3 if args.quick else 4.0)
    out = Path(args.out) if args.out else RESULTS / machine_id()
    print(f"bench: {len(cases)} cases in {n_groups} worker processes, budget {budget:.0f} s, results in {out}", flush=True)
    t0 = time.time()
    store = run_sweep(cases, out, budget, resume=args.resume, case_seconds=case_seconds, threads=args.threads,
                      estimate_skip=not args.quick)
    counts: dict[str, int] = {}
    for c in cases:
        status = store.status(c.key) or "missing"
        counts[status] = counts.get(status, 0) + 1
    print(f"bench: {counts} in {time.time() - t0:.0f} s", flush=True)
    if not args.no_summary:
        from benchmarks.summary import write_summary
        for path in write_summary(out):
            print(f"bench: wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
