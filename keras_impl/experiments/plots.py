"""Figures: mean loss per update over seeds, with the 95% confidence band of the mean (matplotlib, Agg).

Curves of models that learn alike lie on top of each other, and their shaded bands, overlapping, blend to
grey. So the figure has two parts: on top, every model's mean in its own colour, line style and marker,
without bands; below it, small multiples, one panel a model, with that model's band alone (the other
models' means thin and grey for reference). The colours are the Okabe-Ito palette, told apart with
colour-blindness too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_impl.files import atomic_savefig
from .stats import mean_ci_band

COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)), (0, (3, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MARKS_PER_LINE = 8   # markers along each line, staggered between lines so they never sit on one another
BAND_ALPHA = 0.3
REFERENCE_GREY = "0.75"


def line_style(k: int) -> dict:
    """The k-th model's colour, line style and marker (distinct pairs for up to 8 models)."""
    return {"color": COLOURS[k % len(COLOURS)], "linestyle": LINESTYLES[k % len(LINESTYLES)],
            "marker": MARKERS[k % len(MARKERS)]}


def loss_figure(curves: dict[str, np.ndarray], title: str, paths: list[Path], labels: dict[str, str] | None = None) -> None:
    """curves: model name -> losses (S, N). Saved to every path (PNG, SVG).

    labels: model name -> its legend entry ('Bidirectional GRU'); a model without one is named as it is.
    """
    import matplotlib
    matplotlib.use("Agg")  # files only, no display: works headless and in CI
    import matplotlib.pyplot as plt

    names = list(curves)
    label = {name: (labels or {}).get(name, name) for name in names}
    bands = {name: mean_ci_band(losses) for name, losses in curves.items()}
    steps = np.arange(1, next(iter(bands.values()))[0].size + 1)
    every = max(1, steps.size // MARKS_PER_LINE)
    seeds = next(iter(curves.values())).shape[0]
    multiples = len(names) > 1  # one model: its band on the overview, nothing to tell apart

    fig = plt.figure(figsize=(max(7.5, 2.6 * len(names)), 7.2 if multiples else 4.4), layout="constrained")
    grid = fig.add_gridspec(2 if multiples else 1, len(names), height_ratios=[1.6, 1] if multiples else [1])
    overview = fig.add_subplot(grid[0, :])
    for k, name in enumerate(names):
        mean, low, high = bands[name]
        overview.plot(steps, mean, lw=1.4, label=label[name], markevery=(k * every // len(names), every),
                      markersize=5, **line_style(k))
        if not multiples:
            overview.fill_between(steps, np.maximum(low, 0.0), high, color=line_style(k)["color"], alpha=BAND_ALPHA, lw=0)
    overview.set_xlabel("update (one new sequence each)")
    overview.set_ylabel("binary cross-entropy")
    overview.set_ylim(bottom=0)
    overview.grid(alpha=0.3)
    overview.legend(ncol=min(4, len(names)), loc="lower left")  # losses fall from the top left: below is free
    if multiples:
        first = None
        for k, name in enumerate(names):
            ax = fig.add_subplot(grid[1, k], sharex=overview, sharey=first or overview)
            first = first or ax
            for other in names:
                if other != name:
                    ax.plot(steps, bands[other][0], color=REFERENCE_GREY, lw=0.8)
            mean, low, high = bands[name]
            # a loss is never negative: the band stops at 0, as the metrics' intervals do
            ax.fill_between(steps, np.maximum(low, 0.0), high, color=line_style(k)["color"], alpha=BAND_ALPHA, lw=0)
            ax.plot(steps, mean, lw=1.2, color=line_style(k)["color"])  # alone in its panel: solid reads best
            ax.set_title(label[name], fontsize=9, color=line_style(k)["color"])
            ax.set_xlabel("update")
            ax.grid(alpha=0.3)
            if k:
                ax.tick_params(labelleft=False)
            else:
                ax.set_ylabel("binary cross-entropy")
    shaded = ("below, each model's 95% CI of the mean shaded (the others' means in grey)" if multiples
              else "shaded: 95% CI of the mean")
    fig.suptitle(f"{title}\nmean over {seeds} seed{'s' if seeds != 1 else ''}; {shaded}", fontsize=11)
    for path in paths:
        atomic_savefig(fig, path)
    plt.close(fig)
