"""Benchmark records grouped for reading: by group (implementation, framework, device, path) and shape,
and which timings are steady enough to compare.

Shared by the timing loop (``benchmarks.runner``: when to measure again), the tables
(``benchmarks.summary``) and the figures (``benchmarks.plots``), which import this module
and never each other's helpers.

The noise rule: a timing is *noisy* when its interquartile range exceeds ``NOISE_THRESHOLD``
of its median (IQR / median > 0.10). The runner measures a noisy case again (at most
``MAX_REMEASURES`` times, while its time allows) and keeps the steadiest measurement; a
record still noisy carries ``noisy: true`` and is left out of every comparison the summary
draws (ratios, fastest implementation, GPU targets, CPU against GPU).
"""
from __future__ import annotations

NOISE_THRESHOLD = 0.10  # IQR / median above this: the timing is noisy
MAX_REMEASURES = 2      # a noisy timing is measured again at most this many times (3 measurements in all)


def group_of(r: dict) -> str:
    return r["key"].split("|")[0]


def shape_of(r: dict) -> tuple[int, int, int]:
    return r["batch"], r["timesteps"], r["units"]


def relative_spread(q1: float, median: float, q3: float) -> float:
    """IQR / median: the spread of one timing as a fraction of its value."""
    return (q3 - q1) / median


def is_noisy(r: dict) -> bool:
    """The record's own flag; for records written before the flag existed, the rule applied to its quartiles."""
    if isinstance(r.get("noisy"), bool):
        return r["noisy"]
    try:
        return relative_spread(r["q1_s"], r["median_s"], r["q3_s"]) > NOISE_THRESHOLD
    except (KeyError, TypeError, ZeroDivisionError):
        return False


def ok_by_group(records: list[dict], *, steady: bool = False) -> dict[str, dict[tuple, dict]]:
    """{group: {(B, T, U): record}} for the cases that finished (``steady=True``: and are not noisy)."""
    out: dict[str, dict[tuple, dict]] = {}
    for r in records:
        if r.get("status") == "ok" and not (steady and is_noisy(r)):
            out.setdefault(group_of(r), {})[shape_of(r)] = r
    return out


def cpu_counterpart(gpu_group: str) -> str:
    """The CPU group a GPU group is compared with: the same implementation, the CPU's kernel path for it
    (Keras use_cudnn=False has no CPU form of its own: "auto" is the same there; JAX's cuDNN RNN: lax.scan),
    and no TF32 suffix (TF32 is a GPU setting: CPU cases never carry it)."""
    return (gpu_group.replace("-gpu-", "-cpu-").replace("-generic", "-auto").replace("-cudnn", "-scan")
            .replace("-tf32", ""))
