"""The loss figure tells models apart (issue 21): in the tutorial's merge-modes plot, sum, concat and ave
lay on one another and their overlapping bands blended to grey. Checked on the Figure object: the lines
differ in colour and in line style and marker (readable in grey print and with colour blindness), and no
panel holds more than one band."""
from __future__ import annotations

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

import keras_impl.experiments.plots as plots  # noqa: E402

MERGE_MODES = ("bilstm_sum", "bilstm_mul", "bilstm_ave", "bilstm_concat")


def merge_mode_curves(seeds: int = 6, updates: int = 40) -> dict[str, np.ndarray]:
    """Stand-in loss curves like the tutorial's: sum, ave and concat close together, mul apart."""
    rng = np.random.default_rng(7)
    steps = np.arange(updates)
    floors = {"bilstm_sum": 0.20, "bilstm_mul": 0.36, "bilstm_ave": 0.22, "bilstm_concat": 0.21}
    return {name: floor + (0.69 - floor) * np.exp(-steps / 10) + rng.normal(0, 0.03, (seeds, updates))
            for name, floor in floors.items()}


@pytest.fixture
def figure(tmp_path, monkeypatch):
    """The Figure loss_figure draws for the merge modes (kept open, nothing written)."""
    drawn = []
    monkeypatch.setattr(plots, "atomic_savefig", lambda fig, path: drawn.append(fig))
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    plots.loss_figure(merge_mode_curves(), "merge modes", [tmp_path / "loss.png"])
    yield drawn[0]
    close(drawn[0])


def model_lines(fig) -> list:
    """The lines the legend names: one a model."""
    (ax,) = [ax for ax in fig.axes if ax.get_legend()]
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    return [line for line in ax.get_lines() if line.get_label() in labels]


def test_every_model_has_its_own_colour_line_style_and_marker(figure):
    lines = model_lines(figure)
    assert [line.get_label() for line in lines] == list(MERGE_MODES)
    styles = [(matplotlib.colors.to_hex(line.get_color()), str(line.get_linestyle()), line.get_marker()) for line in lines]
    assert len({s[:2] for s in styles}) == len(lines)  # distinct (colour, line style) pairs
    for k in range(3):  # and each of colour, line style and marker tells the models apart on its own
        assert len({s[k] for s in styles}) == len(lines), styles


def test_no_panel_blends_overlapping_bands(figure):
    bands = {ax: [c for c in ax.collections if isinstance(c, PolyCollection)] for ax in figure.axes}
    assert all(len(b) <= 1 for b in bands.values()), "bands of several models overlap in one panel"
    # each model's band is drawn once, in its own panel, in its line's colour
    lines = {line.get_label(): matplotlib.colors.to_rgb(line.get_color()) for line in model_lines(figure)}
    banded = {ax.get_title(): matplotlib.colors.to_rgb(b[0].get_facecolor()[0][:3]) for ax, b in bands.items() if b}
    assert banded == lines


def test_a_single_model_keeps_its_band_on_one_panel(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "atomic_savefig", lambda fig, path: drawn.append(fig))
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    plots.loss_figure({"bilstm": merge_mode_curves()["bilstm_sum"]}, "demo", [tmp_path / "loss.png"])
    try:
        (ax,) = drawn[0].axes
        assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1
    finally:
        close(drawn[0])
