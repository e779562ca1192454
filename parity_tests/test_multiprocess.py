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
within SURVIVOR_BOUND_S. Every child is killed and reaped whatever happens; the
run as a whole has a hard bound (RUN_BOUND_S).

JAX-only: ``jax.distributed`` is JAX's runtime and Keras 3.15 implements
``keras.distribution`` for JAX alone, so the test runs in the KERAS_BACKEND=jax
pass of ``make test`` and is skipped in the others.
"""
from __future__ import annotations

import importlib.util
import json
import os
import queue
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

ROOT = Path(__file__).resolve().parent.parent
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
    import json, sys
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
    if group.process_id == 1:
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
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    started = time.monotonic()
    port = free_port()
    procs, outs, errs, lines = [], [], [], []
    try:
        for k in range(2):
            proc = subprocess.Popen([sys.executable, "-c", CHILD], env=child_env(port, k), cwd=ROOT, text=True,
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
        time.sleep(0.5)  # process 0 is now in (or entering) update 4, a collective waiting on process 1
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].wait(timeout=30)
        killed = time.monotonic()
        try:
            survivor_rc = procs[0].wait(timeout=SURVIVOR_BOUND_S)
        except subprocess.TimeoutExpired:
            survivor_rc = None  # hung: the test fails on it below, after the clean-up
        survivor_s = time.monotonic() - killed
        time.sleep(0.2)  # let the pump threads take the last lines
        return {"results": results, "one_losses": one_losses, "one_weights": one_weights, "trained_s": trained_s,
                "survivor_rc": survivor_rc, "survivor_s": survivor_s, "survivor_out": "".join(outs[0]),
                "survivor_err": "".join(errs[0]), "victim_rc": procs[1].returncode, "total_s": time.monotonic() - started}
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


def test_killed_process_makes_the_other_fail_clearly_instead_of_hanging(two_processes):
    r = two_processes
    print(f"trained in {r['trained_s']:.1f} s; survivor exited {r['survivor_s']:.1f} s after the kill "
          f"with status {r['survivor_rc']}; whole run {r['total_s']:.1f} s")
    assert r["victim_rc"] == -signal.SIGKILL
    assert r["survivor_rc"] is not None, f"process 0 still running {SURVIVOR_BOUND_S} s after process 1 was killed"
    assert r["survivor_rc"] != 0
    assert "SURVIVOR FINISHED" not in r["survivor_out"]
    assert "PeerLostError: process 0 of 2: update 1 failed in a step that needs every process" in r["survivor_err"]
