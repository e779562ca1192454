"""Figures of a results folder (matplotlib, drawn to PNG files next to the results, each written atomically).

- ``gpu_speedup.png`` (GPU results only): CPU step time / GPU step time, a heatmap over batch x units
  for each implementation timed on both devices, one column per timesteps value.
- ``keras_over_raw_<device>.png``: Keras step time / raw step time, heatmaps over batch x units.
- ``sequences_per_s_<device>.png``: sequences a second, heatmaps over batch x units.
- ``crossover_<device>.png``: on a GPU, speedup against batch (where it crosses 1 the GPU starts to pay);
  on the CPU only, sequences/s against batch for every implementation (where the lines cross, the
  fastest implementation changes).
Missing cells (skipped, failed, not run) are grey. Noisy timings (``benchmarks.records``: IQR over 10% of
the median) are marked apart: a heatmap cell that involves one has its value followed by ``~`` (in red),
and a noisy point on a crossover plot is an ``x``, not a dot.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, TwoSlopeNorm  # noqa: E402

from benchmarks.cases import BATCHES, TIMESTEPS, UNITS  # noqa: E402
from benchmarks.records import NOISE_THRESHOLD, cpu_counterpart, is_noisy, ok_by_group  # noqa: E402
from keras_impl.files import atomic_savefig  # noqa: E402


def grid(values: dict[tuple, float], timesteps: int) -> np.ndarray:
    """(len(BATCHES), len(UNITS)) array of values[(B, T, U)], NaN where missing."""
    out = np.full((len(BATCHES), len(UNITS)), np.nan)
    for i, b in enumerate(BATCHES):
        for j, u in enumerate(UNITS):
            out[i, j] = values.get((b, timesteps, u), np.nan)
    return out


NOISY_MARK = "~"       # after a heatmap cell's value
NOISY_MARKER = "x"     # a noisy point on a line plot (steady points: "o")
NOISY_NOTE = f"{NOISY_MARK} / {NOISY_MARKER}: noisy, IQR over {NOISE_THRESHOLD:.0%} of the median"


def heatmap(ax, data: np.ndarray, title: str, *, norm, cmap: str, fmt, noisy=None, timesteps: int | None = None) -> None:
    masked = np.ma.masked_invalid(data)
    cm = plt.get_cmap(cmap).with_extremes(bad="#dddddd")
    ax.imshow(masked, cmap=cm, norm=norm, aspect="auto", origin="lower")
    ax.set_xticks(range(len(UNITS)), [str(u) for u in UNITS])
    ax.set_yticks(range(len(BATCHES)), [str(b) for b in BATCHES])
    ax.set_xlabel("units U")
    ax.set_ylabel("batch B")
    ax.set_title(title, fontsize=8)
    noisy = noisy or set()
    for i, b in enumerate(BATCHES):
        for j, u in enumerate(UNITS):
            if not math.isnan(data[i, j]):
                if (b, timesteps, u) in noisy:
                    ax.text(j, i, fmt(data[i, j]) + NOISY_MARK, ha="center", va="center", fontsize=7, color="red",
                            style="italic")
                else:
                    ax.text(j, i, fmt(data[i, j]), ha="center", va="center", fontsize=7)


def ratio_norm(values: list[float]):
    finite = [v for v in values if v > 0 and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.5, 2.0)
    lo, hi = min(lo, 0.99), max(hi, 1.01)
    return TwoSlopeNorm(vcenter=0.0, vmin=math.log10(lo), vmax=math.log10(hi))


def ratio_panels(path: Path, rows: list[tuple[str, dict]], suptitle: str, label: str, noisy: list[set] | None = None) -> Path:
    """One row per (name, {(B,T,U): ratio}), one column per timesteps value; colour = log10(ratio), 0 = parity.
    ``noisy``: for each row, the shapes where either timing is noisy (marked)."""
    fig, axes = plt.subplots(len(rows), len(TIMESTEPS), figsize=(4.2 * len(TIMESTEPS), 3.0 * len(rows)), squeeze=False)
    norm = ratio_norm([v for _, vals in rows for v in vals.values()])
    for r, (name, vals) in enumerate(rows):
        for c, t in enumerate(TIMESTEPS):
            heatmap(axes[r][c], np.log10(grid(vals, t)), f"{name}, T={t}", norm=norm, cmap="coolwarm",
                    fmt=lambda v: f"{10 ** v:.2g}", noisy=noisy[r] if noisy else None, timesteps=t)
    fig.suptitle(f"{suptitle}\n(cell: {label}; red > 1 > blue; {NOISY_NOTE})", fontsize=9)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


def draw_all(directory: Path, machine: dict, records: list[dict]) -> list[Path]:
    directory = Path(directory)
    ok = ok_by_group(records)
    median = {g: {s: r["median_s"] for s, r in cases.items()} for g, cases in ok.items()}
    noisy = {g: {s for s, r in cases.items() if is_noisy(r)} for g, cases in ok.items()}
    devices = sorted({r["device"] for r in records if r.get("status") == "ok"}, key=lambda d: d != "gpu")
    figures = []
    if "gpu" in devices:
        rows, marks = [], []
        for g in sorted(g for g in median if "-gpu-" in g):
            cpu = cpu_counterpart(g)
            if cpu in median:
                rows.append((f"{g} vs {cpu}", {s: median[cpu][s] / median[g][s] for s in set(median[g]) & set(median[cpu])}))
                marks.append(noisy[g] | noisy[cpu])
        if rows:
            figures.append(ratio_panels(directory / "gpu_speedup.png", rows, "GPU speedup over CPU",
                                        "CPU time / GPU time", marks))
    for device in devices:
        keras = sorted(g for g in median if g.startswith("keras-") and f"-{device}-" in g)
        raw = sorted(g for g in median if g.startswith("raw-") and f"-{device}-" in g)
        rows = [(f"{k} / {r}", {s: median[k][s] / median[r][s] for s in set(median[k]) & set(median[r])},
                 noisy[k] | noisy[r]) for k in keras for r in raw]
        rows = [row for row in rows if row[1]]
        if rows:
            figures.append(ratio_panels(directory / f"keras_over_raw_{device}.png", [row[:2] for row in rows],
                                        f"Keras step time over raw step time, {device.upper()}", "Keras / raw",
                                        [row[2] for row in rows]))
        groups = keras + raw
        if groups:
            fig, axes = plt.subplots(len(groups), len(TIMESTEPS), figsize=(4.2 * len(TIMESTEPS), 3.0 * len(groups)), squeeze=False)
            seqs = {g: {s: r["sequences_per_s"] for s, r in ok[g].items()} for g in groups}
            allv = [v for g in groups for v in seqs[g].values()]
            norm = LogNorm(vmin=min(allv), vmax=max(allv))
            for r, g in enumerate(groups):
                for c, t in enumerate(TIMESTEPS):
                    heatmap(axes[r][c], grid(seqs[g], t), f"{g}, T={t}", norm=norm, cmap="viridis",
                            fmt=lambda v: f"{v:.2g}", noisy=noisy[g], timesteps=t)
            fig.suptitle(f"Sequences per second, one training step, {device.upper()} ({NOISY_NOTE})", fontsize=9)
            fig.tight_layout()
            path = directory / f"sequences_per_s_{device}.png"
            atomic_savefig(fig, path)
            plt.close(fig)
            figures.append(path)
        figures.append(crossover(directory, device, ok, median, noisy))
    return [f for f in figures if f is not None]


def _line(ax, points: list[tuple[int, float, bool]], label: str, colour, **style) -> None:
    """A line through every point; steady points as dots, noisy ones as crosses."""
    xs, ys, _ = zip(*points)
    ax.plot(xs, ys, label=label, color=colour, **style)
    steady = [(x, y) for x, y, n in points if not n]
    shaky = [(x, y) for x, y, n in points if n]
    if steady:
        ax.plot(*zip(*steady), linestyle="none", marker="o", color=colour, **style)
    if shaky:
        ax.plot(*zip(*shaky), linestyle="none", marker=NOISY_MARKER, markersize=9, color=colour, label=NOISY_NOTE)


def crossover(directory: Path, device: str, ok: dict, median: dict, noisy: dict | None = None) -> Path | None:
    noisy = noisy or {}
    t = max(TIMESTEPS)
    # One colour a group in every panel, whichever groups a panel has.
    colours = {g: f"C{k % 10}" for k, g in enumerate(sorted(g for g in ok if f"-{device}-" in g))}
    fig, axes = plt.subplots(1, len(UNITS), figsize=(3.6 * len(UNITS), 3.4), squeeze=False, sharey=True)
    drew = False
    for c, u in enumerate(UNITS):
        ax = axes[0][c]
        if device == "gpu":
            for g in sorted(g for g in median if "-gpu-" in g):
                cpu = cpu_counterpart(g)
                pts = [(b, median[cpu][(b, t, u)] / median[g][(b, t, u)],
                        (b, t, u) in noisy.get(g, set()) | noisy.get(cpu, set())) for b in BATCHES
                       if (b, t, u) in median[g] and (b, t, u) in median.get(cpu, {})]
                if pts:
                    _line(ax, pts, g, colours.get(g))
                    drew = True
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
            ax.set_ylabel("CPU time / GPU time")
        else:
            for g in sorted(g for g in ok if f"-{device}-" in g):
                pts = [(b, ok[g][(b, t, u)]["sequences_per_s"], is_noisy(ok[g][(b, t, u)])) for b in BATCHES
                       if (b, t, u) in ok[g]]
                if pts:
                    _line(ax, pts, g, colours[g], alpha=0.85)
                    drew = True
            ax.set_ylabel("sequences / s")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch B")
        ax.set_title(f"U={u}, T={t}", fontsize=9)
    if not drew:
        plt.close(fig)
        return None
    handles = {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), fontsize=6, loc="lower center", ncol=min(4, len(handles)))
    fig.suptitle("GPU speedup against batch (crosses 1 where the GPU starts to pay)" if device == "gpu"
                 else "Throughput against batch on the CPU (crossing lines: the fastest implementation changes)", fontsize=9)
    fig.tight_layout(rect=(0, 0.12, 1, 1))  # room for the legend below
    path = directory / f"crossover_{device}.png"
    atomic_savefig(fig, path)
    plt.close(fig)
    return path
