"""REPORT.md: each claim of the tutorial beside what was measured, with a verdict.

Verdict rules (alpha = 0.05 on Holm-adjusted Wilcoxon p values, paired over seeds; REPORT.md states
them, ``verdict_rule``, with the smallest p its seed count allows, ``seed_floor``):

- "A is better than B" claims: **supported** when every difference the claim
  names favours it and is significant; **not supported** when any of them is
  significant the other way; **inconclusive** otherwise.
- "A and B behave alike": **supported** when the 95% CI of the paired difference
  in mean loss lies inside +/- 10% of B's mean loss (an equivalence margin);
  **not supported** when the difference is significant and its size exceeds
  that margin; **inconclusive** otherwise.
- "accuracy between about 90% and 100%": **supported** when the 95% CI of the
  mean held-out step accuracy lies in [0.9, 1]; **not supported** when it lies
  wholly below 0.9; **inconclusive** otherwise.

An inconclusive verdict decided by p values says why (``why_inconclusive``): too few seeds for
any p to reach alpha after Holm's correction, or an interval that excludes zero beside a
p value corrected for the whole experiment.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_impl.files import atomic_write_json, atomic_write_text
from .runner import CELL_LABELS, model_name
from .stats import seeds_needed, smallest_holm_p, smallest_p
from .summary import _fmt_ci, _fmt_p, find_pair, format_pairs, format_table

ALPHA = 0.05
EQUIVALENCE_MARGIN = 0.10


def better_verdict(rows: list[dict], smaller_is_better: bool) -> str:
    """rows: comparisons 'claimed better' minus 'claimed worse'."""
    sign = -1.0 if smaller_is_better else 1.0
    favour = [sign * r["diff"] > 0 and r["p_holm"] < ALPHA for r in rows]
    against = [sign * r["diff"] < 0 and r["p_holm"] < ALPHA for r in rows]
    if any(against):
        return "not supported"
    if rows and all(favour):
        return "supported"
    return "inconclusive"


def alike_verdict(row: dict, reference_mean: float) -> str:
    margin = EQUIVALENCE_MARGIN * abs(reference_mean)
    if np.isfinite(row["ci_low"]) and -margin < row["ci_low"] and row["ci_high"] < margin:
        return "supported"
    if row["p_holm"] < ALPHA and abs(row["diff"]) > margin:
        return "not supported"
    return "inconclusive"


def accuracy_verdict(cell: dict) -> str:
    if np.isfinite(cell["ci_low"]) and cell["ci_low"] >= 0.9:
        return "supported"
    if np.isfinite(cell["ci_high"]) and cell["ci_high"] < 0.9:
        return "not supported"
    return "inconclusive"


def _diff_text(row: dict) -> str:
    return (f"{row['a']} - {row['b']}: {_fmt_ci(row['diff'], row['ci_low'], row['ci_high'], row['metric'])}, "
            f"Holm p {_fmt_p(row['p_holm'])}")


def results_cell(results: dict) -> str:
    """The cell the results were made with (``summary.json``'s ``cell``; results without one are the LSTM's)."""
    return results["compare"].get("meta", {}).get("cell", "lstm")


# ---------------------------------------------------------------- what the seed count allows

def seed_floor(summary: dict) -> tuple[int, int, float] | None:
    """(seeds, tests, the smallest Holm-adjusted p they allow) of an experiment; None without paired tests."""
    pairs = summary.get("pairs", [])
    seeds = max((row["n"] for row in pairs if "n" in row), default=0)
    tests = summary.get("tests", sum(1 for row in pairs if np.isfinite(row.get("p", np.nan))))
    if seeds < 1 or tests < 1:
        return None
    return seeds, tests, smallest_holm_p(seeds, tests)


def floor_text(seeds: int, tests: int) -> str:
    """Why no difference can be significant: '5 seeds: the smallest possible Holm p over 15 tests is 0.94 ...'."""
    return (f"{seeds} seeds: the smallest possible Holm-adjusted p over {tests} tests is "
            f"{smallest_holm_p(seeds, tests):.3g}, not below {ALPHA}; use {seeds_needed(tests, ALPHA)} or more seeds")


def _excludes_zero(row: dict) -> bool:
    return bool(np.isfinite(row["ci_low"]) and (row["ci_low"] > 0 or row["ci_high"] < 0))


def why_inconclusive(rows: list[dict], summary: dict) -> str | None:
    """Why a claim decided by p values is inconclusive, when the numbers alone would not say it.

    With too few seeds no Holm-adjusted p can fall below alpha (``seed_floor``): that is the reason,
    whatever the intervals. Otherwise an interval that excludes zero beside a p that is not
    significant: the interval is one comparison's, the p value corrected for the whole family.
    """
    floor = seed_floor(summary)
    if floor is not None and floor[2] >= ALPHA:
        return floor_text(*floor[:2])
    excluding = [row for row in rows if _excludes_zero(row) and not row["p_holm"] < ALPHA]
    if not excluding:
        return None
    tests = f" {floor[1]}" if floor is not None else ""
    return (f"{excluding[0]['a']} - {excluding[0]['b']}'s interval excludes zero, but its Holm-adjusted p "
            f"({_fmt_p(excluding[0]['p_holm'])}) is not below {ALPHA}: the interval is that one comparison's, "
            f"the p value is corrected for all{tests} tests of the experiment")


def _claim(claim: str, measured: str, verdict: str, rows: list[dict] = (), summary: dict | None = None) -> dict:
    """One claim's row; an inconclusive verdict from p values says why (``why_inconclusive``)."""
    row = {"claim": claim, "measured": measured, "verdict": verdict}
    if verdict == "inconclusive" and summary is not None and (why := why_inconclusive(list(rows), summary)):
        row["why"] = why
    return row


# ---------------------------------------------------------------- the claims, one experiment at a time

def demo_claims(demo: dict, cell: str, model: str | None = None) -> list[dict]:
    """The first example's claim, from a demo's result (``summary`` and ``meta``): the tutorial's is the
    Bidirectional model's (the default ``model``); ``bilstm demo --model lstm`` holds its LSTM to it."""
    bi = model_name("bidirectional", cell)
    model = bi if model is None else model
    label = {bi: f"Bidirectional {CELL_LABELS[cell]}", model_name("forward", cell): CELL_LABELS[cell]}.get(model, model)
    accuracy = demo["summary"]["models"][model]["heldout_step_accuracy"]
    updates = demo["meta"]["updates"]
    return [_claim(f"After {updates:,} updates the {label}'s accuracy hovers between about 90% and 100%",
                   f"held-out accuracy per timestep "
                   f"{_fmt_ci(accuracy['mean'], accuracy['ci_low'], accuracy['ci_high'], '')}",
                   accuracy_verdict(accuracy))]


def compare_claims(compare: dict, cell: str) -> list[dict]:
    """The claims of the first comparison (alike, falls sooner, stays lower), from ``compare``'s summary."""
    label = CELL_LABELS[cell]
    forward, backward, bi = (model_name(d, cell) for d in ("forward", "backward", "bidirectional"))
    forward_loss = compare["models"][forward]["mean_loss"]["mean"]
    row = find_pair(compare, backward, forward, "mean_loss")
    verdict = alike_verdict(row, forward_loss)
    note = "; a real difference (significant) but inside the margin" if row["p_holm"] < ALPHA and verdict == "supported" else ""
    out = [_claim(f"Forward and reversed {label} behave alike",
                  f"mean loss {_diff_text(row)}; equivalence margin +/-{EQUIVALENCE_MARGIN * forward_loss:.3f}"
                  f" (10% of the {label}'s){note}", verdict, [row], compare)]
    rows = [find_pair(compare, bi, other, "updates_to_90") for other in (forward, backward)]
    out.append(_claim(f"The Bidirectional {label}'s loss falls sooner",
                      "updates to rolling accuracy 0.9: " + "; ".join(_diff_text(r) for r in rows),
                      better_verdict(rows, smaller_is_better=True), rows, compare))
    rows = [find_pair(compare, bi, other, "last50_loss") for other in (forward, backward)]
    out.append(_claim(f"The Bidirectional {label}'s loss stays lower",
                      "loss over the last 50 updates: " + "; ".join(_diff_text(r) for r in rows),
                      better_verdict(rows, smaller_is_better=True), rows, compare))
    return out


def merge_claims(merge: dict, cell: str) -> list[dict]:
    """The merge-mode claim, from ``merge-modes``' summary; none unless it compared sum, concat, mul and ave."""
    bi = model_name("bidirectional", cell)
    if not all(f"{bi}_{mode}" in merge["models"] for mode in ("sum", "concat", "mul", "ave")):
        return []
    rows = [find_pair(merge, f"{bi}_{good}", f"{bi}_{bad}", "mean_loss")
            for good in ("sum", "concat") for bad in ("mul", "ave")]
    ranking = sorted(merge["models"], key=lambda m: merge["models"][m]["mean_loss"]["mean"])
    return [_claim("Merge modes: sum and concat do better (lower loss) than mul and ave",
                   "mean loss: " + "; ".join(_diff_text(r) for r in rows)
                   + f". Ranking (lowest first): {', '.join(ranking)}",
                   better_verdict(rows, smaller_is_better=True), rows, merge)]


def claims(results: dict) -> list[dict]:
    """The tutorial's claims (docs/tutorial.md, "The tutorial"), each with the numbers and a verdict.

    For another cell (``bilstm reproduce --cell gru``) the same claims, with that cell in place of the LSTM.
    """
    cell = results_cell(results)
    return (demo_claims(results[f"demo-{model_name('bidirectional', cell)}"], cell)
            + compare_claims(results["compare"]["summary"], cell)
            + merge_claims(results["merge-modes"]["summary"], cell))


def verdict_text(row: dict) -> str:
    """'supported', or 'inconclusive (5 seeds: ...)' when the verdict says why."""
    return row["verdict"] + (f" ({row['why']})" if row.get("why") else "")


def claims_table(rows: list[dict]) -> str:
    lines = ["| tutorial's claim | measured (paired over seeds, 95% CI) | verdict |", "|---|---|---|"]
    lines += [f"| {r['claim']} | {r['measured']} | **{r['verdict']}**"
              + (f" ({r['why']})" if r.get("why") else "") + " |" for r in rows]
    return "\n".join(lines)


def verdict_rule(results: dict) -> str:
    """The report's own statement of how verdicts are decided, and the smallest p its seed count allows."""
    families = [(name, seed_floor(results[name]["summary"])) for name in ("compare", "merge-modes")]
    families = [(name, floor) for name, floor in families if floor is not None]
    lines = ["## How the verdicts are decided", "",
             "Each difference is paired over seeds: its mean, a Student-t 95% confidence interval, and a two-sided "
             "Wilcoxon signed-rank test (exact), Holm-corrected over all pairs of models and all metrics of an "
             f"experiment. alpha = {ALPHA}.", "",
             "- *A is better than B*: **supported** when every difference the claim names favours it with a "
             "Holm-adjusted p below alpha; **not supported** when any is significant the other way; "
             "**inconclusive** otherwise.",
             f"- *A and B behave alike*: **supported** when the 95% CI of the paired difference in mean loss lies "
             f"inside +/-{EQUIVALENCE_MARGIN:.0%} of B's mean loss (an equivalence margin); **not supported** when "
             "the difference is significant and larger than the margin; **inconclusive** otherwise.",
             "- *Accuracy between about 90% and 100%*: **supported** when the 95% CI of the mean held-out step "
             "accuracy lies in [0.9, 1]; **not supported** when it lies wholly below 0.9; **inconclusive** otherwise.",
             ""]
    if families:
        seeds = families[0][1][0]
        each = "; ".join(f"{name}, {tests} tests: {floor:.3g}" for name, (_, tests, floor) in families)
        lines.append(f"**What {seeds} seeds allow.** With {seeds} paired differences, the smallest p any test of "
                     f"their signs can give is 2 / 2^{seeds} = {smallest_p(seeds):.3g} (all {seeds} of one "
                     "sign); Holm multiplies the smallest p of an experiment by its number of tests, so the "
                     f"smallest possible adjusted p is: {each}.")
        short = [(name, tests) for name, (_, tests, floor) in families if floor >= ALPHA]
        if short:
            need = max(seeds_needed(tests, ALPHA) for _, tests in short)
            lines.append(f"At {seeds} seeds no difference in {' or '.join(n for n, _ in short)} can be significant, "
                         "whatever was measured: no *better* claim can be supported and no *alike* claim refuted, "
                         f"and such verdicts are inconclusive by the seed count alone. Use {need} or more seeds.")
        else:
            lines.append(f"Both are below {ALPHA}: every verdict can be reached at this seed count.")
        lines.append("An exact sign-flip permutation test of the mean difference has the same floor, 2 / 2^S, so "
                     "it would decide no more claims at small seed counts; the Wilcoxon test is kept.")
    return "\n".join(lines)


def write_report(out: Path, results: dict, arguments: dict, wall_s: float) -> Path:
    out = Path(out)
    rows = claims(results)
    meta = results["compare"]["meta"]
    info = meta["backend_info"]
    versions = ", ".join(f"{k} {info[k]}" for k in ("keras", "jax", "jaxlib", "tensorflow", "tensorflow-cpu", "torch", "numpy") if k in info)
    seeds, updates = meta["seeds"], meta["updates"]
    cell = results_cell(results)
    label = CELL_LABELS[cell]
    demos = [f"demo-{model_name(d, cell)}" for d in ("bidirectional", "forward")]
    demo_updates = results[demos[0]]["meta"]["updates"]
    variant = []
    if meta["variable_length"]:
        variant.append("variable-length sequences (5 to 20 steps, zero-padded, masked; threshold = own length / 4)")
    if meta["layers"] > 1:
        variant.append(f"{meta['layers']} stacked recurrent layers")
    parts = [
        "# The Bidirectional LSTM tutorial, reproduced with statistics"
        + ("" if cell == "lstm" else f": {label} in place of the LSTM"),
        "",
        f"Backend **{info['backend']}** on **{info['device']}** ({versions}); mode `{meta['mode']}`; "
        f"{len(seeds)} seeds; {updates} updates for the comparisons, {demo_updates} for the demo; "
        f"held-out accuracy on {meta['heldout']} new sequences a seed."
        + (f" Variant: {'; '.join(variant)}." if variant else "")
        + f" Wall time {wall_s:.1f} s.",
        "",
        "Each seed fixes the training stream, the held-out set and the initial weights; every model of a "
        "comparison sees the same sequences for a seed, so differences are paired over seeds.",
        "",
        "## The tutorial's claims",
        "",
        claims_table(rows),
        "",
        verdict_rule(results),
        "",
        f"## {label} vs reversed {label} vs Bidirectional {label}",
        "",
        "![loss per update](compare/loss.png)",
        "",
        format_table(results["compare"]["summary"]),
        "",
        format_pairs(results["compare"]["summary"]),
        "",
        "## Merge modes",
        "",
        "![loss per update](merge-modes/loss.png)",
        "",
        format_table(results["merge-modes"]["summary"]),
        "",
        format_pairs(results["merge-modes"]["summary"], metrics=("mean_loss", "last50_loss")),
        "",
        "## The first examples (demo)",
        "",
    ]
    for name in demos:
        if name not in results:
            continue
        record = next(iter(results[name]["records"].values()))[0]
        example = record["example"]
        parts += [f"### {name}", "", f"![loss per update]({name}/loss.png)", "",
                  format_table(results[name]["summary"]), "",
                  "A new sequence, seed 0: " + ", ".join(f"expected {e} predicted {p}"
                                                       for e, p in zip(example["expected"], example["predicted"])), ""]
    parts += ["## Files", "",
              "Each experiment folder holds `results.csv` (one row a model and seed), `curves.csv` (every update), "
              "`pairs.csv` (paired differences), `summary.json` (everything, with backend, versions, device, seeds, "
              "wall time), `loss.png` / `loss.svg`, and `runs/` (one JSON a run, for `--resume`).", ""]
    path = out / "REPORT.md"
    atomic_write_text(path, "\n".join(parts))
    atomic_write_json(out / "claims.json", {"claims": rows, "arguments": arguments, "wall_time_s": wall_s,
                                            "backend_info": info})
    return path
