"""The benchmark's figures read at a glance (issue 21), checked on the matplotlib Figure objects themselves:
a colour bar, every drawn panel holding data, every number legible on its cell (WCAG contrast, computed
here independently of the product), missing cells and noisy values explained by a legend, the title clear of
the panel titles, a ``--quick`` run drawing only what it measured; and summary.md's tables keeping their
columns where a cell holds a ``|``.

Figures come from the committed CPU results, the hand-made GPU results in parity_tests/fixtures, and the
CPU results cut down to the quick shapes (what ``bilstm bench --quick`` measures).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgb

import benchmarks.plots as plots
from benchmarks.cases import QUICK_SHAPES
from benchmarks.store import read_results
from benchmarks.summary import render

ROOT = Path(__file__).resolve().parents[2]
CPU_RESULTS = ROOT / "benchmarks" / "results" / "cpu-2c-intel-xeon-processor" / "results.json"
GPU_RESULTS = ROOT / "parity_tests" / "fixtures" / "gpu_results" / "results.json"
HEATMAPS = ("sequences_per_s_cpu.png", "keras_over_raw_cpu.png")


CLOSE = plots.plt.close  # the real one: draw() stops draw_all from closing what it drew


def draw(folder, records, machine) -> dict:
    """File name -> the Figure that draw_all would have saved (kept open, nothing written)."""
    drawn = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "atomic_savefig", lambda fig, path: drawn.__setitem__(Path(path).name, fig))
        patch.setattr(plots.plt, "close", lambda fig=None: None)
        plots.draw_all(folder, machine, records)
    return drawn


@pytest.fixture(scope="module")
def cpu_results():
    machine, records, _ = read_results(CPU_RESULTS)
    return machine, records


@pytest.fixture(scope="module")
def cpu_figures(tmp_path_factory, cpu_results):
    machine, records = cpu_results
    figures = draw(tmp_path_factory.mktemp("cpu"), records, machine)
    yield figures
    for fig in figures.values():
        CLOSE(fig)


@pytest.fixture(scope="module")
def quick_figures(tmp_path_factory, cpu_results):
    machine, records = cpu_results
    quick = [r for r in records if (r.get("batch"), r.get("timesteps"), r.get("units")) in set(QUICK_SHAPES)]
    assert len({(r["batch"], r["timesteps"], r["units"]) for r in quick}) == len(QUICK_SHAPES)
    figures = draw(tmp_path_factory.mktemp("quick"), quick, machine)
    yield figures
    for fig in figures.values():
        CLOSE(fig)


def luminance(colour) -> float:
    """WCAG 2 relative luminance."""
    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(colour)]
    return float(np.dot([0.2126, 0.7152, 0.0722], channels))


def contrast(a, b) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def panels(fig) -> list:
    """The heat map panels of a figure (axes holding an image; the colour bar holds none)."""
    return [ax for ax in fig.axes if ax.images]


def cell_colour(ax, text):
    """The colour of the cell a number is written on."""
    image = ax.images[0]
    x, y = text.get_position()
    value = image.get_array()[int(round(y)), int(round(x))]
    return image.cmap(image.norm(value))


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("name", HEATMAPS)
def test_a_heat_map_has_a_colour_bar(cpu_figures, name):
    assert [ax for ax in cpu_figures[name].axes if ax.get_label() == "<colorbar>"], f"{name}: no colour bar"


@pytest.mark.parametrize("name", HEATMAPS)
def test_every_number_reads_on_its_cell(cpu_figures, name):
    fig = cpu_figures[name]
    texts = [(ax, t) for ax in panels(fig) for t in ax.texts]
    assert len(texts) > 50  # the committed results fill most cells
    worst = min(contrast(t.get_color(), cell_colour(ax, t)) for ax, t in texts)
    assert worst >= 4.5, f"{name}: a cell's number has contrast {worst:.2f} : 1 with its cell (WCAG AA asks 4.5)"


@pytest.mark.parametrize("name", HEATMAPS)
def test_noisy_values_are_italic_with_a_dagger_in_the_text_colour(cpu_figures, name):
    texts = [t for ax in panels(cpu_figures[name]) for t in ax.texts]
    noisy = [t for t in texts if t.get_text().endswith(plots.NOISY_MARK)]
    assert noisy, "the committed CPU results have noisy timings"
    assert all(t.get_style() == "italic" for t in noisy)
    assert {to_rgb(t.get_color()) for t in texts} <= {to_rgb("black"), to_rgb("white")}  # no red on red


@pytest.mark.parametrize("name", HEATMAPS)
def test_the_legend_explains_missing_cells_and_noisy_values(cpu_figures, name):
    fig = cpu_figures[name]
    assert fig.legends, f"{name}: no legend"
    entries = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert any("not measured" in e for e in entries) and any(plots.NOISY_NOTE in e for e in entries)
    missing = [p for legend in fig.legends for p in legend.get_patches() if p.get_hatch()]
    assert missing and all(p.get_hatch() == plots.MISSING_HATCH for p in missing)
    # the hatching the legend shows is what lies under a panel's missing cells
    assert all(any(p.get_hatch() == plots.MISSING_HATCH for p in ax.patches) for ax in panels(fig))
    # and the colour maps never paint a missing cell: it is transparent, so the hatching shows
    assert all(ax.images[0].cmap.get_bad()[3] == 0 for ax in panels(fig))


@pytest.mark.parametrize("name", HEATMAPS + ("crossover_cpu.png",))
def test_the_title_is_clear_of_the_panel_titles(cpu_figures, name):
    fig = cpu_figures[name]
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    title = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        if ax.get_title():
            assert not overlaps(title, ax.title.get_window_extent(renderer)), f"{name}: title over {ax.get_title()!r}"


def test_a_quick_run_draws_only_the_panels_it_measured(quick_figures):
    assert {"sequences_per_s_cpu.png", "keras_over_raw_cpu.png", "crossover_cpu.png"} <= set(quick_figures)
    for name, fig in quick_figures.items():
        if name.startswith("crossover"):
            drawn = [ax for ax in fig.axes if ax.get_lines()]
            assert drawn and len(drawn) == len(fig.axes)
            continue
        for ax in panels(fig):
            values = ax.images[0].get_array()
            assert np.ma.count(values) > 0, f"{name}: empty panel {ax.get_title()!r}"
            # only the batches and units measured: 3 batches x 2 units, not the whole 5 x 4 grid
            assert values.shape == (3, 2)
        # the quick shapes are all T=10: one column of panels, no empty T=100 column
        assert {ax.get_title().rsplit("T=", 1)[1] for ax in panels(fig)} == {"10"}


def test_every_gpu_heat_map_panel_has_data(tmp_path):
    machine, records, _ = read_results(GPU_RESULTS)
    figures = draw(tmp_path, records, machine)
    try:
        assert "gpu_speedup.png" in figures
        for name, fig in figures.items():
            if name.startswith("crossover"):
                continue
            assert [ax for ax in fig.axes if ax.get_label() == "<colorbar>"], name
            assert panels(fig) and all(np.ma.count(ax.images[0].get_array()) for ax in panels(fig)), name
    finally:
        for fig in figures.values():
            CLOSE(fig)


def test_the_crossover_legend_draws_noisy_as_it_is_plotted(cpu_figures):
    fig = cpu_figures["crossover_cpu.png"]
    plotted = [line for ax in fig.axes for line in ax.get_lines() if line.get_marker() == plots.NOISY_MARKER]
    assert plotted, "the committed CPU results have noisy points at the largest T"
    (legend,) = fig.legends
    keyed = [h for h, t in zip(legend.legend_handles, legend.get_texts()) if t.get_text() == plots.NOISY_NOTE]
    assert len(keyed) == 1 and keyed[0].get_marker() == plots.NOISY_MARKER
    assert {to_rgb(line.get_color()) for line in plotted} == {to_rgb(keyed[0].get_color())}


def cells(row: str) -> list[str]:
    """A Markdown table row's cells, split where GitHub splits them: on every ``|`` not escaped."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


def test_summary_tables_keep_their_columns_when_a_cell_holds_a_bar(cpu_results):
    machine, records = cpu_results
    text = render(machine, records, [])
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert any("\\|B" in row for table in tables for row in table)  # the noise table lists case keys
    for table in tables:
        width = len(cells(table[0]))
        assert all(len(cells(row)) == width for row in table), table[0]


@pytest.mark.parametrize("name", ["sequences_per_s_cpu.png", "keras_over_raw_cpu.png", "crossover_cpu.png"])
def test_every_figure_names_the_machine_dtype_and_versions_that_computed_it(cpu_figures, cpu_results, name):
    title = cpu_figures[name]._suptitle.get_text()
    records = [r for r in cpu_results[1] if r.get("status") == "ok"]
    assert "Intel(R) Xeon(R) Processor" in title and "float32" in title, title
    for package in ("keras", "jax", "torch", "tensorflow"):
        assert f"{package} {records[0][package]}" in title, (package, title)
