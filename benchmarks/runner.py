"""One worker process: the cases of one group (implementation, framework, device, path), in order, under a deadline.

The sweep driver (``benchmarks.train_speed``) starts one worker per group, with
the environment that picks the Keras backend, the device and TF32, and reads
the results the worker wrote; the worker dies with the driver
(``--parent-pid``, ``benchmarks.lifeline``). A worker can also be run by hand:

    KERAS_BACKEND=jax python -m benchmarks.runner --out DIR --deadline EPOCH --cases '[{...}, ...]'

Timing of one case: build the model and data, run one step (compilation, then
the first step), run more warm-up steps, then time ``repeats`` single steps,
synchronizing the device before each clock read. ``repeats`` is sized to the
case's share of the time left (at least ``MIN_REPEATS``, at most ``MAX_REPEATS``).

Noise (``benchmarks.records``): a measurement whose IQR exceeds ``NOISE_THRESHOLD`` of its
median is taken again, at most ``MAX_REMEASURES`` times and only while the case's time
allows; the steadiest measurement is kept, and a record still noisy says ``noisy: true``.
The machine's 1-minute load average is recorded before and after each case
(``loadavg_before``, ``loadavg_after``; ``loadavg_1m`` is the one before).

Budget: before a case, its step time is estimated from the cases of its group
already timed (in this process or recorded by an earlier one: fixed per-step
overhead + FLOPs / best achieved FLOP/s) and the compile time seen so far; a case whose warm-up and minimum repeats would
not fit in ``SLACK`` times its share of the time left is recorded as skipped,
with the estimate, and the sweep goes on. A case that raises (out of memory,
unsupported) is recorded with its error, and the sweep goes on.

Across processes (``--process-group COORDINATOR,N,K``: ``bilstm bench --data-parallel`` on N
processes, ``keras_impl.multiprocess``): the worker joins the JAX runtime before anything else,
and runs its cases in lockstep with the other processes, since every training step is a
collective that all of them must enter: no case is skipped by time or estimate, each is timed
over exactly ``LOCKSTEP_STEPS`` steps and never measured again, and a case that fails ends the
worker (the others then fail with ``PeerLostError`` rather than wait).
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time
import traceback
from typing import Callable

from benchmarks.cases import Case, train_step_flops
from benchmarks.records import MAX_REMEASURES, NOISE_THRESHOLD, relative_spread
from benchmarks.step import Builder, Step
from benchmarks.store import ResultsStore

MIN_REPEATS = 5
MAX_REPEATS = 200
WARMUP_STEPS = 2   # after the first (compiling) step
LOCKSTEP_STEPS = 20  # timed steps of a case run across processes: the same on every process
SLACK = 3.0        # a case may take up to SLACK times its even share of the time left
RATE_FLOOR = 1e9   # FLOP/s assumed at least, while every case seen so far was overhead-bound


def quartiles(times: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return q1, median, q3


class Estimator:
    """Step-time and compile-time estimates from the cases already timed in this process.

    step(case) = overhead + FLOPs(case) / rate, where overhead is the smallest
    step time seen (fixed per-step cost: dispatch, the time loop's latency) and
    rate the best FLOP/s seen beyond that overhead; compile = the median of the
    first-step excesses seen. Small cases come first, so the estimate errs long.
    """

    def __init__(self):
        self.seen: list[tuple[int, float]] = []  # (FLOPs, median step s)
        self.compiles: list[float] = []

    def step_s(self, case: Case) -> float | None:
        if not self.seen:
            return None
        overhead = min(t for _, t in self.seen)
        beyond = [f / (t - overhead) for f, t in self.seen if t > 1.5 * overhead]
        # Overhead-bound cases alone only bound the rate from below; any machine does better than the floor.
        rate = max(beyond) if beyond else max(RATE_FLOOR, max(f / t for f, t in self.seen))
        return overhead + train_step_flops(case.batch, case.timesteps, case.units, case.features) / rate

    def min_cost_s(self, case: Case) -> float | None:
        step = self.step_s(case)
        return None if step is None else statistics.median(self.compiles) + (1 + WARMUP_STEPS + MIN_REPEATS) * step

    def update(self, case: Case, median_s: float, first_step_s: float) -> None:
        self.seen.append((train_step_flops(case.batch, case.timesteps, case.units, case.features), median_s))
        self.compiles.append(max(0.0, first_step_s - median_s))


def sample_steps(step: Step, seconds: float, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Single-step times for about ``seconds``: at least MIN_REPEATS, at most MAX_REPEATS; the clock is read
    only once the device is done (``step.sync``)."""
    start = clock()
    times: list[float] = []
    while len(times) < MIN_REPEATS or (len(times) < MAX_REPEATS and clock() - start < seconds):
        t0 = clock()
        step.sync(step.run())
        times.append(clock() - t0)
    return times


Sampler = Callable[[Step, float], list[float]]


def lockstep_steps(step: Step, seconds: float, clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Exactly LOCKSTEP_STEPS single-step times, whatever the clock says: every process runs as many."""
    times = []
    for _ in range(LOCKSTEP_STEPS):
        t0 = clock()
        step.sync(step.run())
        times.append(clock() - t0)
    return times


def time_case(case: Case, step: Step, seconds: float, *, max_seconds: float | None = None,
              sampler: Sampler = sample_steps, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Warm up, then time single steps for about ``seconds``: median, quartiles, sequences/s, GFLOP/s.

    A measurement whose IQR is over NOISE_THRESHOLD of its median is taken again (at most MAX_REMEASURES
    times, and only while the time spent since the first step plus one more measurement fits in
    ``max_seconds``); the steadiest is kept. ``sampler`` takes the measurements (tests inject theirs).
    """
    t0 = clock()
    step.sync(step.run())
    first = clock() - t0
    start = clock()  # the budget counts from here: compilation is estimated apart
    for _ in range(WARMUP_STEPS):
        step.sync(step.run())
    measurements: list[tuple[float, float, float, int]] = []  # (q1, median, q3, repeats)
    while True:
        before = clock()
        times = sampler(step, seconds)
        q1, median, q3 = quartiles(times)
        measurements.append((q1, median, q3, len(times)))
        took = clock() - before
        if relative_spread(q1, median, q3) <= NOISE_THRESHOLD or len(measurements) > MAX_REMEASURES:
            break
        if max_seconds is not None and clock() - start + took > max_seconds:
            break  # no time for another: the record says noisy
    spreads = [relative_spread(q1, m, q3) for q1, m, q3, _ in measurements]
    q1, median, q3, repeats = measurements[spreads.index(min(spreads))]
    flops = train_step_flops(case.batch, case.timesteps, case.units, case.features)
    return {
        "median_s": median, "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1, "repeats": repeats,
        "first_step_s": first, "sequences_per_s": case.batch / median,
        "gflop": flops / 1e9, "gflops": flops / median / 1e9,
        "rel_iqr": min(spreads), "noisy": min(spreads) > NOISE_THRESHOLD, "measurements": len(measurements),
        "spreads": spreads,
    }


def machine_load() -> float | None:
    """The 1-minute load average (None where the system has none): on a shared machine, other people's
    work is part of the result."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def base_record(case: Case, context: dict, load: float | None = None) -> dict:
    load = machine_load() if load is None else load
    return {"key": case.key, **case.as_dict(), **context, "loadavg_1m": load, "loadavg_before": load,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def run_group(cases: list[Case], build: Builder, store: ResultsStore, deadline: float, *,
              case_seconds: float = 10.0, estimate_skip: bool = True, context: dict | None = None,
              cleanup: Callable[[], None] = gc.collect, sampler: Sampler = sample_steps,
              load: Callable[[], float | None] = machine_load, lockstep: bool = False,
              log: Callable[[str], None] = lambda s: print(s, flush=True)) -> None:
    """Run ``cases`` not already done in ``store``, writing each record as soon as it is known.

    ``deadline`` is a ``time.time()`` value; a case is timed for at most ``case_seconds`` (beyond its
    first step) or its share of the time left, whichever is less; ``estimate_skip=False`` runs every
    case while time is left, whatever its estimate (``--quick``: the cases are small); ``context``
    (device name, versions, ...) goes into every record; ``sampler`` takes each measurement and ``load``
    reads the machine's load before and after each case (tests inject both). ``lockstep``: the cases
    run across processes (see the module's docstring): none skipped, ``lockstep_steps`` timed, no
    re-measuring, and the first failure raises.
    """
    context = context or {}
    if lockstep:
        estimate_skip, sampler, deadline = False, lockstep_steps, math.inf
    estimator = Estimator()
    groups = {c.group for c in cases}
    for r in store.records.values():  # cases of these groups timed by an earlier worker calibrate the estimate
        fields = list(Case.__dataclass_fields__) + ["median_s", "first_step_s"]
        if r.get("status") == "ok" and r["key"].split("|")[0] in groups and all(f in r for f in fields):
            estimator.update(Case(**{f: r[f] for f in Case.__dataclass_fields__}), r["median_s"], r["first_step_s"])
    pending = [c for c in cases if not store.is_done(c.key)]
    for done in set(c.key for c in cases) - set(c.key for c in pending):
        log(f"  resume: {done} already done")
    for i, case in enumerate(pending):
        left = deadline - time.time()
        share = left / (len(pending) - i)
        allowed = min(left, SLACK * share)
        record = base_record(case, context, load())
        cost = estimator.min_cost_s(case) if estimate_skip else None
        if left <= 0 or (cost is not None and cost > allowed):
            est = estimator.step_s(case)
            why = ("time budget used up" if left <= 0 else
                   f"over budget: estimated {est:.3g} s a step, {cost:.3g} s with warm-up and {MIN_REPEATS} repeats, "
                   f"{allowed:.3g} s allowed")
            store.put({**record, "status": "skipped", "reason": why, "estimated_step_s": est, "estimated_cost_s": cost})
            log(f"  {case.key}: skipped ({why})")
            continue
        store.put({**record, "status": "running"})  # a worker that dies leaves this mark for the driver
        step = None
        try:
            step = build(case)
            result = time_case(case, step, seconds=min(allowed, max(share, 0.0), case_seconds),
                               max_seconds=0.0 if lockstep else allowed, sampler=sampler)
            record.update(step.describe())
            record.update(result, status="ok")
            estimator.update(case, result["median_s"], result["first_step_s"])
            noise = (f", NOISY after {result['measurements']} measurements" if result["noisy"] else
                     f", steady after {result['measurements']} measurements" if result["measurements"] > 1 else "")
            log(f"  {case.key}: {result['median_s'] * 1e3:.3g} ms (IQR {result['iqr_s'] * 1e3:.2g}{noise}), "
                f"{result['sequences_per_s']:.4g} seq/s, {result['gflops']:.3g} GFLOP/s, {record.get('kernel')}")
        except Exception as exc:  # noqa: BLE001 - any failure of a case is a result; the sweep goes on
            if step is not None:
                try:
                    record.update(step.describe())
                except Exception:  # noqa: BLE001
                    pass
            record.update(status="error", error=f"{type(exc).__name__}: {exc}"[:1000],
                          traceback=traceback.format_exc(limit=6)[-3000:])
            log(f"  {case.key}: error {record['error'][:200]}")
            if lockstep:  # the other processes are waiting in this case's steps: end, so that they fail too
                record["loadavg_after"] = load()
                store.put(record)
                raise
        finally:
            if step is not None:
                step.close()
            del step
            cleanup()
        record["loadavg_after"] = load()
        store.put(record)


# ---------------------------------------------------------------- the worker process


def builder_for(case: Case) -> tuple[Builder, Callable[[], None], Callable[[], dict]]:
    """(build, cleanup, context) for the cases of ``case``'s group, importing only that framework."""
    if case.impl == "keras":
        from benchmarks import keras_step
        return keras_step.build, keras_step.cleanup, keras_step.context
    from benchmarks import baselines
    return baselines.BUILDERS[(case.framework, case.path)], baselines.cleanup(case.framework), lambda: baselines.context(case.framework)


def worker(cases: list[Case], out_dir: str, deadline: float, case_seconds: float = 10.0,
           estimate_skip: bool = True, stand_in: bool = False, processes=None) -> int:
    groups = {c.group for c in cases}
    if len(groups) != 1:
        raise ValueError(f"a worker runs one group, got {sorted(groups)}")
    first = cases[0]
    from benchmarks.environment import framework_device, limit_threads
    threads = limit_threads()  # before any framework import: their thread pools size themselves at start
    if processes is not None:  # join the other processes before any JAX computation (keras_impl/multiprocess.py)
        from keras_impl.multiprocess import CoordinatorPortError, initialize
        try:
            initialize(processes, seed=0)
        except CoordinatorPortError as exc:  # the same on every restart: a result (an error), not a crash to retry
            store = ResultsStore(out_dir)
            for case in cases:
                store.put({**base_record(case, {"threads": threads}), "status": "error", "error": str(exc)})
            print(f"  {first.group}: error {exc}", flush=True)
            return 0
    if stand_in:  # no framework: the machinery alone (benchmarks/stand_in.py)
        from benchmarks import stand_in as stand_in_step
        build, cleanup, context_fn = stand_in_step.build, (lambda: None), (lambda: stand_in_step.context(first))
        device, device_name = first.device, "stand-in"
    else:
        from keras_impl.backend import set_tf32
        build, cleanup, context_fn = builder_for(first)
        set_tf32(first.framework, first.tf32)
        device, device_name = framework_device(first.framework)
    store = ResultsStore(out_dir)
    context = {**context_fn(), "device_name": device_name, "threads": threads}
    if processes is not None:
        import jax
        context.update(processes=processes.num_processes, process_id=processes.process_id)
        if jax.device_count() != first.n_devices:
            why = (f"{jax.device_count()} devices across the {processes.num_processes} processes, the cases ask for "
                   f"{first.n_devices}: every process must have as many local devices as this one")
            for case in cases:
                store.put({**base_record(case, context), "status": "error", "error": why})
            raise RuntimeError(why)
    if device != first.device:
        why = f"{first.framework} computes on {device} in this process, not {first.device}"
        for case in cases:
            if not store.is_done(case.key):
                store.put({**base_record(case, context), "status": "skipped", "reason": why})
        print(f"  {first.group}: skipped ({why})", flush=True)
        return 0
    run_group(cases, build, store, deadline, case_seconds=case_seconds, estimate_skip=estimate_skip,
              context=context, cleanup=cleanup, lockstep=processes is not None)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one group of benchmark cases in this process.")
    parser.add_argument("--out", required=True, help="results folder (results.json, results.csv)")
    parser.add_argument("--deadline", type=float, required=True, help="time.time() by which to finish")
    parser.add_argument("--cases", required=True, help="JSON list of Case fields")
    parser.add_argument("--case-seconds", type=float, default=10.0, help="most seconds spent timing one case")
    parser.add_argument("--no-estimate-skip", action="store_true", help="run every case while time is left")
    parser.add_argument("--stand-in", action="store_true", help="time a stand-in step, no framework (rehearsals)")
    parser.add_argument("--process-group", default=None, metavar="COORDINATOR,N,K",
                        help="run across N processes as process K, joined at COORDINATOR (HOST:PORT)")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="die with this process (the sweep's driver passes its pid; benchmarks/lifeline.py)")
    args = parser.parse_args(argv)
    if args.parent_pid is not None:
        from benchmarks.lifeline import die_with_parent
        die_with_parent(args.parent_pid)  # first: a worker must never outlive its driver, even while importing
    cases = [Case(**c) for c in json.loads(args.cases)]
    processes = None
    if args.process_group is not None:
        from keras_impl.multiprocess import resolve_process_group
        coordinator, n, k = args.process_group.rsplit(",", 2)
        processes = resolve_process_group(coordinator, n, k, environ={})
    return worker(cases, args.out, args.deadline, args.case_seconds, not args.no_estimate_skip, args.stand_in,
                  processes)


if __name__ == "__main__":
    sys.exit(main())
