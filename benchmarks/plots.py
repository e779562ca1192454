"""Figures of a results folder (matplotlib, drawn to PNG files next to the results, each written atomically).

- ``gpu_speedup.png`` (GPU results only): CPU step time / GPU step time, a heatmap over batch x units
  for each implementation timed on both devices, one column per timesteps value.
- ``keras_over_raw_<device>.png``: Keras step time / raw step time, heatmaps over batch x units.
- ``sequences_per_s_<device>.png``: sequences a second, heatmaps over batch x units.
- ``crossover_<device>.png``: on a GPU, speedup against batch (where it crosses 1 the GPU starts to pay);
  on the CPU only, sequences/s against batch for every implementation (where the lines cross, the
  fastest implementation changes).

How they read: a heatmap figure has one colour bar for all its panels; a cell's number is black or white,
whichever contrasts more with the cell's colour; hatched cells were not measured (skipped, failed or not in
the run), as the legend under the figure says. Only what was measured is drawn: the batches, units and
timesteps of the records (a ``--quick`` run gets small figures, never empty panels). Noisy timings
(``benchmarks.records``: IQR over 10% of the median) are marked apart: a heatmap cell that involves one
is in italics with a dagger after its value, and a noisy point on a crossover plot is a black cross
(steady points: dots in the line's colour).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, TwoSlopeNorm, to_rgb  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from benchmarks.cases import BATCHES, UNITS  # noqa: E402
from benchmarks.records import NOISE_THRESHOLD, cpu_counterpart, is_noisy, ok_by_group  # noqa: E402
from keras_impl.files import atomic_savefig  # noqa: E402

NOISY_MARK = "\u2020"    # a dagger after a heatmap cell's value (set in italics)
NOISY_MARKER = "x"       # a noisy point on a line plot (steady points: "o")
NOISY_COLOUR = "black"   # a noisy point's cross, in the plot and in its legend alike
NOISY_NOTE = f"noisy: IQR over {NOISE_THRESHOLD:.0%} of the median"
MISSING_HATCH = "///"      # a cell not measured: grey hatching on white, unlike any colour of a colour map
MISSING_EDGE = "0.6"
MISSING_NOTE = "not measured (skipped, failed or not in this run)"
TEXT_COLOURS = ("black", "white")


def relative_luminance(colour) -> float:
    """WCAG 2 relative luminance of a matplotlib colour, 0 (black) to 1 (white)."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in to_rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first, second) -> float:
    """WCAG 2 contrast ratio of two colours, 1 (same) to 21 (black on white); text reads well from 4.5."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_colour(background) -> str:
    """Black or white, whichever contrasts more with ``background`` (always at least 4.58 : 1)."""
    return max(TEXT_COLOURS, key=lambda c: contrast_ratio(c, background))


def compact(value: float) -> str:
    """Two significant digits without exponents: 0.59, 7.6, 710, 34k, 1.2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2g}{suffix}" if abs(value) < 100 * scale else f"{value / scale:.0f}{suffix}"
    return f"{value:.2g}" if abs(value) < 100 else f"{value:.0f}"


def measured(values: list[dict[tuple, float]]) -> tuple[list[int], list[int], list[int]]:
    """The batches, timesteps and units that occur in any of ``values`` ({(B, T, U): value}), sorted."""
    shapes = {s for v in values for s in v}
    return tuple(sorted({s[k] for s in shapes}) for k in range(3))


def grid(values: dict[tuple, float], timesteps: int, batches=BATCHES, units=UNITS) -> np.ndarray:
    """(len(batches), len(units)) array of values[(B, T, U)], NaN where missing."""
    out = np.full((len(batches), len(units)), np.nan)
    for i, b in enumerate(batches):
        for j, u in enumerate(units):
            out[i, j] = values.get((b, timesteps, u), np.nan)
    return out


def heatmap(ax, data: np.ndarray, title: str, *, norm, cmap: str, fmt, noisy=None, timesteps: int | None = None,
            batches=BATCHES, units=UNITS):
    """One panel: cells coloured by ``norm``, each value written in the colour that reads on its cell. Returns the image."""
    colours = plt.get_cmap(cmap).with_extremes(bad=(0, 0, 0, 0))  # missing cells show the hatching beneath
    ax.add_patch(Rectangle((-0.5, -0.5), len(units), len(batches), facecolor="white", hatch=MISSING_HATCH,
                           edgecolor=MISSING_EDGE, linewidth=0, zorder=-1))
    image = ax.imshow(np.ma.masked_invalid(data), cmap=colours, norm=norm, aspect="auto", origin="lower")
    ax.set_xticks(range(len(units)), [str(u) for u in units])
    ax.set_yticks(range(len(batches)), [str(b) for b in batches])
    ax.set_xlabel("units U")
    ax.set_ylabel("batch B")
    ax.set_title(title, fontsize=8)
    noisy = noisy or set()
    for i, b in enumerate(batches):
        for j, u in enumerate(units):
            if math.isnan(data[i, j]):
                continue
            shaky = (b, timesteps, u) in noisy
            ax.text(j, i, fmt(data[i, j]) + (NOISY_MARK if shaky else ""), ha="center", va="center", fontsize=8,
                    color=text_colour(colours(norm(data[i, j]))), style="italic" if shaky else "normal")
    return image


def heatmap_legend(fig, columns: int) -> None:
    """What a hatched cell and a dagger mean, under the panels."""
    handles = [Patch(facecolor="white", hatch=MISSING_HATCH, edgecolor=MISSING_EDGE, label=f"hatched: {MISSING_NOTE}"),
               Line2D([], [], linestyle="none", marker=f"${NOISY_MARK}$", color="black", markersize=7,
                      label=f"1.2{NOISY_MARK} (italic): {NOISY_NOTE}; left out of the summary's comparisons")]
    fig.legend(handles=handles, loc="outside lower center", ncol=2 if columns > 1 else 1, fontsize=8, frameon=False)


def heatmap_figure(path: Path, rows: list[tuple[str, dict, set]], suptitle: str, *, norm, cmap: str, fmt,
                   colour_label: str, transform=None, ticks=None) -> Path:
    """One row of panels per (name, {(B, T, U): value}, noisy shapes), one column per timesteps measured;
    only the batches and units measured are drawn, a panel without data is left out. ``transform`` maps
    values to what is coloured (log10 for ratios); ``ticks``: (positions, labels) of the colour bar."""
    batches, timesteps, units = measured([values for _, values, _ in rows])
    longest_title = max(len(f"{name}, T={t}") for name, _, _ in rows for t in timesteps)
    # wide enough for the cells' numbers and for the panel's title (about 0.06 inch a character at 8 pt)
    width, height = max(0.8 * len(units) + 1.4, 0.06 * longest_title + 1.0), max(2.1, 0.42 * len(batches) + 1.2)
    fig = plt.figure(figsize=(width * len(timesteps) + 1.2, height * len(rows) + 1.0), layout="constrained")
    axes = fig.subplots(len(rows), len(timesteps), squeeze=False)
    images, drawn = [], []
    for r, (name, values, noisy) in enumerate(rows):
        for c, t in enumerate(timesteps):
            data = grid(values, t, batches, units)
            if np.isnan(data).all():
                axes[r][c].remove()  # nothing measured at this T for this row
                continue
            drawn.append(axes[r][c])
            images.append(heatmap(axes[r][c], transform(data) if transform else data, f"{name}, T={t}", norm=norm,
                                  cmap=cmap, fmt=fmt, noisy=noisy, timesteps=t, batches=batches, units=units))
    bar = fig.colorbar(images[0], ax=drawn, shrink=min(1.0, 4.0 / len(rows)),
                       aspect=25)
    bar.set_label(colour_label, fontsize=8)
    if ticks:
        bar.set_ticks(ticks[0], labels=ticks[1])
    fig.suptitle(suptitle, fontsize=10)
    heatmap_legend(fig, len(timesteps))
    atomic_savefig(fig, path)
    plt.close(fig)
    return path


RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20, 30, 50, 70, 100, 200, 500)


def ratio_norm(values: list[float]):
    finite = [v for v in values if v > 0 and math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.5, 2.0)
    lo, hi = min(lo, 0.99), max(hi, 1.01)
    return TwoSlopeNorm(vcenter=0.0, vmin=math.log10(lo), vmax=math.log10(hi))


def ratio_panels(path: Path, rows: list[tuple[str, dict]], suptitle: str, label: str, noisy: list[set] | None = None) -> Path:
    """One row per (name, {(B,T,U): ratio}), one column per timesteps value; colour = log10(ratio), 0 = parity.
    ``noisy``: for each row, the shapes where either timing is noisy (marked)."""
    norm = ratio_norm([v for _, vals in rows for v in vals.values()])
    shown = [t for t in RATIO_TICKS if norm.vmin <= math.log10(t) <= norm.vmax]
    return heatmap_figure(path, [(name, vals, noisy[r] if noisy else set()) for r, (name, vals) in enumerate(rows)],
                          suptitle, norm=norm, cmap="coolwarm", fmt=lambda v: compact(10 ** v), transform=np.log10,
                          colour_label=f"{label} (log scale; 1: parity, red: above 1, blue: below)",
                          ticks=([math.log10(t) for t in shown], [compact(t) for t in shown]))


def run_caption(machine: dict, records: list[dict]) -> str:
    """What computed a figure, in one line: the machine's processor (and GPUs), the dtypes timed, and the
    versions of Keras and of each framework the records name."""
    versions = []
    for package in ("keras", "jax", "torch", "tensorflow"):
        found = sorted({str(r[package]) for r in records if r.get(package) and r.get("status") == "ok"})
        if found:
            versions.append(f"{package} {'/'.join(found)}")
    dtypes = "/".join(sorted({str(r["dtype"]) for r in records if r.get("dtype") and r.get("status") == "ok"}))
    gpus = ", ".join(g.get("name", str(g)) if isinstance(g, dict) else str(g) for g in machine.get("gpus") or [])
    where = machine.get("cpu", "unknown CPU") + (f" + {gpus}" if gpus else "")
    return f"{where}; {dtypes}; " + ", ".join(versions)


def draw_all(directory: Path, machine: dict, records: list[dict]) -> list[Path]:
    directory = Path(directory)
    ok = ok_by_group(records)
    median = {g: {s: r["median_s"] for s, r in cases.items()} for g, cases in ok.items()}
    noisy = {g: {s for s, r in cases.items() if is_noisy(r)} for g, cases in ok.items()}
    devices = sorted({r["device"] for r in records if r.get("status") == "ok"}, key=lambda d: d != "gpu")
    caption = run_caption(machine, records)
    figures = []
    if "gpu" in devices:
        rows, marks = [], []
        for g in sorted(g for g in median if "-gpu-" in g):
            cpu = cpu_counterpart(g)
            if cpu in median:
                rows.append((f"{g} vs {cpu}", {s: median[cpu][s] / median[g][s] for s in set(median[g]) & set(median[cpu])}))
                marks.append(noisy[g] | noisy[cpu])
        kept = [k for k, row in enumerate(rows) if row[1]]
        if kept:
            figures.append(ratio_panels(directory / "gpu_speedup.png", [rows[k] for k in kept], f"GPU speedup over CPU\n{caption}",
                                        "CPU time / GPU time", [marks[k] for k in kept]))
    for device in devices:
        keras = sorted(g for g in median if g.startswith("keras-") and f"-{device}-" in g)
        raw = sorted(g for g in median if g.startswith("raw-") and f"-{device}-" in g)
        rows = [(f"{k} / {r}", {s: median[k][s] / median[r][s] for s in set(median[k]) & set(median[r])},
                 noisy[k] | noisy[r]) for k in keras for r in raw]
        rows = [row for row in rows if row[1]]
        if rows:
            figures.append(ratio_panels(directory / f"keras_over_raw_{device}.png", [row[:2] for row in rows],
                                        f"Keras step time over raw step time, {device.upper()}\n{caption}", "Keras / raw",
                                        [row[2] for row in rows]))
        groups = keras + raw
        if groups:
            seqs = {g: {s: r["sequences_per_s"] for s, r in ok[g].items()} for g in groups}
            allv = [v for g in groups for v in seqs[g].values()]
            figures.append(heatmap_figure(
                directory / f"sequences_per_s_{device}.png", [(g, seqs[g], noisy[g]) for g in groups],
                f"Sequences per second, one training step, {device.upper()}\n{caption}",
                norm=LogNorm(vmin=min(allv), vmax=max(allv)), cmap="viridis", fmt=compact,
                colour_label="sequences / s (log scale)"))
        figures.append(crossover(directory, device, ok, median, noisy, caption))
    return [f for f in figures if f is not None]


def _line(ax, points: list[tuple[int, float, bool]], label: str, colour, **style) -> None:
    """A line through every point; steady points as dots in the line's colour, noisy ones as black crosses."""
    xs, ys, _ = zip(*points)
    ax.plot(xs, ys, label=label, color=colour, marker="o", markevery=[k for k, p in enumerate(points) if not p[2]], **style)
    shaky = [(x, y) for x, y, n in points if n]
    if shaky:
        ax.plot(*zip(*shaky), linestyle="none", marker=NOISY_MARKER, markersize=9, markeredgewidth=2,
                color=NOISY_COLOUR, zorder=3)


def crossover(directory: Path, device: str, ok: dict, median: dict, noisy: dict | None = None,
              caption: str = "") -> Path | None:
    """One panel per units value measured, at the largest timesteps measured on ``device``."""
    noisy = noisy or {}
    groups = sorted(g for g in ok if f"-{device}-" in g)
    shapes = {s for g in groups for s in ok[g]}
    if not shapes:
        return None
    t = max(s[1] for s in shapes)
    # One colour a group in every panel, whichever groups a panel has.
    colours = {g: f"C{k % 10}" for k, g in enumerate(groups)}
    panels = []
    for u in sorted({s[2] for s in shapes if s[1] == t}):
        lines = []
        for g in groups:
            if device == "gpu":
                cpu = cpu_counterpart(g)
                pts = [(b, median[cpu][(b, t, u)] / median[g][(b, t, u)],
                        (b, t, u) in noisy.get(g, set()) | noisy.get(cpu, set())) for b in BATCHES
                       if (b, t, u) in median[g] and (b, t, u) in median.get(cpu, {})]
            else:
                pts = [(b, ok[g][(b, t, u)]["sequences_per_s"], is_noisy(ok[g][(b, t, u)])) for b in BATCHES
                       if (b, t, u) in ok[g]]
            if pts:
                lines.append((g, pts))
        if lines:
            panels.append((u, lines))
    if not panels:
        return None
    fig = plt.figure(figsize=(3.4 * len(panels) + 0.6, 3.9), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    for ax, (u, lines) in zip(axes, panels):
        for g, pts in lines:
            _line(ax, pts, g, colours[g], alpha=0.9)
        if device == "gpu":
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        # the batches measured, as plain numbers (a log axis over less than a decade labels 2x10^0, 3x10^0, ...)
        batches = sorted({b for _, pts in lines for b, _, _ in pts})
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("batch B")
        ax.set_title(f"U={u}, T={t}", fontsize=9)
    axes[0].set_ylabel("CPU time / GPU time" if device == "gpu" else "sequences / s")
    handles = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if any(n for _, lines in panels for _, pts in lines for *_, n in pts):
        handles[NOISY_NOTE] = Line2D([], [], linestyle="none", marker=NOISY_MARKER, markersize=9, markeredgewidth=2,
                                     color=NOISY_COLOUR)
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="outside lower center",
               ncol=min(3, len(handles)), frameon=False)
    fig.suptitle("GPU speedup against batch (crosses 1 where the GPU starts to pay)" if device == "gpu"
                 else "Throughput against batch on the CPU (crossing lines: the fastest implementation changes)"
                 + (f"\n{caption}" if caption else ""), fontsize=10)
    path = directory / f"crossover_{device}.png"
    atomic_savefig(fig, path)
    plt.close(fig)
    return path
