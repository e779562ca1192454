"""Issue 21's screenshots: the benchmark figures of the committed CPU results (and of those cut to the
``--quick`` shapes), and a merge-modes loss plot of synthetic curves, drawn by whichever code is on
PYTHONPATH, saved as PREFIX-*.png in OUT:

    PYTHONPATH=/path/to/old/checkout python docs/figures/issue21/render.py before OUT
    PYTHONPATH=$PWD python docs/figures/issue21/render.py after OUT
"""
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.plots import draw_all
from benchmarks.store import read_results
from keras_impl.experiments.plots import loss_figure

RESULTS = Path(__file__).resolve().parents[3] / "benchmarks/results/cpu-2c-intel-xeon-processor/results.json"
QUICK_SHAPES = {(1, 10, 20), (8, 10, 20), (64, 10, 128)}  # benchmarks.cases.QUICK_SHAPES, spelled out for old code


def synthetic_curves(rng, floor: float, speed: float, delay: float, noise: float = 0.08) -> np.ndarray:
    """20 seeds x 250 updates of a loss falling from ln 2 to ``floor`` around update ``delay``."""
    steps = np.arange(250)
    mean = floor + (0.693 - floor) / (1 + np.exp((steps - delay) / speed))
    return np.clip(mean + rng.normal(0, noise, (20, 250)) * (1 - np.exp(-steps / 60)), 0.01, None)


def main(prefix: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    machine, records, _ = read_results(RESULTS)
    quick = [r for r in records if (r.get("batch"), r.get("timesteps"), r.get("units")) in QUICK_SHAPES]
    with tempfile.TemporaryDirectory() as tmp:
        for name, chosen in (("", records), ("quick-", quick)):
            folder = Path(tmp) / (name or "full")
            folder.mkdir()
            for figure in draw_all(folder, machine, chosen):
                shutil.copy(figure, out / f"{prefix}-{name}{Path(figure).name}")
    rng = np.random.default_rng(0)
    merge = {"bilstm_sum": synthetic_curves(rng, 0.2, 12, 55), "bilstm_mul": synthetic_curves(rng, 0.36, 25, 120, 0.12),
             "bilstm_ave": synthetic_curves(rng, 0.22, 13, 65), "bilstm_concat": synthetic_curves(rng, 0.21, 12, 58)}
    loss_figure(merge, "Bidirectional LSTM merge modes (synthetic curves)", [out / f"{prefix}-merge-modes.png"])


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
