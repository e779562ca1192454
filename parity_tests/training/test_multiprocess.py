"""Data parallelism across two processes on JAX's runtime (``keras_impl.multiprocess``) equals one process,
and a lost process makes the other fail with a clear error instead of hanging.

One 2-process run serves both checks (the costly part is importing Keras and
compiling, twice over on a 2-core machine): two Python processes on 127.0.0.1,
one CPU device each, joined by ``jax.distributed.initialize`` (JAX's Gloo CPU
collectives, its default) from the settings in JAX_COORDINATOR_ADDRESS,
KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID, a port free
at run time. They train the tutorial's model (``build_model(ModelSpec())``, random
weights) for 3 updates of a global batch of 2, one sequence a process, and report
their weights; this pytest process trains the same 3 updates of batch 2 on one
device. Then process 0 goes on into a 4th update (a collective that needs process
1), the test SIGKILLs process 1, and process 0 must exit with ``PeerLostError``
within SURVIVOR_BOUND_S (``-m slow``: the same with process 0, the coordinator's,
killed). Every child is killed and reaped whatever happens; the run as a whole has
a hard bound (RUN_BOUND_S). The settings' checks and ``bilstm bench``'s refusals
need no second process.

JAX-only: ``jax.distributed`` is JAX's runtime and Keras 3.15 implements
``keras.distribution`` for JAX alone, so the test runs in the KERAS_BACKEND=jax
pass of ``make test`` and is skipped in the others.
"""
from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from keras_impl.parity.tolerances import DATA_PARALLEL_ABS
from parity_tests.conftest import BACKEND

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 5          # the children's heartbeat timeout: a dead peer is declared dead after this
SURVIVOR_BOUND_S = 45    # process 0 must have exited this long after process 1 was killed
RUN_BOUND_S = 300        # hard bound on the whole 2-process run (imports and compiles on a busy machine)
UPDATES = 3

# The data and the starting weights, built the same way here and in each child.
DATA = textwrap.dedent("""
    import numpy as np
    from reference import ModelSpec, random_weights
    spec = ModelSpec()                                              # the tutorial's model: T 10, D 1, U 20
    rng = np.random.default_rng(2026)
    weights = random_weights(spec, rng)
    xs = rng.random((8, spec.timesteps, spec.features)).astype("float32")   # 4 updates of a global batch of 2
    ys = (rng.random((8, spec.timesteps, 1)) < 0.5).astype("float32")
""")

CHILD = DATA + textwrap.dedent(f"""
    import json, os, sys
    from keras_impl.multiprocess import initialize, resolve_process_group
    group = resolve_process_group()                                 # from the environment
    initialize(group, seed=7, init_timeout_s=120, heartbeat_timeout_s={HEARTBEAT_S}, shutdown_timeout_s={HEARTBEAT_S},
               bind_address=group.coordinator)                      # listen on 127.0.0.1 only
    import jax
    from keras_impl.distributed import data_parallel, local_weights
    from keras_impl.models import build_model
    from keras_impl.training import train_stream
    dp = data_parallel()
    with dp.scope():
        model = build_model(spec)
        model.set_weights(weights)
    losses = train_stream(model, xs[:{2 * UPDATES}], ys[:{2 * UPDATES}], distribution=dp)
    out = {{"process": jax.process_index(), "processes": jax.process_count(), "devices": len(jax.devices()),
           "local_devices": len(jax.local_devices()), "weight_devices": len(model.weights[0].value.sharding.device_set),
           "losses": losses.tolist(), "weights": [w.tolist() for w in local_weights(model)]}}
    print("RESULT " + json.dumps(out), flush=True)
    if group.process_id == int(os.environ["TEST_VICTIM"]):
        sys.stdin.readline()                                        # waits here until the test kills it
    else:
        train_stream(model, xs[{2 * UPDATES}:], ys[{2 * UPDATES}:], distribution=dp)  # needs process 1
        print("SURVIVOR FINISHED", flush=True)
""")

pytestmark = pytest.mark.skipif(
    BACKEND != "jax", reason="JAX-only feature (jax.distributed; keras.distribution on JAX): runs in the "
                             "KERAS_BACKEND=jax pass")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(port: int, process_id: int) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "JAX_", "KERAS_DISTRIBUTION_", "XLA_FLAGS"))}  # hermetic: only ours
    # XLA's cheapest CPU compilation: a quarter less CPU time in the children, where compiling is most of
    # the work; the sums are the same in kind (float32, one device a process), and the bound still holds.
    env.update(XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
               JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", KERAS_DISTRIBUTION_NUM_PROCESSES="2",
               KERAS_DISTRIBUTION_PROCESS_ID=str(process_id))
    return env


def pump(stream, lines: queue.Queue, kept: list) -> None:
    for line in stream:
        kept.append(line)
        lines.put(line)


def one_device_weights() -> tuple[list, list]:
    """The same updates in this process, on one device: batch 2, ``train_on_batch``, no distribution."""
    scope: dict = {}
    exec(DATA, scope)
    from keras_impl.models import build_model
    model = build_model(scope["spec"])
    model.set_weights(scope["weights"])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    xs, ys = scope["xs"], scope["ys"]
    losses = [float(model.train_on_batch(xs[k:k + 2], ys[k:k + 2])[0]) for k in range(0, 2 * UPDATES, 2)]
    return losses, model.get_weights()


@pytest.fixture(scope="module")
def two_processes() -> dict:
    return run_two_processes(victim=1)


def run_two_processes(victim: int) -> dict:
    """Train both, then SIGKILL process ``victim`` (waiting) while the other is in its next update."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    survivor = 1 - victim
    started = time.monotonic()
    port = free_port()
    procs, outs, errs, lines = [], [], [], []
    try:
        for k in range(2):
            proc = subprocess.Popen([sys.executable, "-c", CHILD], env={**child_env(port, k), "TEST_VICTIM": str(victim)},
                                    cwd=ROOT, text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
            procs.append(proc)
            outs.append([]), errs.append([]), lines.append(queue.Queue())
            threading.Thread(target=pump, args=(proc.stdout, lines[k], outs[k]), daemon=True).start()
            threading.Thread(target=pump, args=(proc.stderr, queue.Queue(), errs[k]), daemon=True).start()
        one_losses, one_weights = one_device_weights()  # meanwhile, here
        results = [None, None]
        deadline = started + RUN_BOUND_S
        for k in range(2):
            while results[k] is None:
                if procs[k].poll() is not None and lines[k].empty():
                    pytest.fail(f"process {k} exited with status {procs[k].returncode} before reporting:\n"
                                + "".join(errs[k])[-3000:])
                try:
                    line = lines[k].get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
                except queue.Empty:
                    if time.monotonic() > deadline:
                        pytest.fail(f"process {k} reported nothing within {RUN_BOUND_S} s:\n" + "".join(errs[k])[-3000:])
                    continue
                if line.startswith("RESULT "):
                    results[k] = json.loads(line[len("RESULT "):])
        trained_s = time.monotonic() - started
        time.sleep(0.5)  # the survivor is now in (or entering) update 4, a collective waiting on the victim
        os.kill(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait(timeout=30)
        killed = time.monotonic()
        try:
            survivor_rc = procs[survivor].wait(timeout=SURVIVOR_BOUND_S)
        except subprocess.TimeoutExpired:
            survivor_rc = None  # hung: the test fails on it below, after the clean-up
        survivor_s = time.monotonic() - killed
        time.sleep(0.2)  # let the pump threads take the last lines
        return {"results": results, "one_losses": one_losses, "one_weights": one_weights, "trained_s": trained_s,
                "survivor_rc": survivor_rc, "survivor_s": survivor_s, "survivor_out": "".join(outs[survivor]),
                "survivor_err": "".join(errs[survivor]), "victim_rc": procs[victim].returncode,
                "total_s": time.monotonic() - started, "survivor": survivor}
    finally:
        for proc in procs:  # whatever happened: no child, and no child of a child, outlives the test
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()


def test_two_processes_form_one_runtime_with_a_device_each(two_processes):
    for k, r in enumerate(two_processes["results"]):
        assert (r["process"], r["processes"], r["devices"], r["local_devices"]) == (k, 2, 2, 1)
        assert r["weight_devices"] == 2  # each weight replicated on both processes' devices


def test_two_process_weights_equal_one_process_training(two_processes):
    one = two_processes["one_weights"]
    start: dict = {}
    exec(DATA, start)
    for r in two_processes["results"]:
        got = [np.asarray(w, np.float32) for w in r["weights"]]
        assert [w.shape for w in got] == [w.shape for w in one]
        diff = max(float(np.abs(a - b).max()) for a, b in zip(got, one))
        print(f"process {r['process']}: max |w_2proc - w_1proc| = {diff:.3g} after {UPDATES} updates")
        assert diff <= DATA_PARALLEL_ABS
        moved = max(float(np.abs(a - b).max()) for a, b in zip(got, start["weights"]))
        assert moved > 100 * DATA_PARALLEL_ABS  # the comparison is not of untouched weights
        np.testing.assert_allclose(r["losses"], two_processes["one_losses"], rtol=0, atol=DATA_PARALLEL_ABS)


def assert_survivor_failed_clearly(r: dict) -> None:
    print(f"trained in {r['trained_s']:.1f} s; survivor exited {r['survivor_s']:.1f} s after the kill "
          f"with status {r['survivor_rc']}; whole run {r['total_s']:.1f} s")
    assert r["victim_rc"] == -signal.SIGKILL
    assert r["survivor_rc"] is not None, f"the survivor still ran {SURVIVOR_BOUND_S} s after the other was killed"
    assert r["survivor_rc"] != 0
    assert "SURVIVOR FINISHED" not in r["survivor_out"]
    lost = [line for line in r["survivor_err"].splitlines() if line.startswith("keras_impl.distributed.PeerLostError")]
    print(lost)
    assert lost and f"process {r['survivor']} of 2: update 1 failed in a step that needs every process" in lost[0]


def test_killed_process_makes_the_other_fail_clearly_instead_of_hanging(two_processes):
    assert_survivor_failed_clearly(two_processes)  # process 1 killed: the coordinator's process survives


@pytest.mark.slow
def test_killed_coordinator_makes_the_other_fail_clearly_too():
    assert_survivor_failed_clearly(run_two_processes(victim=0))  # the coordination service dies with it


# ---------------------------------------------------------------- the settings, checked before anything starts

SLURM_ENV = {"SLURM_JOB_ID": "12345", "SLURM_STEP_NODELIST": "node[003-007],gpu1", "SLURM_NTASKS": "4",
             "SLURM_PROCID": "3", "SLURM_LOCALID": "0"}


def test_settings_come_from_arguments_then_jax_keras_and_slurm_variables():
    from keras_impl.multiprocess import resolve_process_group
    assert resolve_process_group(environ={}) is None  # nothing set: one process
    g = resolve_process_group("127.0.0.1:1234", 2, 1, environ={"JAX_COORDINATOR_ADDRESS": "other:1"})
    assert (g.coordinator, g.num_processes, g.process_id) == ("127.0.0.1:1234", 2, 1)
    g = resolve_process_group(environ={"JAX_COORDINATOR_ADDRESS": "h0:9000", "KERAS_DISTRIBUTION_NUM_PROCESSES": "3",
                                       "KERAS_DISTRIBUTION_PROCESS_ID": "2", **SLURM_ENV})
    assert (g.coordinator, g.num_processes, g.process_id) == ("h0:9000", 3, 2)  # explicit variables beat SLURM's
    g = resolve_process_group(environ={"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:2345",
                                       "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "0"})
    assert g.coordinator == "10.0.0.1:1234"  # Keras's rule: the first address is the coordinator
    g = resolve_process_group(environ=SLURM_ENV)
    assert (g.coordinator, g.num_processes, g.process_id) == ("node003:61497", 4, 3)
    assert g.sources[1] == "num_processes (from SLURM_NTASKS)"


@pytest.mark.parametrize("environ", [SLURM_ENV, {**SLURM_ENV, "SLURM_STEP_NODELIST": "gpu7", "JAX_COORDINATOR_PORT": "777"},
                                     {**SLURM_ENV, "SLURM_STEP_NODELIST": "a[1,3-5],b"}])
def test_slurm_coordinator_is_the_one_jax_itself_would_choose(environ, monkeypatch):
    from jax._src.clusters.slurm_cluster import SlurmCluster  # JAX's own rule, to compare with
    from keras_impl.multiprocess import slurm_coordinator
    for k, v in environ.items():
        monkeypatch.setenv(k, v)
    assert SlurmCluster.is_env_present()
    assert slurm_coordinator(environ) == SlurmCluster.get_coordinator_address(None, environ.get("JAX_COORDINATOR_PORT"))


@pytest.mark.parametrize("kwargs, environ, message", [
    (dict(coordinator="127.0.0.1"), {}, "num_processes, process_id not set (coordinator='127.0.0.1' given)"),
    (dict(coordinator="127.0.0.1:0", num_processes=2, process_id=0), {}, "port in 1..65535, got '127.0.0.1:0'"),
    (dict(coordinator="127.0.0.1:80", num_processes=2, process_id=2), {}, "process_id must be in [0, 2) for 2 processes, got 2"),
    (dict(coordinator="127.0.0.1:80", num_processes=0, process_id=0), {}, "num_processes must be at least 1, got 0"),
    (dict(coordinator="a b:80", num_processes=1, process_id=0), {}, "bad host 'a b'"),
    (dict(coordinator="[::1:80", num_processes=1, process_id=0), {}, "bad IPv6 host '[::1'"),
    ({}, {**SLURM_ENV, "SLURM_PROCID": "4"}, "process_id (from SLURM_PROCID) must be in [0, 4) for 4 processes, got '4'"),
    ({}, {"JAX_COORDINATOR_ADDRESS": "h:1", "KERAS_DISTRIBUTION_NUM_PROCESSES": "two",
          "KERAS_DISTRIBUTION_PROCESS_ID": "0"}, "num_processes (from KERAS_DISTRIBUTION_NUM_PROCESSES) must be an integer, got 'two'"),
])
def test_bad_settings_are_refused_naming_the_setting_and_value(kwargs, environ, message):
    from keras_impl.multiprocess import resolve_process_group
    with pytest.raises(ValueError) as info:
        resolve_process_group(**kwargs, environ=environ)
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(heartbeat_timeout_s=0), "heartbeat_timeout_s must be a whole number of seconds >= 1, got 0"),
    (dict(init_timeout_s=2.5), "init_timeout_s must be a whole number of seconds >= 1, got 2.5"),
    (dict(bind_address="localhost"), "bind_address must be HOST:PORT"),
    (dict(seed=-1), "seed must be an int in [0, 2**32) or None, got -1"),
])
def test_initialize_refuses_a_bad_setting_before_starting_jax(kwargs, message):
    import jax
    from keras_impl.multiprocess import ProcessGroup, initialize
    with pytest.raises(ValueError, match=re.escape(message)):
        initialize(ProcessGroup("127.0.0.1:1", 2, 0), **kwargs)
    assert not jax.distributed.is_initialized()


def test_bench_refuses_bad_multiprocess_settings_before_any_work(tmp_path):
    from parity_tests.bench.test_bench_inputs import REFUSALS
    argvs = [["--num-processes", "2"],
             ["--data-parallel", "--backend", "jax", "--coordinator", "127.0.0.1:70000", "--num-processes", "2",
              "--process-id", "0"],
             ["--data-parallel", "--backend", "jax", "--coordinator", "127.0.0.1:7000", "--num-processes", "2",
              "--process-id", "2"],
             ["--data-parallel", "--backend", "jax", "--num-processes", "2"],  # the rest from SLURM's variables
             ["--data-parallel", "--backend", "torch", "--coordinator", "127.0.0.1:7000", "--num-processes", "2",
              "--process-id", "1"],
             ["--data-parallel", "--backend", "jax", "--coordinator", "127.0.0.1:7000", "--num-processes", "2",
              "--process-id", "1", "--resume"],
             ["--data-parallel", "--backend", "jax"]]  # from the environment below
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "JAX_", "KERAS_DISTRIBUTION_"))}
    env.update(PYTHONPATH=str(ROOT), **{**SLURM_ENV, "SLURM_PROCID": "7"})
    proc = subprocess.run([sys.executable, "-c", REFUSALS, json.dumps([["bench", *a, "--out", str(tmp_path / "o")]
                                                                         for a in argvs])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["imported"] == []  # every check before any framework import
    expected = ["bilstm bench: error: --num-processes: data parallelism across processes needs --data-parallel",
                "bilstm bench: error: --data-parallel: --coordinator must be HOST:PORT with a port in 1..65535, got '127.0.0.1:70000'",
                "bilstm bench: error: --data-parallel: --process-id must be in [0, 2) for 2 processes, got '2'",
                "bilstm bench: error: --data-parallel: --process-id (from SLURM_PROCID) must be in [0, 2) for 2 processes, got '7'",
                "bilstm bench: error: --data-parallel across processes runs on JAX: add --backend jax (got torch)",
                "bilstm bench: error: --resume cannot continue a run across processes",
                "bilstm bench: error: --data-parallel: --process-id (from SLURM_PROCID) must be in [0, 4) for 4 processes, got '7'"]
    for argv, want, got in zip(argvs, expected, report["results"]):
        lines = got["stderr"].splitlines()
        assert got["rc"] == 2 and len(lines) == 1 and want in lines[0], (argv, got)
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- the bench worker in lockstep with the others

def test_lockstep_worker_runs_every_case_the_same_way_whatever_the_clock(tmp_path):
    """Across processes every step is a collective: a worker may not skip, re-measure or time a different
    number of steps than the others, and a failed case must end it (so that the others fail, not wait)."""
    from benchmarks.cases import Case
    from benchmarks.runner import LOCKSTEP_STEPS, run_group
    from benchmarks.step import Step
    from benchmarks.store import ResultsStore
    cases = [Case("keras", "jax", "cpu", "auto", b, 10, 20, n_devices=2) for b in (2, 4, 6)]
    runs = []

    def build(case):
        if case.batch == 6:
            raise RuntimeError("out of memory")

        def run():  # steps of 0, 2 and 4 ms in turn: every measurement is noisy, and would be measured again
            time.sleep(0.002 * (len(runs) % 3))
            runs.append(case.batch)
        return Step(run=run, sync=lambda out: None, describe=lambda: {"kernel": "x"})

    from benchmarks import runner
    with pytest.raises(RuntimeError, match="out of memory"):
        run_group(cases, build, ResultsStore(tmp_path), time.time() - 1, case_seconds=0.01, lockstep=True,
                  log=lambda s: None)
    saved = ResultsStore(tmp_path).records
    for case in cases[:2]:  # the deadline had passed: run all the same, over exactly LOCKSTEP_STEPS, measured once
        assert saved[case.key]["status"] == "ok"
        assert (saved[case.key]["repeats"], saved[case.key]["measurements"]) == (LOCKSTEP_STEPS, 1)
        assert saved[case.key]["noisy"] is True
        assert runs.count(case.batch) == 1 + runner.WARMUP_STEPS + LOCKSTEP_STEPS
    assert saved[cases[2].key]["status"] == "error"  # recorded, then the worker ends


@pytest.mark.slow
def test_bench_data_parallel_runs_across_two_processes(tmp_path):
    """``bilstm bench --data-parallel`` on 2 processes (127.0.0.1): both time the same case in lockstep."""
    port = free_port()
    procs = []
    try:
        for k in range(2):
            env = child_env(port, k)
            for name in ("JAX_COORDINATOR_ADDRESS", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID"):
                env.pop(name)  # the options say it here
            argv = [sys.executable, "-m", "benchmarks.train_speed", "--backend", "jax", "--no-raw", "--no-summary",
                    "--data-parallel", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id",
                    str(k), "--batches", "2", "--timesteps", "10", "--units", "20", "--devices", "cpu",
                    "--budget", "240", "--out", str(tmp_path / f"p{k}")]
            procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, start_new_session=True))
        logs = [proc.communicate(timeout=RUN_BOUND_S)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    from benchmarks.runner import LOCKSTEP_STEPS
    from benchmarks.store import ResultsStore
    for k, (proc, log) in enumerate(zip(procs, logs)):
        assert proc.returncode == 0, log[-3000:]
        records = list(ResultsStore(tmp_path / f"p{k}").records.values())
        assert [r["key"] for r in records] == ["keras-jax-cpu-auto-dp2|B2|T10|U20|D16|float32"]
        r = records[0]
        assert (r["status"], r["repeats"], r["processes"], r["process_id"], r["n_devices"]) == (
            "ok", LOCKSTEP_STEPS, 2, k, 2), r


def test_bench_data_parallel_with_the_coordinators_port_taken_records_one_line_error(tmp_path):
    """Once each of the four worker starts printed a traceback, the last one segfaulted, and results.json held no
    record. Now the case is recorded as an error naming the port, and the log says so in one line."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:  # another program holds the port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = child_env(port, 0)
        for name in ("JAX_COORDINATOR_ADDRESS", "KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID"):
            env.pop(name)
        argv = [sys.executable, "-m", "keras_impl.cli", "bench", "--backend", "jax", "--no-raw", "--no-summary",
                "--data-parallel", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "0",
                "--batches", "2", "--timesteps", "10", "--units", "20", "--devices", "cpu", "--budget", "240",
                "--out", str(tmp_path / "p0")]
        proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=RUN_BOUND_S)
    from benchmarks.store import ResultsStore
    records = list(ResultsStore(tmp_path / "p0").records.values())
    assert [r["key"] for r in records] == ["keras-jax-cpu-auto-dp2|B2|T10|U20|D16|float32"], proc.stdout[-3000:]
    error = records[0].get("error", "")
    assert records[0]["status"] == "error" and f"port {port}" in error and "in use" in error, records[0]
    assert "\n" not in error
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "restart" not in output, output[-3000:]
    assert proc.returncode == 1, output[-3000:]  # no case timed
    lines = [line for line in output.splitlines() if f"port {port}" in line]
    assert len(lines) == 1 and "error" in lines[0] and "in use" in lines[0], output[-3000:]


def test_process_0_checks_the_coordinators_port_before_jax_and_names_it():
    from keras_impl.multiprocess import CoordinatorPortError, ProcessGroup, check_coordinator_port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        group = ProcessGroup(f"127.0.0.1:{port}", 2, 0)
        for bind in (None, f"127.0.0.1:{port}"):  # JAX's default ([::]:PORT, every interface) and a given one
            with pytest.raises(CoordinatorPortError, match=f"the coordinator's port {port} is in use"):
                check_coordinator_port(group, bind, environ={})
        check_coordinator_port(ProcessGroup(f"127.0.0.1:{port}", 2, 1), environ={})  # process 1 listens on nothing
    check_coordinator_port(ProcessGroup(f"127.0.0.1:{free_port()}", 2, 0), environ={})  # a free port passes

