"""Numbers that summarise one training run (one model, one seed).

For losses L_1 .. L_N (one per update) and per-update training accuracies a_k:

    mean_loss     = (1/N) sum_k L_k                  the area under the loss curve per update
    last50_loss   = mean of the last min(50, N) L_k
    updates_to_90 = the first k with  (1/W) sum_{j=k-W+1..k} a_j >= 0.9,  W = min(20, N)
                    (NaN when the rolling accuracy never gets there: a censored run)

Held-out accuracy, over M new sequences, counting valid (unpadded) steps only:

    step accuracy     = correct valid steps / valid steps
    sequence accuracy = sequences whose every valid step is correct / M
"""
from __future__ import annotations

import numpy as np

ROLLING_WINDOW = 20
ACCURACY_TARGET = 0.9
LAST_UPDATES = 50

# Name -> (label, True when a smaller value is better): the order of every table.
METRICS = {
    "mean_loss": ("mean loss over the run (area under curve / updates)", True),
    "last50_loss": ("mean loss, last 50 updates", True),
    "updates_to_90": ("updates until rolling accuracy (20) first >= 0.9", True),
    "heldout_step_accuracy": ("held-out accuracy per timestep", False),
    "heldout_sequence_accuracy": ("held-out accuracy per whole sequence", False),
}

# Name -> the values the metric can take: a confidence interval is cut to this range (a Student t interval
# of accuracies near 1 would otherwise reach past 1). updates_to_90 >= the rolling window's first full count.
RANGES = {
    "mean_loss": (0.0, float("inf")),
    "last50_loss": (0.0, float("inf")),
    "updates_to_90": (1.0, float("inf")),
    "heldout_step_accuracy": (0.0, 1.0),
    "heldout_sequence_accuracy": (0.0, 1.0),
}


def mean_loss(losses: np.ndarray) -> float:
    return float(np.mean(losses))


def last_loss(losses: np.ndarray, last: int = LAST_UPDATES) -> float:
    return float(np.mean(losses[-min(last, len(losses)):]))


def updates_to_accuracy(accuracies: np.ndarray, target: float = ACCURACY_TARGET, window: int = ROLLING_WINDOW) -> float:
    """1-based count of updates until the trailing mean of ``window`` accuracies first reaches ``target``; NaN if never."""
    accuracies = np.asarray(accuracies, dtype=np.float64)
    window = min(window, len(accuracies))
    rolling = np.convolve(accuracies, np.ones(window) / window, mode="valid")  # rolling[j] ends at update j + window
    # 1e-9: a mean of float32 accuracies like 0.9 lands a hair under 0.9 in float64
    hits = np.flatnonzero(rolling >= target - 1e-9)
    return float(hits[0] + window) if hits.size else float("nan")


def heldout_accuracy(probabilities: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """(step accuracy, sequence accuracy) of probabilities (M, T, 1) against labels y (M, T, 1); mask (M, T)."""
    correct = (probabilities[..., 0] > 0.5) == (y[..., 0] > 0.5)  # (M, T), Keras's binary accuracy threshold
    if mask is None:
        mask = np.ones(correct.shape, dtype=bool)
    step = float(np.sum(correct & mask) / np.sum(mask))
    sequence = float(np.mean(np.all(correct | ~mask, axis=1)))
    return step, sequence


def run_metrics(record: dict) -> dict[str, float]:
    losses = np.asarray(record["loss"])
    return {
        "mean_loss": mean_loss(losses),
        "last50_loss": last_loss(losses),
        "updates_to_90": updates_to_accuracy(np.asarray(record["accuracy"])),
        "heldout_step_accuracy": float(record["heldout_step_accuracy"]),
        "heldout_sequence_accuracy": float(record["heldout_sequence_accuracy"]),
    }
