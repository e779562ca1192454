"""Tables, targets and the markdown summary of a results folder; figures come from ``benchmarks.plots``.

    python -m benchmarks.summary results/bench/<machine>   # writes summary.md, ratios.csv and *.png there

Ratios are step-time ratios, Keras over raw (> 1: Keras slower), case by case
on shapes where both finished, then summarised over shapes by their median and
quartiles. A single ratio's own spread comes from the two measurements'
quartiles: [q1_keras / q3_raw, q3_keras / q1_raw].

Only steady timings are compared (``benchmarks.records``: a timing whose IQR is over 10% of its
median is noisy): a pair with a noisy side is left out of the headline ratios, the fastest-implementation
count, the GPU targets and the CPU-against-GPU table, and the summary says how many were left out.
``ratios.csv`` keeps every pair, with a ``noisy`` column.

GPU sections (when GPU records exist):
- target: Keras on JAX with cuDNN (``keras-jax-gpu-auto``) at B=256, T=100, U=512 within 1.25x of
  raw torch cuDNN (``raw-torch-gpu-native``);
- the achieved fraction of the GPU's FP32 and dense TF32 peaks (``environment.GPU_PEAKS_TFLOPS``, found
  by the record's device name) for each GPU group's largest steady case;
- CPU against GPU for every shape: CPU step time / GPU step time, per implementation timed on both, and
  the crossover batch: the smallest batch from which the GPU is faster at every larger batch measured.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

from benchmarks.environment import GPU_PEAKS_TFLOPS
from benchmarks.records import MAX_REMEASURES, NOISE_THRESHOLD, cpu_counterpart, group_of, is_noisy, ok_by_group
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


def load_sweep(directory: Path) -> dict | None:
    """The folder's ``sweep.json`` (shards, grid), or None where it has none or it cannot be read."""
    from benchmarks.shards import read_sweep
    try:
        return read_sweep(Path(directory))
    except ResultsFileError:
        return None


def ratio_rows(ok: dict, device: str) -> list[dict]:
    """One row per (Keras group, raw group, shape) where both finished on ``device``; ``noisy``: either side is."""
    rows = []
    keras_groups = sorted(g for g in ok if g.startswith("keras-") and f"-{device}-" in g)
    raw_groups = sorted(g for g in ok if g.startswith("raw-") and f"-{device}-" in g)
    for kg in keras_groups:
        for rg in raw_groups:
            for shape in sorted(set(ok[kg]) & set(ok[rg])):
                k, r = ok[kg][shape], ok[rg][shape]
                rows.append({"device": device, "keras": kg, "raw": rg, "batch": shape[0], "timesteps": shape[1],
                             "units": shape[2], "ratio": k["median_s"] / r["median_s"],
                             "ratio_low": k["q1_s"] / r["q3_s"], "ratio_high": k["q3_s"] / r["q1_s"],
                             "noisy": is_noisy(k) or is_noisy(r)})
    return rows


def summarise(values: list[float]) -> dict:
    if len(values) == 1:
        return {"n": 1, "median": values[0], "q1": values[0], "q3": values[0], "min": values[0], "max": values[0]}
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"n": len(values), "median": median, "q1": q1, "q3": q3, "min": min(values), "max": max(values)}


def ratio_table(rows: list[dict]) -> list[dict]:
    """Per (device, Keras group, raw group): the steady pairs' ratios summarised, and how many noisy pairs were left out."""
    pairs: dict[tuple, list[float]] = {}
    left_out: dict[tuple, int] = {}
    for row in rows:
        key = (row["device"], row["keras"], row["raw"])
        pairs.setdefault(key, [])
        if row.get("noisy"):
            left_out[key] = left_out.get(key, 0) + 1
        else:
            pairs[key].append(row["ratio"])
    return [{"device": d, "keras": k, "raw": r, "noisy_left_out": left_out.get((d, k, r), 0),
             **(summarise(v) if v else {"n": 0})} for (d, k, r), v in sorted(pairs.items())]


def peaks_for(record: dict, machine: dict) -> tuple[str, dict] | None:
    """(GPU name, {"fp32", "tf32"} dense peaks in TFLOP/s) for the device a record ran on, if known."""
    names = [str(record.get("device_name") or "")] + [str(g) for g in (machine.get("gpus") or [])[:1]]
    for name in names:
        for model, peaks in GPU_PEAKS_TFLOPS.items():
            if model in name:
                return name, peaks
    return None


def gpu_targets(ok: dict, machine: dict, steady: dict | None = None) -> list[str]:
    steady = ok if steady is None else steady
    lines = []
    keras_jax, raw_torch = ok.get("keras-jax-gpu-auto", {}), ok.get("raw-torch-gpu-native", {})
    if TARGET_SHAPE in keras_jax and TARGET_SHAPE in raw_torch:
        k, r = keras_jax[TARGET_SHAPE], raw_torch[TARGET_SHAPE]
        ratio = k["median_s"] / r["median_s"]
        noisy = [g for g, rec in (("keras-jax-gpu-auto", k), ("raw-torch-gpu-native", r)) if is_noisy(rec)]
        verdict = (f"no verdict: {' and '.join(noisy)} noisy (IQR over {NOISE_THRESHOLD:.0%} of the median)" if noisy
                   else "met" if ratio <= TARGET_RATIO else "NOT met")
        lines.append(f"- Keras on JAX (kernel `{k.get('kernel')}`) at B=256, T=100, U=512: {k['median_s'] * 1e3:.3g} ms a step "
                     f"against raw torch cuDNN {r['median_s'] * 1e3:.3g} ms: ratio **{ratio:.2f}** "
                     f"(spread {k['q1_s'] / r['q3_s']:.2f}-{k['q3_s'] / r['q1_s']:.2f}); target <= {TARGET_RATIO}: {verdict}.")
    else:
        lines.append("- Keras on JAX cuDNN vs raw torch cuDNN at B=256, T=100, U=512: not measured in this run "
                     f"(keras-jax-gpu-auto: {'ok' if TARGET_SHAPE in keras_jax else 'missing'}, "
                     f"raw-torch-gpu-native: {'ok' if TARGET_SHAPE in raw_torch else 'missing'}).")
    for g in sorted(g for g in ok if "-gpu-" in g):
        if not steady.get(g):
            lines.append(f"- `{g}`: every case noisy; no fraction of peak.")
            continue
        largest = max(steady[g].values(), key=lambda r: r["gflop"])
        text = f"- `{g}` largest steady case B={largest['batch']}, T={largest['timesteps']}, U={largest['units']} " \
               f"(TF32 {'on' if largest.get('tf32') else 'off'}): {largest['gflops'] / 1e3:.3g} TFLOP/s"
        found = peaks_for(largest, machine)
        if found:
            name, peaks = found
            text += (f" = {100 * largest['gflops'] / 1e3 / peaks['fp32']:.1f}% of {name}'s FP32 peak ({peaks['fp32']:g} TFLOP/s), "
                     f"{100 * largest['gflops'] / 1e3 / peaks['tf32']:.1f}% of its dense TF32 peak ({peaks['tf32']:g})")
        else:
            text += f" (no peak known for {largest.get('device_name') or 'this GPU'})"
        lines.append(text + ".")
    return lines


def crossover_batch(points: list[tuple[int, float]]) -> str:
    """The smallest batch from which the GPU is faster (CPU time / GPU time > 1) at every larger batch measured."""
    if not points:
        return "-"
    points = sorted(points)
    wins_from = None
    for batch, speedup in reversed(points):
        if speedup <= 1:
            break
        wins_from = batch
    if wins_from is None:
        return f"never (to B={points[-1][0]})"
    return f"B={wins_from}"


def cpu_vs_gpu(ok: dict, records: list[dict]) -> list[str]:
    """Table rows: for each GPU group with a CPU counterpart and each (T, U), CPU time / GPU time per batch."""
    pairs = [(g, cpu_counterpart(g)) for g in sorted(ok) if "-gpu-" in g and cpu_counterpart(g) in ok]
    if not pairs:
        return []
    batches = sorted({r["batch"] for r in records if r.get("status") == "ok"})
    rows = []
    for gpu, cpu in pairs:
        for t, u in sorted({(s[1], s[2]) for s in set(ok[gpu]) & set(ok[cpu])}):
            cells, points = [], []
            for b in batches:
                g, c = ok[gpu].get((b, t, u)), ok[cpu].get((b, t, u))
                if g is None or c is None:
                    cells.append("-")
                elif is_noisy(g) or is_noisy(c):
                    cells.append("noisy")
                else:
                    speedup = c["median_s"] / g["median_s"]
                    cells.append(f"{speedup:.2f}")
                    points.append((b, speedup))
            rows.append([gpu, cpu, t, u, *cells, crossover_batch(points)])
    return fmt_table(["GPU", "CPU", "T", "U", *[f"B={b}" for b in batches], "GPU wins from"], rows)


def table_cell(value) -> str:
    """A value as one Markdown table cell: a ``|`` in it (a case key's) escaped, else it would split the row
    into extra columns (GitHub reads ``\\|`` as ``|`` in a table cell, code spans included); no line breaks."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def fmt_table(header: list[str], rows: list[list]) -> list[str]:
    return (["| " + " | ".join(map(table_cell, header)) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(map(table_cell, r)) + " |" for r in rows])


def machine_lines(machine: dict) -> list[str]:
    machines = machine.get("machines") or {}
    if len(machines) > 1:
        described = [f"`{mid}` ({d.get('cpu')}, {d.get('cpu_count')} logical CPUs, GPUs: {', '.join(d.get('gpus') or ['none'])})"
                     for mid, d in sorted(machines.items())]
        return [f"Machines (a merged run; each record names its `machine`): {'; '.join(described)}. Every ratio "
                "below pairs cases of one shard, so both sides ran on one machine."]
    return [f"Machine: {machine.get('cpu')} ({machine.get('cpu_count')} logical CPUs, {machine.get('memory_gib')} GiB), "
            f"GPUs: {', '.join(machine.get('gpus') or ['none'])}; {machine.get('platform')}, Python {machine.get('python')}."]


def shard_lines(sweep: dict | None) -> list[str]:
    if not sweep or sweep.get("of", 1) == 1 and not sweep.get("merged_from"):
        return []
    n = sweep["of"]
    held = ", ".join(f"{k}/{n}" for k in sweep["shards"])
    text = f"Shards: {held} of grid `{sweep['fingerprint']}` ({sweep.get('total_cases', '?')} cases in the whole grid)."
    if sweep.get("merged_from"):
        text += " Merged from: " + "; ".join(f"`{m['folder']}` (shard {','.join(map(str, m['shards']))}, `{m['machine']}`)"
                                             for m in sweep["merged_from"]) + "."
    missing = sweep.get("missing_shards") or [k for k in range(1, n + 1) if k not in sweep["shards"]]
    lines = [text]
    if missing:
        lines.append(f"**Incomplete: shard{'s' if len(missing) > 1 else ''} "
                     f"{', '.join(f'{k}/{n}' for k in missing)} missing**: the cases of "
                     f"{'those shards' if len(missing) > 1 else 'that shard'} are not in this summary.")
    return lines


def render(machine: dict, records: list[dict], figures: list[str], sweep: dict | None = None) -> str:
    ok = ok_by_group(records)
    steady = ok_by_group(records, steady=True)
    devices = sorted({r["device"] for r in records}, key=lambda d: d != "gpu")
    stamps = sorted(r["timestamp"] for r in records if r.get("timestamp"))
    versions = next((r for r in records if r.get("status") == "ok" and r.get("keras")), {})
    lines = ["# Training-speed benchmark", ""]
    if any(r.get("stand_in") for r in records):
        lines += ["**Stand-in run** (`--stand-in`): every step was a stand-in that imports no framework; this "
                  "rehearses the machinery and the figures below measure nothing.", ""]
    lines += machine_lines(machine)
    lines += [f"Run: {stamps[0] if stamps else '?'} to {stamps[-1] if stamps else '?'} (UTC). Versions: "
              + ", ".join(f"{k} {versions[k]}" for k in ("keras", "jax", "torch", "tensorflow", "numpy") if versions.get(k)) + "."]
    lines += shard_lines(sweep)
    lines += ["", "One training step (forward, backward, Adam) of Bidirectional(LSTM(U), concat) + per-step "
              "Dense(1, sigmoid), BCE, float32, D=16 features; median of single steps after warm-up, device synchronized "
              "before each clock read (`benchmarks/train_speed.py`). Ratios are Keras step time over raw step time "
              "(> 1: Keras slower).", ""]
    threads = sorted({str(r.get("threads") or "default") for r in records if r.get("status") == "ok"})
    if threads:
        lines += [f"CPU threads a worker: {', '.join(threads)} (`--threads`; 'default' = each framework's own choice).", ""]
    loads = [v for r in records for v in (r.get("loadavg_before", r.get("loadavg_1m")), r.get("loadavg_after"))
             if isinstance(v, (int, float))]
    cpu_count = machine.get("cpu_count")
    if loads and cpu_count and max(loads) > 0.5 * cpu_count:
        lines += [f"Note: the 1-minute load average during the run reached {max(loads):.1f} on "
                  f"{cpu_count} CPUs (median {statistics.median(loads):.1f}, read before and after each case): other "
                  "work shared the machine, so CPU timings carry that noise (see each case's IQR, `noisy`, "
                  "`loadavg_before` and `loadavg_after`).", ""]
    counts: dict[tuple, int] = {}
    for r in records:
        status = "noisy" if r.get("status") == "ok" and is_noisy(r) else r.get("status")
        counts[(group_of(r), status)] = counts.get((group_of(r), status), 0) + 1
    groups = sorted({group_of(r) for r in records})
    lines += ["## Cases", ""] + fmt_table(
        ["group", "ok", "of which noisy", "error", "skipped"],
        [[g, counts.get((g, "ok"), 0) + counts.get((g, "noisy"), 0), counts.get((g, "noisy"), 0),
          counts.get((g, "error"), 0), counts.get((g, "skipped"), 0)] for g in groups])
    kernels = sorted({(group_of(r), r.get("kernel")) for r in records if r.get("status") == "ok"})
    lines += ["", "Kernel paths that ran: " + "; ".join(f"`{g}`: {k}" for g, k in kernels) + "."]
    left_out_total = 0
    for device in devices:
        table = ratio_table(ratio_rows(ok, device))
        if table:
            left_out = sum(t["noisy_left_out"] for t in table)
            left_out_total += left_out
            lines += ["", f"## Keras over raw, {device.upper()} (step-time ratio over the steady shapes both finished)", ""]
            lines += fmt_table(["Keras", "raw", "shapes", "median", "quartiles", "range", "noisy pairs left out"],
                               [[t["keras"], t["raw"], t["n"], f"{t['median']:.2f}", f"{t['q1']:.2f}-{t['q3']:.2f}",
                                 f"{t['min']:.2f}-{t['max']:.2f}", t["noisy_left_out"]] if t["n"] else
                                [t["keras"], t["raw"], 0, "-", "-", "-", t["noisy_left_out"]] for t in table])
            lines += ["", f"{left_out} pair{'s' if left_out != 1 else ''} left out as noisy (IQR over "
                      f"{NOISE_THRESHOLD:.0%} of the median on either side); the ratios above come from steady pairs only."]
    best = {}
    for cases in steady.values():
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
            lines += ["", f"Fastest on {device.upper()} (steady timings), shapes won: " + ", ".join(
                f"`{g}` {n}" for g, n in sorted(winners.items(), key=lambda x: -x[1])) + "."]
    scaling = []
    for g in sorted(g for g in steady if "-dp" in g):
        single = g.split("-dp")[0]
        for shape in sorted(set(steady[g]) & set(steady.get(single, {}))):
            n = steady[g][shape].get("n_devices", 1)
            speedup = steady[single][shape]["median_s"] / steady[g][shape]["median_s"]
            scaling.append([g, *shape, n, f"{speedup:.2f}", f"{speedup / n:.0%}"])
    if scaling:
        lines += ["", "## Data-parallel scaling (step-time speedup over one device, same global batch)", ""]
        lines += fmt_table(["group", "B", "T", "U", "devices", "speedup", "efficiency"], scaling)
    lines += ["", "## GPU targets", ""]
    if "gpu" in devices:
        lines += gpu_targets(ok, machine, steady)
        if not any(group_of(r).startswith("keras-tensorflow-gpu") for r in records):
            lines.append("- TensorFlow was not timed on the GPU (the GPU host has no TensorFlow).")
        table = cpu_vs_gpu(ok, records)
        if table:
            lines += ["", "## CPU against GPU (CPU step time / GPU step time; above 1: the GPU is faster)", "",
                      "Per implementation timed on both devices and each (T, U); the last column is the crossover: "
                      "the smallest batch from which the GPU is faster at every larger batch measured. Noisy cells "
                      "are not compared.", ""] + table
    else:
        lines.append("No GPU results in this folder: the GPU run (`benchmarks/gpu/run_gpu.sh`) is still owed; "
                     "the targets (Keras JAX cuDNN within 1.25x of raw torch cuDNN at B=256, T=100, U=512; fraction "
                     "of FP32/TF32 peak) are computed here once it has run.")
    noisy = sorted((r for r in records if r.get("status") == "ok" and is_noisy(r)), key=lambda r: r["key"])
    lines += ["", f"## Noise ({len(noisy)} noisy of {sum(1 for r in records if r.get('status') == 'ok')} timed)", "",
              f"A timing is noisy when its IQR exceeds {NOISE_THRESHOLD:.0%} of its median; it was measured again "
              f"(at most {MAX_REMEASURES} times, while its time allowed) and kept its steadiest measurement. Noisy timings are "
              f"left out of every comparison above ({left_out_total} Keras/raw pairs)."]
    if noisy:
        lines += [""] + fmt_table(
            ["case", "median ms", "IQR / median", "measurements", "load before", "load after"],
            [[f"`{r['key']}`", f"{r['median_s'] * 1e3:.3g}", f"{(r['q3_s'] - r['q1_s']) / r['median_s']:.0%}",
              r.get("measurements", 1), _load(r.get("loadavg_before", r.get("loadavg_1m"))), _load(r.get("loadavg_after"))]
             for r in noisy])
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


def _load(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "?"


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
    atomic_write_text(directory / "summary.md",
                      render(machine, records, [str(f) for f in figures], sweep=load_sweep(directory)))
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
