"""Data parallelism across processes (and hosts) on JAX's own runtime: ``jax.distributed.initialize``.

Every process runs the same program; ``initialize`` joins them into one JAX
runtime, after which ``jax.devices()`` (and so ``keras.distribution.list_devices()``
and ``keras_impl.distributed.data_parallel()``) lists the devices of every process,
and a ``keras.distribution.DataParallel`` over them trains one model whose
gradients are averaged across processes (on the CPU through JAX's Gloo
collectives, on GPUs through NCCL). Each process feeds only its own rows of a
global batch (``keras_impl.distributed.process_rows``).

    group = resolve_process_group()              # from arguments or the environment (below); None: one process
    initialize(group, seed=0)                    # before any JAX computation
    with data_parallel().scope():
        model = build_model(spec); ...
    train_stream(model, xs, ys, distribution=dp) # every process passes the same xs, ys: each takes its rows

Settings, first found wins (an argument, then the environment):

    coordinator    argument | JAX_COORDINATOR_ADDRESS | KERAS_DISTRIBUTION_JOB_ADDRESSES (its first address) | SLURM
    num_processes  argument | KERAS_DISTRIBUTION_NUM_PROCESSES | SLURM_NTASKS
    process_id     argument | KERAS_DISTRIBUTION_PROCESS_ID | SLURM_PROCID

These are the variables jax 0.10.2 and Keras 3.15.1 themselves read:
``jax/_src/distributed.py`` reads JAX_COORDINATOR_ADDRESS (and, itself,
JAX_COORDINATOR_BIND_ADDRESS and JAX_LOCAL_DEVICE_IDS); its SLURM detection
(``jax/_src/clusters/slurm_cluster.py``) needs SLURM_JOB_ID, SLURM_STEP_NODELIST,
SLURM_NTASKS, SLURM_PROCID and SLURM_LOCALID, and takes the coordinator as the
step's first node, port JAX_COORDINATOR_PORT or SLURM_JOB_ID mod 4096 + 61440;
``keras.distribution.initialize`` reads KERAS_DISTRIBUTION_JOB_ADDRESSES,
KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID. Neither reads
a JAX_NUM_PROCESSES or JAX_PROCESS_ID, and neither does this module.

Every setting is checked here, without importing JAX or Keras, before anything
starts: a bad one is a ValueError naming the setting, where it came from and
the bad value. No setting at all means one process (``resolve_process_group``
returns None); some but not all of them is an error naming what is missing.

Failure: each process sends heartbeats to the coordination service; a process
that dies (or stops) is declared dead after ``heartbeat_timeout_s``, and a
collective that was waiting on it fails at once (its connection is reset). The
survivors then fail with an error (``keras_impl.distributed`` re-raises it as
``PeerLostError``) and JAX ends each of them when it shuts down, instead of
waiting for ever. ``init_timeout_s`` bounds the wait for every process to join.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import random
import re
import socket
from dataclasses import dataclass

# JAX's own defaults (jax/_src/distributed.py) are 300 s to join, 100 s of missed heartbeats, 300 s to
# shut down: a dead peer then takes minutes to be noticed. These are shorter and still far above the
# heartbeat interval on a loaded machine.
DEFAULT_INIT_TIMEOUT_S = 120
DEFAULT_HEARTBEAT_TIMEOUT_S = 30
DEFAULT_SHUTDOWN_TIMEOUT_S = 30
SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.\-_]*[A-Za-z0-9])?")


class CoordinatorPortError(RuntimeError):
    """Process 0 cannot listen on the coordinator's port (another program holds it): one line naming the port."""


@dataclass(frozen=True)
class ProcessGroup:
    """One process's place in a multi-process run: who coordinates, how many processes, which one this is."""
    coordinator: str     # "HOST:PORT" of process 0's coordination service
    num_processes: int
    process_id: int
    sources: tuple[str, str, str] = ("argument", "argument", "argument")  # where each setting came from

    def __str__(self) -> str:
        return f"process {self.process_id} of {self.num_processes}, coordinator {self.coordinator}"


def check_coordinator(value, source: str = "coordinator") -> str:
    """``HOST:PORT``: a host name, an IPv4 address or a bracketed IPv6 address, and a port in 1..65535."""
    if not isinstance(value, str):
        raise TypeError(f"{source} must be a string HOST:PORT, got {type(value).__name__}")
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise ValueError(f"{source} must be HOST:PORT with a port in 1..65535, got {value!r}")
    if host.startswith("["):
        try:
            if not host.endswith("]"):
                raise ValueError
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{source} has a bad IPv6 host {host!r} (expected [ADDRESS]:PORT), got {value!r}") from None
    elif not _HOST.fullmatch(host):
        raise ValueError(f"{source} has a bad host {host!r} (a name or an IPv4 address; IPv6 in brackets), got {value!r}")
    return f"{host}:{int(port)}"


def _as_int(value, source: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{source} must be an int, got bool {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    raise ValueError(f"{source} must be an integer, got {value!r}")


def check_counts(num_processes, process_id, sources=("num_processes", "process_id")) -> tuple[int, int]:
    n = _as_int(num_processes, sources[0])
    if n < 1:
        raise ValueError(f"{sources[0]} must be at least 1, got {num_processes!r}")
    k = _as_int(process_id, sources[1])
    if not 0 <= k < n:
        raise ValueError(f"{sources[1]} must be in [0, {n}) for {n} processes, got {process_id!r}")
    return n, k


def check_timeout(value, name: str) -> int:
    """Whole seconds >= 1 (JAX takes ints)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of seconds >= 1, got {value!r}")
    return value


def slurm_coordinator(environ) -> str:
    """The coordinator JAX's SLURM detection would choose: the step's first node, a port from the job id."""
    nodes = environ["SLURM_STEP_NODELIST"].strip()
    end = next((i for i, ch in enumerate(nodes) if ch in ",["), len(nodes))
    host = nodes[:end]
    if end < len(nodes) and nodes[end] == "[":  # node[001-015],x -> node001
        first = re.split(r"[,\-\]]", nodes[end + 1:], maxsplit=1)[0]
        host += first
    port = environ.get("JAX_COORDINATOR_PORT")
    if port is None:
        job = _as_int(environ["SLURM_JOB_ID"], "SLURM_JOB_ID")
        port = str(job % 2 ** 12 + (65535 - 2 ** 12 + 1))
    return f"{host}:{port}"


def resolve_process_group(coordinator=None, num_processes=None, process_id=None, *, environ=None,
                          names=("coordinator", "num_processes", "process_id")) -> ProcessGroup | None:
    """The settings from the arguments, else the environment (see the module's docstring), all checked.

    None when nothing asks for more than one process: no setting anywhere. Raises ValueError (TypeError
    for a value of the wrong type) naming the setting (as ``names`` call them: a command passes its
    options) and its source before anything is started.
    """
    env = os.environ if environ is None else environ
    slurm = all(v in env for v in SLURM_VARIABLES)
    found = []
    for value, name, variables, slurm_var in (
            (coordinator, names[0], ("JAX_COORDINATOR_ADDRESS", "KERAS_DISTRIBUTION_JOB_ADDRESSES"), None),
            (num_processes, names[1], ("KERAS_DISTRIBUTION_NUM_PROCESSES",), "SLURM_NTASKS"),
            (process_id, names[2], ("KERAS_DISTRIBUTION_PROCESS_ID",), "SLURM_PROCID")):
        if value is not None:
            found.append((value, name))
            continue
        var = next((v for v in variables if env.get(v, "").strip()), None)
        if var is not None:
            text = env[var].strip()
            found.append((text.split(",")[0].strip() if var == "KERAS_DISTRIBUTION_JOB_ADDRESSES" else text,
                          f"{name} (from {var})"))
        elif slurm:
            found.append((slurm_coordinator(env), f"{name} (from SLURM_STEP_NODELIST)") if slurm_var is None
                         else (env[slurm_var], f"{name} (from {slurm_var})"))
        else:
            found.append((None, name))
    missing = [name for value, name in found if value is None]
    if len(missing) == 3:
        return None
    if missing:
        given = ", ".join(f"{name}={value!r}" for value, name in found if value is not None)
        raise ValueError(f"multi-process settings are incomplete: {', '.join(missing)} not set ({given} given); "
                         "set all three (arguments, or JAX_COORDINATOR_ADDRESS, KERAS_DISTRIBUTION_NUM_PROCESSES, "
                         "KERAS_DISTRIBUTION_PROCESS_ID) or none")
    (c, c_src), (n, n_src), (k, k_src) = found
    address = check_coordinator(c, c_src)
    n, k = check_counts(n, k, (n_src, k_src))
    return ProcessGroup(address, n, k, (c_src, n_src, k_src))


def coordinator_bind_address(group: ProcessGroup, bind_address: str | None = None, environ=None) -> str:
    """Where process 0's coordination service will listen: ``bind_address``, else JAX_COORDINATOR_BIND_ADDRESS,
    else every interface on the coordinator's port (``[::]:PORT``), as jax/_src/distributed.py chooses."""
    env = os.environ if environ is None else environ
    port = group.coordinator.rsplit(":", 1)[1]
    return bind_address or env.get("JAX_COORDINATOR_BIND_ADDRESS") or f"[::]:{port}"


def check_coordinator_port(group: ProcessGroup, bind_address: str | None = None, environ=None) -> None:
    """On process 0, before JAX: that the coordination service can listen where it will, else
    ``CoordinatorPortError`` naming the port. JAX itself would fail with "Failed to start RPC server" and no
    port, or worse: the process dies of SIGSEGV inside JAX at times (once in 6 tries here), before any handler runs.
    Another program may still take the port between this check and JAX's own bind: ``initialize`` reports
    that failure the same way when JAX raises it."""
    if group.process_id != 0:
        return
    address = coordinator_bind_address(group, bind_address, environ)
    host, _, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") else host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As gRPC's own listener does: a port left in TIME_WAIT by an earlier run is free to take.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, int(port)))
    except OSError as exc:
        if exc.errno == errno.EAFNOSUPPORT and family == socket.AF_INET6:  # no IPv6 here: JAX falls back too
            return check_coordinator_port(group, f"0.0.0.0:{port}", environ)
        raise CoordinatorPortError(_port_message(group, address, exc.strerror or str(exc))) from None


def _port_message(group: ProcessGroup, address: str, why: str) -> str:
    port = address.rpartition(":")[2]
    return (f"the coordinator's port {port} is in use or cannot be listened on here ({address}: {why}): "
            f"process 0 of {group.num_processes} runs the coordination service there; free the port or choose "
            "another in the coordinator's address")


def initialize(group: ProcessGroup, *, seed: int | None = None, init_timeout_s: int = DEFAULT_INIT_TIMEOUT_S,
               heartbeat_timeout_s: int = DEFAULT_HEARTBEAT_TIMEOUT_S,
               shutdown_timeout_s: int = DEFAULT_SHUTDOWN_TIMEOUT_S, bind_address: str | None = None) -> None:
    """Join this process to ``group`` (``jax.distributed.initialize``), then agree on Keras's random seed.

    Call it once a process, before any JAX computation. ``bind_address`` is where process 0's
    coordination service listens (default: JAX's, every interface on the coordinator's port, or
    JAX_COORDINATOR_BIND_ADDRESS). The seed: weights are created on every process and must be equal
    (JAX refuses to place differing values), so Python's ``random`` and NumPy's global generator, from
    which Keras draws its unseeded seeds, are seeded alike on every process: with ``seed``, or, when
    ``seed`` is None, process 0's random draw, broadcast (as ``keras.distribution.initialize`` does).
    Raises ValueError naming a bad setting before JAX is touched, and ``CoordinatorPortError`` (naming the
    port) on process 0 when the coordination service cannot listen on its port.
    """
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"group must be a ProcessGroup (resolve_process_group()), got {type(group).__name__}")
    check_coordinator(group.coordinator, "group.coordinator")
    check_counts(group.num_processes, group.process_id, ("group.num_processes", "group.process_id"))
    timeouts = {name: check_timeout(value, name) for name, value in (
        ("init_timeout_s", init_timeout_s), ("heartbeat_timeout_s", heartbeat_timeout_s),
        ("shutdown_timeout_s", shutdown_timeout_s))}
    if bind_address is not None:
        bind_address = check_coordinator(bind_address, "bind_address")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32):
        raise ValueError(f"seed must be an int in [0, 2**32) or None, got {seed!r}")
    import keras
    if keras.backend.backend() != "jax":
        raise ValueError(f"multi-process training needs the jax backend, got backend {keras.backend.backend()!r} "
                         "(set KERAS_BACKEND=jax)")
    import jax
    import numpy as np

    if jax.distributed.is_initialized():
        raise RuntimeError("jax.distributed is already initialized in this process: initialize once a process")
    check_coordinator_port(group, bind_address)
    try:
        jax.distributed.initialize(coordinator_address=group.coordinator, num_processes=group.num_processes,
                                   process_id=group.process_id, coordinator_bind_address=bind_address,
                                   initialization_timeout=timeouts["init_timeout_s"],
                                   heartbeat_timeout_seconds=timeouts["heartbeat_timeout_s"],
                                   shutdown_timeout_seconds=timeouts["shutdown_timeout_s"])
    except Exception as exc:  # noqa: BLE001 - JAX's runtime error type is private; its message says what failed
        if group.process_id == 0 and "Failed to start RPC server" in str(exc):  # the port taken since the check
            raise CoordinatorPortError(_port_message(group, coordinator_bind_address(group, bind_address),
                                                     str(exc).strip().splitlines()[0])) from None
        raise
    if jax.process_count() != group.num_processes or jax.process_index() != group.process_id:
        raise RuntimeError(f"JAX joined as process {jax.process_index()} of {jax.process_count()}, "
                           f"asked for {group}")
    if seed is None:
        from jax.experimental import multihost_utils
        draw = np.uint32(np.random.default_rng().integers(2 ** 32, dtype=np.uint64))
        seed = int(multihost_utils.broadcast_one_to_all(draw))
    # What keras.utils.set_random_seed does for JAX, less seeding TensorFlow, which it imports whenever
    # installed (keras/src/utils/rng_utils.py, `if tf.available`): seconds of start-up for nothing here.
    # Keras draws every unseeded SeedGenerator's seed from `random` (seed_generator.make_default_seed),
    # and none exists yet: creating one is a JAX computation, which jax.distributed.initialize forbids.
    random.seed(seed)
    np.random.seed(seed)


def is_multiprocess() -> bool:
    """Whether this process is one of several in a JAX runtime (without importing JAX if it is not loaded)."""
    import sys
    jax = sys.modules.get("jax")
    return jax is not None and jax.distributed.is_initialized() and jax.process_count() > 1
