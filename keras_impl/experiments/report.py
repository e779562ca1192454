"""REPORT.md: each claim of the tutorial beside what was measured, with a verdict.

Verdict rules (alpha = 0.05 on Holm-adjusted Wilcoxon p values, paired over seeds):

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
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_impl.files import atomic_write_json, atomic_write_text
from .runner import CELL_LABELS, model_name
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


def claims(results: dict) -> list[dict]:
    """The tutorial's claims (docs/tutorial.md, "The tutorial"), each with the numbers and a verdict.

    For another cell (``bilstm reproduce --cell gru``) the same claims, with that cell in place of the LSTM.
    """
    cell = results_cell(results)
    label = CELL_LABELS[cell]
    forward, backward, bi = (model_name(d, cell) for d in ("forward", "backward", "bidirectional"))
    out = []
    demo = results[f"demo-{bi}"]["summary"]["models"][bi]["heldout_step_accuracy"]
    updates = results[f"demo-{bi}"]["meta"]["updates"]
    out.append({"claim": f"After {updates:,} updates the Bidirectional {label}'s accuracy hovers between about 90% and 100%",
                "measured": f"held-out accuracy per timestep {_fmt_ci(demo['mean'], demo['ci_low'], demo['ci_high'], '')}",
                "verdict": accuracy_verdict(demo)})

    compare = results["compare"]["summary"]
    forward_loss = compare["models"][forward]["mean_loss"]["mean"]
    row = find_pair(compare, backward, forward, "mean_loss")
    note = ("; a real difference (significant) but inside the margin" if row["p_holm"] < ALPHA
            and alike_verdict(row, forward_loss) == "supported" else "")
    out.append({"claim": f"Forward and reversed {label} behave alike",
                "measured": f"mean loss {_diff_text(row)}; equivalence margin +/-{EQUIVALENCE_MARGIN * forward_loss:.3f}"
                            f" (10% of the {label}'s){note}",
                "verdict": alike_verdict(row, forward_loss)})
    rows = [find_pair(compare, bi, other, "updates_to_90") for other in (forward, backward)]
    out.append({"claim": f"The Bidirectional {label}'s loss falls sooner",
                "measured": "updates to rolling accuracy 0.9: " + "; ".join(_diff_text(r) for r in rows),
                "verdict": better_verdict(rows, smaller_is_better=True)})
    rows = [find_pair(compare, bi, other, "last50_loss") for other in (forward, backward)]
    out.append({"claim": f"The Bidirectional {label}'s loss stays lower",
                "measured": "loss over the last 50 updates: " + "; ".join(_diff_text(r) for r in rows),
                "verdict": better_verdict(rows, smaller_is_better=True)})

    merge = results["merge-modes"]["summary"]
    rows = [find_pair(merge, f"{bi}_{good}", f"{bi}_{bad}", "mean_loss")
            for good in ("sum", "concat") for bad in ("mul", "ave")]
    ranking = sorted(merge["models"], key=lambda m: merge["models"][m]["mean_loss"]["mean"])
    out.append({"claim": "Merge modes: sum and concat do better (lower loss) than mul and ave",
                "measured": "mean loss: " + "; ".join(_diff_text(r) for r in rows)
                            + f". Ranking (lowest first): {', '.join(ranking)}",
                "verdict": better_verdict(rows, smaller_is_better=True)})
    return out


def claims_table(rows: list[dict]) -> str:
    lines = ["| tutorial's claim | measured (paired over seeds, 95% CI) | verdict |", "|---|---|---|"]
    lines += [f"| {r['claim']} | {r['measured']} | **{r['verdict']}** |" for r in rows]
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
        "comparison sees the same sequences for a seed, so differences are paired over seeds. "
        "Tests: Wilcoxon signed-rank, Holm-corrected over all pairs and metrics of an experiment; "
        "verdicts at alpha = 0.05 (rules in `keras_impl/experiments/report.py`).",
        "",
        "## The tutorial's claims",
        "",
        claims_table(rows),
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
