"""Figures: mean loss per update over seeds, with the 95% confidence band of the mean (matplotlib, Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_impl.files import atomic_savefig
from .stats import mean_ci_band


def loss_figure(curves: dict[str, np.ndarray], title: str, paths: list[Path], labels: dict[str, str] | None = None) -> None:
    """curves: model name -> losses (S, N). One line a model, its band shaded; saved to every path (PNG, SVG).

    labels: model name -> its legend entry ('Bidirectional GRU'); a model without one is named as it is.
    """
    import matplotlib
    matplotlib.use("Agg")  # files only, no display: works headless and in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, losses in curves.items():
        mean, low, high = mean_ci_band(losses)
        low = np.maximum(low, 0.0)  # a loss is never negative: the band stops at 0, as the metrics' intervals do
        steps = np.arange(1, mean.size + 1)
        (line,) = ax.plot(steps, mean, lw=1.3, label=(labels or {}).get(name, name))
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
    seeds = next(iter(curves.values())).shape[0]
    ax.set_xlabel("update (one new sequence each)")
    ax.set_ylabel("binary cross-entropy")
    ax.set_title(f"{title}\nmean over {seeds} seed{'s' if seeds != 1 else ''}, shaded: 95% CI of the mean")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    for path in paths:
        atomic_savefig(fig, path)
    plt.close(fig)
