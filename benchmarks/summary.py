"""Tables, targets and the markdown summary of a results folder; figures come from ``benchmarks.plots``.

    python -m benchmarks.summary results/bench/<machine>   # writes summary.md, ratios.csv and *.png there

Ratios are step-time ratios, Keras over raw (> 1: Keras slower), case by case
on shapes where both finished, then summarised over shapes by their median and
quartiles. A single ratio's own spread comes from the two measurements'
quartiles: [q1_keras / q3_raw, q3_keras / q1_raw].

GPU targets (when GPU records exist): Keras on JAX with cuDNN (``keras-jax-gpu-auto``)
at B=256, T=100, U=512 within 1.25x of raw torch cuDNN (``raw-torch-gpu-native``);
the achieved fraction of the GPU's FP32 and TF32 dense peaks for the largest case.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from benchmarks.environment import GPU_PEAKS_TFLOPS
from benchmarks.records import group_of, ok_by_group
from benchmarks.store import ResultsFileError, read_results
from keras_impl.files import atomic_write_text

TARGET_SHAPE = (256, 100, 512)
TARGET_RATIO = 1.25


def load(directory: Path) -> tuple[dict, list[dict]]:
    """(machine, records) of a results folder; ``ResultsFileError`` (one line) where it holds no readable results."""
    path = Path(directory) / "results.json"
    if not path.is_file():
        raise ResultsFileError(f"{path} does not exist: not a results folder")
    machine, records, _ = read_results(path)
    return machine, records


def ratio_rows(ok: dict, device: str) -> list[dict]:
    """One row per (Keras group, raw group, shape) where both finished on ``device``."""
    rows = []
    keras_groups = sorted(g for g in ok if g.startswith("keras-") and f"-{device}-" in g)
    raw_groups = sorted(g for g in ok if g.startswith("raw-") and f"-{device}-" in g)
    for kg in keras_groups:
        for rg in raw_groups:
            for shape in sorted(set(ok[kg]) & set(ok[rg])):
                k, r = ok[kg][shape], ok[rg][shape]
                rows.append({"device": device, "keras": kg, "raw": rg, "batch": shape[0], "timesteps": shape[1],
                             "units": shape[2], "ratio": k["median_s"] / r["median_s"],
                             "ratio_low": k["q1_s"] / r["q3_s"], "ratio_high": k["q3_s"] / r["q1_s"]})
    return rows


def summarise(values: list[float]) -> dict:
    if len(values) == 1:
        return {"n": 1, "median": values[0], "q1": values[0], "q3": values[0], "min": values[0], "max": values[0]}
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"n": len(values), "median": median, "q1": q1, "q3": q3, "min": min(values), "max": max(values)}


def ratio_table(rows: list[dict]) -> list[dict]:
    pairs: dict[tuple, list[float]] = {}
    for row in rows:
        pairs.setdefault((row["device"], row["keras"], row["raw"]), []).append(row["ratio"])
    return [{"device": d, "keras": k, "raw": r, **summarise(v)} for (d, k, r), v in sorted(pairs.items())]


def gpu_targets(ok: dict, machine: dict) -> list[str]:
    lines = []
    keras_jax, raw_torch = ok.get("keras-jax-gpu-auto", {}), ok.get("raw-torch-gpu-native", {})
    if TARGET_SHAPE in keras_jax and TARGET_SHAPE in raw_torch:
        k, r = keras_jax[TARGET_SHAPE], raw_torch[TARGET_SHAPE]
        ratio = k["median_s"] / r["median_s"]
        verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
        lines.append(f"- Keras on JAX (kernel `{k.get('kernel')}`) at B=256, T=100, U=512: {k['median_s'] * 1e3:.3g} ms a step "
                     f"against raw torch cuDNN {r['median_s'] * 1e3:.3g} ms: ratio **{ratio:.2f}** "
                     f"(spread {k['q1_s'] / r['q3_s']:.2f}-{k['q3_s'] / r['q1_s']:.2f}); target <= {TARGET_RATIO}: {verdict}.")
    else:
        lines.append("- Keras on JAX cuDNN vs raw torch cuDNN at B=256, T=100, U=512: not measured in this run "
                     f"(keras-jax-gpu-auto: {'ok' if TARGET_SHAPE in keras_jax else 'missing'}, "
                     f"raw-torch-gpu-native: {'ok' if TARGET_SHAPE in raw_torch else 'missing'}).")
    gpu_name = " ".join(machine.get("gpus", [])[:1])
    peaks = next((v for k, v in GPU_PEAKS_TFLOPS.items() if k in gpu_name), None)
    for g in sorted(g for g in ok if "-gpu-" in g):
        largest = max(ok[g].values(), key=lambda r: r["gflop"])
        text = f"- `{g}` largest case B={largest['batch']}, T={largest['timesteps']}, U={largest['units']} " \
               f"(TF32 {'on' if largest.get('tf32') else 'off'}): {largest['gflops'] / 1e3:.3g} TFLOP/s"
        if peaks:
            text += (f" = {100 * largest['gflops'] / 1e3 / peaks['fp32']:.1f}% of FP32 peak ({peaks['fp32']:g}), "
                     f"{100 * largest['gflops'] / 1e3 / peaks['tf32']:.1f}% of TF32 dense peak ({peaks['tf32']:g})")
        lines.append(text + ".")
    return lines


def fmt_table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def render(machine: dict, records: list[dict], figures: list[str]) -> str:
    ok = ok_by_group(records)
    devices = sorted({r["device"] for r in records}, key=lambda d: d != "gpu")
    stamps = sorted(r["timestamp"] for r in records if r.get("timestamp"))
    versions = next((r for r in records if r.get("status") == "ok" and r.get("keras")), {})
    lines = ["# Training-speed benchmark", "",
             f"Machine: {machine.get('cpu')} ({machine.get('cpu_count')} logical CPUs, {machine.get('memory_gib')} GiB), "
             f"GPUs: {', '.join(machine.get('gpus') or ['none'])}; {machine.get('platform')}, Python {machine.get('python')}.",
             f"Run: {stamps[0] if stamps else '?'} to {stamps[-1] if stamps else '?'} (UTC). Versions: "
             + ", ".join(f"{k} {versions[k]}" for k in ("keras", "jax", "torch", "tensorflow", "numpy") if versions.get(k)) + ".",
             "", "One training step (forward, backward, Adam) of Bidirectional(LSTM(U), concat) + per-step "
             "Dense(1, sigmoid), BCE, float32, D=16 features; median of single steps after warm-up, device synchronized "
             "before each clock read (`benchmarks/train_speed.py`). Ratios are Keras step time over raw step time "
             "(> 1: Keras slower).", ""]
    threads = sorted({str(r.get("threads") or "default") for r in records if r.get("status") == "ok"})
    if threads:
        lines += [f"CPU threads a worker: {', '.join(threads)} (`--threads`; 'default' = each framework's own choice).", ""]
    loads = [r["loadavg_1m"] for r in records if r.get("loadavg_1m") is not None]
    if loads and machine.get("cpu_count") and max(loads) > 0.5 * machine["cpu_count"]:
        lines += [f"Note: the 1-minute load average during the run reached {max(loads):.1f} on "
                  f"{machine['cpu_count']} CPUs (median {statistics.median(loads):.1f}): other work shared the "
                  "machine, so CPU timings carry that noise (see each case's IQR and `loadavg_1m`).", ""]
    counts: dict[tuple, int] = {}
    for r in records:
        counts[(group_of(r), r.get("status"))] = counts.get((group_of(r), r.get("status")), 0) + 1
    groups = sorted({group_of(r) for r in records})
    lines += ["## Cases", ""] + fmt_table(["group", "ok", "error", "skipped"],
                                         [[g, counts.get((g, "ok"), 0), counts.get((g, "error"), 0), counts.get((g, "skipped"), 0)] for g in groups])
    kernels = sorted({(group_of(r), r.get("kernel")) for r in records if r.get("status") == "ok"})
    lines += ["", "Kernel paths that ran: " + "; ".join(f"`{g}`: {k}" for g, k in kernels) + "."]
    for device in devices:
        table = ratio_table(ratio_rows(ok, device))
        if table:
            lines += ["", f"## Keras over raw, {device.upper()} (step-time ratio over the shapes both finished)", ""]
            lines += fmt_table(["Keras", "raw", "shapes", "median", "quartiles", "range"],
                               [[t["keras"], t["raw"], t["n"], f"{t['median']:.2f}", f"{t['q1']:.2f}-{t['q3']:.2f}",
                                 f"{t['min']:.2f}-{t['max']:.2f}"] for t in table])
    best = {}
    for cases in ok.values():
        for shape, r in cases.items():
            d = r["device"]
            if (d, shape) not in best or r["median_s"] < best[(d, shape)]["median_s"]:
                best[(d, shape)] = r
    for device in devices:
        winners: dict[str, int] = {}
        for (d, _), r in best.items():
            if d == device:
                winners[group_of(r)] = winners.get(group_of(r), 0) + 1
        if winners:
            lines += ["", f"Fastest on {device.upper()}, shapes won: " + ", ".join(f"`{g}` {n}" for g, n in sorted(winners.items(), key=lambda x: -x[1])) + "."]
    scaling = []
    for g in sorted(g for g in ok if "-dp" in g):
        single = g.split("-dp")[0]
        for shape in sorted(set(ok[g]) & set(ok.get(single, {}))):
            n = ok[g][shape].get("n_devices", 1)
            speedup = ok[single][shape]["median_s"] / ok[g][shape]["median_s"]
            scaling.append([g, *shape, n, f"{speedup:.2f}", f"{speedup / n:.0%}"])
    if scaling:
        lines += ["", "## Data-parallel scaling (step-time speedup over one device, same global batch)", ""]
        lines += fmt_table(["group", "B", "T", "U", "devices", "speedup", "efficiency"], scaling)
    lines += ["", "## GPU targets", ""]
    if "gpu" in devices:
        lines += gpu_targets(ok, machine)
        if not any(group_of(r).startswith("keras-tensorflow-gpu") for r in records):
            lines.append("- TensorFlow was not timed on the GPU (the GPU host has no TensorFlow).")
    else:
        lines.append("No GPU results in this folder: the GPU run (`benchmarks/gpu/run_gpu.sh`) is still owed; "
                     "the targets (Keras JAX cuDNN within 1.25x of raw torch cuDNN at B=256, T=100, U=512; fraction "
                     "of FP32/TF32 peak) are computed here once it has run.")
    errors = [r for r in records if r.get("status") == "error"]
    if errors:
        lines += ["", "## Errors", ""] + [f"- `{r['key']}`: {r.get('error', '')[:300]}" for r in errors]
    skipped = [r for r in records if r.get("status") == "skipped"]
    if skipped:
        lines += ["", f"## Skipped ({len(skipped)})", "",
                  "Cases whose estimated cost did not fit the time budget (reason in each record), e.g.:", ""]
        lines += [f"- `{r['key']}`: {r.get('reason', '')}" for r in sorted(skipped, key=lambda r: r["key"])[:8]]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{Path(f).stem}]({Path(f).name})" for f in figures]
    return "\n".join(lines) + "\n"


def write_summary(directory) -> list[Path]:
    directory = Path(directory)
    machine, records = load(directory)
    ok = ok_by_group(records)
    written = []
    rows = [row for device in ("gpu", "cpu") for row in ratio_rows(ok, device)]
    if rows:
        header = list(rows[0])
        text = ",".join(header) + "\n" + "".join(",".join(f"{row[h]:.4g}" if isinstance(row[h], float) else str(row[h])
                                                          for h in header) + "\n" for row in rows)
        atomic_write_text(directory / "ratios.csv", text)
        written.append(directory / "ratios.csv")
    try:
        from benchmarks.plots import draw_all
        figures = draw_all(directory, machine, records)
    except ImportError as exc:  # matplotlib is optional: tables still get written
        print(f"summary: no figures ({exc})", file=sys.stderr)
        figures = []
    atomic_write_text(directory / "summary.md", render(machine, records, [str(f) for f in figures]))
    return written + figures + [directory / "summary.md"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m benchmarks.summary RESULTS_DIR", file=sys.stderr)
        return 2
    try:
        paths = write_summary(argv[0])
    except ResultsFileError as exc:
        print(f"summary: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
