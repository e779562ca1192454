"""What ``demo``, ``compare``, ``merge-modes`` and ``reproduce`` print when they finish: a table that fits
100 columns, the verdicts with their intervals (and why, when inconclusive), and the files written.

The Markdown tables of REPORT.md carry every metric with its interval (about 230 columns); the
terminal gets four metrics, each as ``mean +/- half-width`` of its 95% interval, or ``mean [low, high]``
where the interval was cut to the metric's range and is no longer symmetric. A table that would
still be wider than ``WIDTH`` (long model names, several cut intervals) is printed one model a block.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .report import ALPHA, verdict_text, why_inconclusive
from .summary import _fmt_ci, _fmt_p

WIDTH = 100
# (metric, column heading): the terminal's columns, in the order of the report's tables.
COLUMNS = (("mean_loss", "mean loss"), ("last50_loss", "last-50 loss"), ("updates_to_90", "updates to acc 0.9"),
           ("heldout_step_accuracy", "held-out acc/step"))
GAP = "  "


def value_text(cell: dict, metric: str) -> str:
    """'0.481 +/- 0.006', or '0.967 [0.823, 1.000]' for an interval cut to the metric's range; '(2 never)' added."""
    digits = 1 if metric == "updates_to_90" else 3
    mean, low, high = cell["mean"], cell["ci_low"], cell["ci_high"]
    if mean is None or low is None or np.isnan(mean) or np.isnan(low):
        text = _fmt_ci(mean, low, high, metric)
    elif f"{mean - low:.{digits}f}" == f"{high - mean:.{digits}f}":
        text = f"{mean:.{digits}f} +/- {high - mean:.{digits}f}"
    else:
        text = _fmt_ci(mean, low, high, metric)
    return text + (f" ({cell['censored']} never)" if cell.get("censored") else "")


def model_table(summary: dict) -> list[str]:
    """One row a model, the four metrics as columns; one block a model if that would exceed ``WIDTH``."""
    rows = [[model] + [value_text(by_metric[m], m) for m, _ in COLUMNS] for model, by_metric in summary["models"].items()]
    header = ["model"] + [heading for _, heading in COLUMNS]
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]
    lines = [GAP.join(text.ljust(w) for text, w in zip(row, widths)).rstrip() for row in [header, *rows]]
    if max(map(len, lines)) <= WIDTH:
        return lines
    label = max(len(heading) for _, heading in COLUMNS)
    blocks = []
    for row in rows:
        blocks.append(row[0])
        blocks += [f"  {heading.ljust(label)}  {text}" for (_, heading), text in zip(COLUMNS, row[1:])]
    return blocks


def wrapped(text: str, indent: str = "    ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False)


def claim_lines(rows: list[dict]) -> list[str]:
    """Each claim: its verdict and the claim on one line, then what was measured (intervals), wrapped."""
    lines = []
    for row in rows:
        lines += textwrap.wrap(f"{row['verdict']}: {row['claim']}", WIDTH, subsequent_indent="    ")
        lines += wrapped(row["measured"])
        if row.get("why"):
            lines += wrapped(f"why {row['verdict']}: {row['why']}")
    return lines


def pair_lines(summary: dict, metric: str = "mean_loss", heading: str = "mean loss") -> list[str]:
    """Every pair of models on one metric, as a verdict: which is lower, significantly, or no difference shown."""
    lines = []
    for row in summary["pairs"]:
        if row["metric"] != metric:
            continue
        if row["p_holm"] < ALPHA:
            verdict = f"{row['a']} {'lower' if row['diff'] < 0 else 'higher'} (significant)"
        else:
            verdict = "no significant difference"
        lines += textwrap.wrap(f"{verdict}: {heading} {row['a']} - {row['b']} "
                               f"{_fmt_ci(row['diff'], row['ci_low'], row['ci_high'], metric)}, "
                               f"Holm p {_fmt_p(row['p_holm'])}", WIDTH, subsequent_indent="    ")
        if not row["p_holm"] < ALPHA and (why := why_inconclusive([row], summary)):
            lines += wrapped(f"why: {why}")
    return lines


def experiment_lines(name: str, result: dict, claims: list[dict]) -> list[str]:
    """One experiment: a title with the backend and seeds, its table, its verdicts (claims, else pairs)."""
    meta = result["meta"]
    info = meta.get("backend_info", {})
    title = (f"{name}: {len(meta['seeds'])} seeds, {meta['updates']:,} updates, backend {info.get('backend')} "
             f"on {info.get('device')}; mean +/- 95% CI half-width, or [95% CI]")
    lines = textwrap.wrap(title, WIDTH, subsequent_indent="  ") + model_table(result["summary"])
    verdicts = claim_lines(claims) if claims else pair_lines(result["summary"])
    if verdicts:
        lines += ["Verdicts (95% CI over seeds; differences paired, with Holm-adjusted Wilcoxon p):", *verdicts]
    return lines


def files_lines(out: Path, groups: list[tuple[str, list[str]]]) -> list[str]:
    """'Files written in OUT:' then one line a folder ('' for OUT itself), its names comma-separated."""
    lines = [f"Files written in {out}:"]
    for folder, names in groups:
        lines += textwrap.wrap(", ".join(names), WIDTH, initial_indent=f"  {folder + '/: ' if folder else ''}",
                               subsequent_indent="    ")
    return lines
