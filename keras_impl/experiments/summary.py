"""One experiment's results as tables, statistics, CSV, JSON and figures.

Per model: the mean and 95% CI over seeds of every metric in ``metrics.METRICS``,
the interval cut to the values the metric can take (``metrics.RANGES``: an
accuracy's interval never leaves [0, 1]).
Between models: for every pair and metric the paired difference (first minus
second) with its 95% CI and Wilcoxon p, Holm-corrected over all the pairs and
metrics of the experiment (one family). A run that never reaches the rolling
accuracy target counts as ``updates + 1`` in the paired tests (censored: it
took longer than the run), and the tables say how many were censored.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from keras_impl.files import atomic_write_csv, atomic_write_json
from .metrics import METRICS, RANGES, run_metrics
from .plots import loss_figure
from .stats import holm, mean_ci, paired_comparison


# What ``write_outputs`` writes into an experiment's folder, beside ``runs/``.
OUTPUT_FILES = ("results.csv", "curves.csv", "pairs.csv", "summary.json", "loss.png", "loss.svg")


def per_seed_metrics(records: dict[str, list[dict]]) -> dict[str, dict[str, np.ndarray]]:
    """model -> metric -> values (S,), NaN where updates_to_90 was not reached."""
    out = {}
    for model, runs in records.items():
        rows = [run_metrics(r) for r in runs]
        out[model] = {m: np.array([row[m] for row in rows]) for m in METRICS}
    return out


def holm_family_size(models: int) -> int:
    """How many tests one experiment's Holm correction spans: every pair of its models on every metric."""
    return math.comb(models, 2) * len(METRICS)


def summarize(records: dict[str, list[dict]], updates: int) -> dict:
    values = per_seed_metrics(records)
    table = {}
    for model, by_metric in values.items():
        table[model] = {}
        for metric, v in by_metric.items():
            mean, low, high = mean_ci(v, bounds=RANGES[metric])
            table[model][metric] = {"mean": mean, "ci_low": low, "ci_high": high,
                                    "censored": int(np.isnan(v).sum()) if metric == "updates_to_90" else 0}
    pairs = []
    for a, b in itertools.combinations(values, 2):
        for metric in METRICS:
            va, vb = values[a][metric], values[b][metric]
            if metric == "updates_to_90":
                va, vb = np.nan_to_num(va, nan=updates + 1), np.nan_to_num(vb, nan=updates + 1)
            pairs.append({"a": a, "b": b, "metric": metric, **paired_comparison(va, vb, bounds=RANGES[metric])})
    for row, adjusted in zip(pairs, holm([row["p"] for row in pairs])):
        row["p_holm"] = float(adjusted)
    tests = sum(1 for row in pairs if not math.isnan(row["p"]))  # the Holm family: a NaN p is no test
    return {"models": table, "pairs": pairs, "tests": tests, "per_seed": {m: {k: v.tolist() for k, v in d.items()} for m, d in values.items()}}


def find_pair(summary: dict, a: str, b: str, metric: str) -> dict:
    """The comparison a - b on ``metric``, flipped if it was stored as b - a."""
    for row in summary["pairs"]:
        if row["metric"] != metric:
            continue
        if (row["a"], row["b"]) == (a, b):
            return row
        if (row["a"], row["b"]) == (b, a):
            return {**row, "a": a, "b": b, "diff": -row["diff"], "ci_low": -row["ci_high"], "ci_high": -row["ci_low"]}
    raise KeyError(f"no comparison of {a} and {b} on {metric}")


def write_outputs(out: Path, title: str, records: dict[str, list[dict]], summary: dict, meta: dict) -> None:
    """results.csv (per model and seed), curves.csv (per update), pairs.csv, summary.json, loss.png/svg."""
    seeds_rows = []
    for model, runs in records.items():
        for r in runs:
            m = run_metrics(r)
            seeds_rows.append([model, r["cell"], r["seed"]] + [m[k] for k in METRICS] + [r["train_wall_s"]])
    atomic_write_csv(out / "results.csv", ["model", "cell", "seed", *METRICS, "train_wall_s"], seeds_rows)
    curve_rows = ([model, r["seed"], k + 1, loss, acc]
                  for model, runs in records.items() for r in runs
                  for k, (loss, acc) in enumerate(zip(r["loss"], r["accuracy"])))
    atomic_write_csv(out / "curves.csv", ["model", "seed", "update", "loss", "accuracy"], curve_rows)
    atomic_write_csv(out / "pairs.csv", ["a", "b", "metric", "diff", "ci_low", "ci_high", "p", "p_holm", "n"],
                     [[p[k] for k in ("a", "b", "metric", "diff", "ci_low", "ci_high", "p", "p_holm", "n")]
                      for p in summary["pairs"]])
    atomic_write_json(out / "summary.json", {**meta, "metrics": {k: v[0] for k, v in METRICS.items()}, **summary})
    curves = {model: np.array([r["loss"] for r in runs]) for model, runs in records.items()}
    loss_figure(curves, title, [out / "loss.png", out / "loss.svg"], labels=meta.get("labels"))


def format_table(summary: dict) -> str:
    """Markdown: one row a model, mean [95% CI] of every metric."""
    header = "| model | " + " | ".join(label for label, _ in METRICS.values()) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 1)]
    for model, by_metric in summary["models"].items():
        cells = []
        for metric, cell in by_metric.items():
            text = _fmt_ci(cell["mean"], cell["ci_low"], cell["ci_high"], metric)
            if cell["censored"]:
                text += f" ({cell['censored']} never)"
            cells.append(text)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_pairs(summary: dict, metrics=("mean_loss", "last50_loss", "updates_to_90", "heldout_step_accuracy")) -> str:
    lines = ["| comparison (A - B) | metric | difference [95% CI] | Wilcoxon p | Holm p |", "|---|---|---|---|---|"]
    for row in summary["pairs"]:
        if row["metric"] in metrics:
            lines.append(f"| {row['a']} - {row['b']} | {row['metric']} | "
                         f"{_fmt_ci(row['diff'], row['ci_low'], row['ci_high'], row['metric'])} | "
                         f"{_fmt_p(row['p'])} | {_fmt_p(row['p_holm'])} |")
    return "\n".join(lines)


def _fmt_ci(mean, low, high, metric) -> str:
    digits = 1 if metric == "updates_to_90" else 3
    if mean is None or np.isnan(mean):
        return "n/a"
    if low is None or np.isnan(low):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _fmt_p(p) -> str:
    if p is None or np.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"
