"""`bilstm export --matrix --precision all`: formats x precisions x models, each artifact verified against the
bounds of its precision, with its error in that precision's units, its decision agreement and its size.

    bilstm export --matrix --precision all [--out results/export-precision] [--resume]
    python -m keras_impl.export.precision_matrix render --from results/export-precision   # make docs-export-precision

Every cell is one `bilstm export MODEL --format F --precision P --verify` (keras_impl.export.export), from the
source backend whose route reaches the format (``SOURCE``), on models of the export matrix (``MODELS``: three
named by a ModelSpec over matrix.BASE_SPEC, and the tagger). Its JSON goes to ``out/entries`` atomically as it
ends; ``resume`` reuses an entry made by the same package versions. The table (``precision.md``) and the plot of
error against artifact size (``precision.png``) are written into ``out``; the developer's ``render`` step puts
them into docs/export.md (between PRECISION_MARKERS) and docs/figures/.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .matrix import BASE_SPEC, MODELS as SPEC_MODELS, WEIGHT_SEED, replace_section, versions
from .precision import REDUCED, producible

DEFAULT_OUT = Path("results/export-precision")
DOC = Path("docs/export.md")
FIGURE = Path("docs/figures/export-precision.png")
PRECISION_MARKERS = ("<!-- export-precision:begin (make docs-export-precision writes this section) -->",
                     "<!-- export-precision:end -->")
FORMATS = ("onnx", "litert", "openvino")
SOURCE = {"onnx": "tensorflow", "litert": "tensorflow", "openvino": "torch"}  # their own exporters' backends
MODELS = ("concat", "Masking", "GRU", "tagger")
PRECISIONS = ("float32",) + REDUCED


def cells():
    for model in MODELS:
        for fmt in FORMATS:
            for precision in PRECISIONS:
                yield model, fmt, precision


def entry_path(out: Path, model: str, fmt: str, precision: str) -> Path:
    return out / "entries" / f"{model}-{fmt}-{precision}.json"


def _model_argument(out: Path, model: str):
    """A ModelSpec for the named models; the tagger's .keras file, built once (a Keras child process)."""
    from reference import ModelSpec
    if model in SPEC_MODELS:
        spec = {**BASE_SPEC, **SPEC_MODELS[model]}
        if isinstance(spec.get("units"), list):
            spec["units"] = tuple(spec["units"])
        return ModelSpec(**spec)
    path = out / "models" / f"{model}.keras"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        code = (f"from keras_impl.export.matrix_models import BUILDERS; "
                f"BUILDERS[{model!r}]({WEIGHT_SEED}).save({str(path)!r})")
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    return str(path)


def measure(out: Path, model: str, fmt: str, precision: str) -> dict:
    """One cell: the export's report, boiled down."""
    from keras_impl.options import UsageError

    from . import export
    entry = {"model": model, "format": fmt, "precision": precision, "source": SOURCE[fmt], "versions": versions()}
    refusal = None if precision in producible(fmt) else f"no toolchain: {fmt} produces " \
                                                          f"{', '.join(producible(fmt))}"
    if refusal:
        return {**entry, "status": "none", "error": refusal}
    try:
        report = export(_model_argument(out, model), fmt, out=out / "artifacts" / f"{model}-{fmt}-{precision}",
                        backend=SOURCE[fmt], verify=True, precision=precision, overwrite=True, seed=WEIGHT_SEED,
                        accuracy_seeds=0)
    except UsageError as exc:
        return {**entry, "status": "none", "error": str(exc)}
    v = report.get("verify") or {}
    entry.update(status={0: "pass", 1: "FAIL"}.get(report.exit_status, "error"), error=report.get("error"),
                 route=report.get("route"), artifact_bytes=report.get("artifact_bytes"),
                 worst_vs_oracle=v.get("worst_vs_oracle"), ran_precision=v.get("ran_precision"),
                 units=v.get("units"), decisions=v.get("decisions", []), bound=(v.get("bounds") or {}).get("vs_oracle"))
    return entry


def run_precision_matrix(out: Path = DEFAULT_OUT, *, resume: bool = False, progress=print) -> dict:
    from keras_impl.files import atomic_write_json
    current = versions()
    entries = []
    for model, fmt, precision in cells():
        path = entry_path(out, model, fmt, precision)
        if resume and path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("versions") == current:
                entries.append(old)
                continue
        progress(f"precision matrix: {model} {fmt} {precision}")
        entry = measure(out, model, fmt, precision)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, entry)
        entries.append(entry)
    written = write_tables(entries, out)
    counts: dict = {}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    return {"counts": counts, "written": written}


# ---------------------------------------------------------------- tables and the plot

def cause(error: str) -> str:
    """What a failed cell shows: the first route's own failure, not the 'no route ... works' around it; a
    worker killed by a signal said as such."""
    first = error.split("; first: ", 1)[-1]
    crashed = re.search(r"worker stopped \(exit -(\d+)\)", first)
    if crashed:
        import signal
        try:
            name = signal.Signals(int(crashed.group(1))).name
        except ValueError:
            name = f"signal {crashed.group(1)}"
        return f"the export crashed ({name})"  # its stderr's last line is a log line, not the cause
    return first if len(first) <= 140 else first[:139] + "…"


def describe(entry: dict, float32_route: str | None = None) -> str:
    """A cell; its route named where it is not the float32 cell's (a route whose artifact failed its bound in
    this precision was passed over for the next: the sizes and graphs then differ)."""
    if entry["status"] == "none":
        return "—"
    if entry["status"] == "error" or entry.get("worst_vs_oracle") is None:
        return "✗ " + cause(entry.get("error") or "?")
    units = entry.get("units")
    text = f"{entry['worst_vs_oracle']:.1e}"
    if units:
        text += f" = {units['worst_vs_oracle']:.2f} {units['unit']}"
    for d in entry.get("decisions", []):
        text += f", {d['agree']}/{d['total']}"
    if entry.get("artifact_bytes"):
        text += f", {entry['artifact_bytes'] / 1024:.1f} kB"
    if float32_route and entry.get("route") and entry["route"] != float32_route:
        text += f" ({entry['route']})"
    return text + ("" if entry["status"] == "pass" else " FAIL")


def render_section(entries: list[dict], figure: str) -> str:
    by = {(e["model"], e["format"], e["precision"]): e for e in entries}
    lines = ["Each cell: worst absolute error against the oracle over three input sets, = the same in units of the "
             "precision (an ulp of float16 or bfloat16, or an int8 step, at the output's magnitude), the decisions "
             "that agree with the oracle's, the artifact's size; FAIL outside the bound derived from the precision; "
             "— the format's toolchain has no such conversion; ✗ the export or its run failed (cause); "
             "(route) where it is not the float32 cell's.",
             "", "| model | format | " + " | ".join(PRECISIONS) + " |", "|---|---|" + "---|" * len(PRECISIONS)]
    for model in MODELS:
        for fmt in FORMATS:
            route = (by.get((model, fmt, "float32")) or {}).get("route")
            row = [describe(by[(model, fmt, p)], route) if (model, fmt, p) in by else "not measured"
                   for p in PRECISIONS]
            lines.append(f"| {model} | {fmt} | " + " | ".join(row) + " |")
    some = next(iter(entries), {})
    total = len(MODELS) * len(FORMATS) * len(PRECISIONS)
    lines += ["", f"{len(entries)} of {total} cells measured ({sum(e['status'] == 'none' for e in entries)} with no "
              f"toolchain); a `--resume` run measures the rest.", "",
              f"![error against artifact size, per format]({figure})", "",
              "Measured with " + ", ".join(f"{k} {v}" for k, v in some.get("versions", {}).items() if v) + "."]
    return "\n".join(lines)


def plot(entries: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import NullFormatter
    markers = {"float32": "o", "float16": "s", "bfloat16": "D", "int8-dynamic": "^", "int8-static": "v"}
    colours = dict(zip(markers, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    fig, axes = plt.subplots(1, len(FORMATS), figsize=(4 * len(FORMATS), 3.6), sharey=True)
    for ax, fmt in zip(axes, FORMATS):
        for precision, marker in markers.items():
            points = [(e["artifact_bytes"] / 1024, max(e["worst_vs_oracle"], 1e-9)) for e in entries
                      if e["format"] == fmt and e["precision"] == precision and e.get("artifact_bytes")
                      and e.get("worst_vs_oracle") is not None]
            if points:
                ax.scatter(*zip(*points), marker=marker, color=colours[precision])
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yscale("log")
        ax.set_title(fmt)
        ax.set_xlabel("artifact size (kB)")
    axes[0].set_ylabel("worst |artifact - oracle|")
    axes[0].legend([Line2D([], [], linestyle="", marker=m, color=colours[p]) for p, m in markers.items()],
                   list(markers), fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_tables(entries: list[dict], out: Path) -> list[Path]:
    from keras_impl.files import atomic_write_text
    out.mkdir(parents=True, exist_ok=True)
    table = out / "precision.md"
    atomic_write_text(table, render_section(entries, "precision.png") + "\n")
    plot(entries, out / "precision.png")
    return [table, out / "precision.png"]


def render(source: Path) -> None:
    """The developer's step: docs/export.md's section and docs/figures/export-precision.png from ``source``."""
    import shutil
    entries = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((source / "entries").glob("*.json"))]
    text = DOC.read_text(encoding="utf-8")
    begin, end = PRECISION_MARKERS
    if begin not in text or end not in text:
        raise SystemExit(f"{DOC} has no {begin} ... {end} markers")
    DOC.write_text(replace_section(text, PRECISION_MARKERS, render_section(entries, "figures/export-precision.png")),
                   encoding="utf-8")
    plot(entries, source / "precision.png")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "precision.png", FIGURE)


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m keras_impl.export.precision_matrix")
    parser.add_argument("action", choices=["render"])
    parser.add_argument("--from", dest="source", required=True, help="a results folder of the precision matrix")
    args = parser.parse_args()
    render(Path(args.source))
