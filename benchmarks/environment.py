"""What machine a benchmark runs on, which device a process sees, and the TF32 switch.

Nothing here imports Keras; the framework imports happen inside the functions,
in the one process that times that framework.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess

# Dense peaks of the NVIDIA H200 SXM (= H100 SXM arithmetic), TFLOP/s, from the vendor's
# datasheet ("NVIDIA H200 Tensor Core GPU"): plain FP32 67;
# TF32 tensor cores 495 dense (989 is the 2:4-sparse figure, not used here).
GPU_PEAKS_TFLOPS = {"H200": {"fp32": 67.0, "tf32": 494.7}, "H100": {"fp32": 67.0, "tf32": 494.7}}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def gpu_names() -> list[str]:
    """GPU names from nvidia-smi (no framework import); empty where there is none."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def describe_machine() -> dict:
    """A JSON-ready description of this machine (the header of every results file)."""
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": memory_gib(),
        "gpus": gpu_names(),
    }


def machine_id(description: dict | None = None) -> str:
    """A folder name for this machine's results, e.g. ``cpu-2c-intel-xeon-processor`` or ``nvidia-h200-16c-...``."""
    d = description or describe_machine()
    slug = lambda s: re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")  # noqa: E731
    cpu = slug(re.sub(r"\((R|TM)\)", "", d["cpu"]))[:40].strip("-")
    head = slug(d["gpus"][0]) + (f"-x{len(d['gpus'])}" if len(d["gpus"]) > 1 else "") if d["gpus"] else "cpu"
    return f"{head}-{d['cpu_count']}c-{cpu}"


def hide_gpus_env(env: dict) -> dict:
    """Environment for a process that must compute on the CPU although a GPU is present."""
    env = dict(env)
    env["CUDA_VISIBLE_DEVICES"] = ""  # torch, TensorFlow
    env["JAX_PLATFORMS"] = "cpu"
    return env


THREADS_VAR = "BILSTM_BENCH_THREADS"


def threads_env(env: dict, threads: int | None) -> dict:
    """Environment for a worker limited to ``threads`` CPU threads (None: the frameworks' defaults)."""
    env = dict(env)
    if threads is None:
        env.pop(THREADS_VAR, None)
        return env
    n = str(threads)
    env.update({THREADS_VAR: n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,  # torch (OpenMP, MKL)
                "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n})   # TensorFlow
    return env


def limit_threads() -> int | None:
    """In a worker, before any framework import: pin this process to ``BILSTM_BENCH_THREADS`` CPUs.

    XLA (jax), TensorFlow and OpenMP size their thread pools from the CPUs a process may
    run on, so pinning limits every framework alike. On a machine shared with other work,
    more threads than free cores make OpenMP's barriers spin and wait (torch suffers most):
    one thread a worker gives comparable, repeatable CPU timings there.
    """
    n = os.environ.get(THREADS_VAR)
    if not n:
        return None
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[: int(n)]
        os.sched_setaffinity(0, cpus)
    return int(n)


def tf32_env(env: dict, on: bool) -> dict:
    """``NVIDIA_TF32_OVERRIDE=0`` stops cuBLAS and cuDNN from using TF32 whatever a framework asks."""
    env = dict(env)
    if on:
        env.pop("NVIDIA_TF32_OVERRIDE", None)
    else:
        env["NVIDIA_TF32_OVERRIDE"] = "0"
    return env


def framework_device(framework: str) -> tuple[str, str]:
    """(``cpu`` | ``gpu``, device name) of the device ``framework`` computes on in this process."""
    if framework == "torch":
        import torch
        if torch.cuda.is_available():
            return "gpu", torch.cuda.get_device_name(0)
        return "cpu", cpu_model()
    if framework == "jax":
        import jax
        d = jax.devices()[0]
        return ("cpu", cpu_model()) if d.platform == "cpu" else ("gpu", d.device_kind)
    if framework == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
            return "gpu", name
        return "cpu", cpu_model()
    raise ValueError(f"framework must be one of jax, torch, tensorflow; got {framework!r}")

