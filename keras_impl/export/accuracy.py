"""Does the precision change answers? Held-out accuracy of the exported model on the tutorial's problem.

    bilstm export --precision int8-dynamic --format onnx --verify --accuracy-seeds 3

For a model named by options that reads the cumulative-sum problem (reference/problem.py: T=10 steps of one
feature, a sigmoid per step), each seed trains the model as the experiments do (keras_impl/experiments/
runner.py: the same data, initial weights, optimizer and number of updates, ``UPDATES``), exports the trained
model along the route the export took, in the requested precision, and runs it in its runtime on the seed's
held-out sequences. The float32 Keras model's held-out step accuracy and the artifact's, per seed, give the
paired difference; its mean and 95% interval over the seeds come from the experiments' statistics
(keras_impl/experiments/stats.mean_ci): "int8-dynamic costs 0.4% accuracy [0.2, 0.6]".

Two halves: ``train_and_export`` runs in the export worker (Keras), ``compare_heldout`` in the parent
(the artifacts run in their runtime, without Keras).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

UPDATES = 250      # the experiments' default (bilstm compare --updates)
HELDOUT = 1000     # the experiments' held-out sequences a seed


def applies(spec) -> bool:
    """Whether a ModelSpec reads the tutorial's problem: fixed length 10, one feature, no masking."""
    from keras_impl.experiments.runner import FIXED_TIMESTEPS
    return spec.timesteps == FIXED_TIMESTEPS and spec.features == 1 and spec.mask_value is None


def train_and_export(job: dict, folder: Path) -> list[dict]:
    """In the worker: per seed, train, save the held-out set with Keras's accuracy, export the trained model.

    ``job``: {"spec", "seeds", "format", "method", "dynamic_batch", "precision"}; returns per seed
    {"seed", "keras_accuracy", "artifact", "heldout", "dynamic_batch"}.
    """
    from keras_impl.experiments.runner import Experiment, _train_one, seed_data, template_model
    from reference import ModelSpec

    import keras_impl.export.precision as reduced
    from .exporters import export_model
    from .formats import ARTIFACT_NAME
    spec = dict(job["spec"])
    if isinstance(spec.get("units"), list):
        spec["units"] = tuple(spec["units"])
    spec = ModelSpec(**spec)
    experiment = Experiment("export-accuracy", (("model", spec),), seeds=max(job["seeds"]), updates=UPDATES,
                            heldout=HELDOUT)
    found = []
    for seed in job["seeds"]:
        data = seed_data(seed, UPDATES, HELDOUT, False)
        model, fresh = template_model(spec, data)
        _, _, _, evaluation, _ = _train_one(model, fresh, spec, experiment, seed, data)
        where = folder / f"seed{seed}"
        where.mkdir(parents=True, exist_ok=True)
        artifact = where / ARTIFACT_NAME[job["format"]]
        calibration = None
        if job["precision"] == "int8-static":  # calibrated on training sequences, never the held-out ones
            calibration = [[data.xs[k:k + 1].astype(np.float32)] for k in range(reduced.CALIBRATION_BATCH)]
        options = reduced.litert_options(job["precision"], calibration) if job["format"] == "litert" else None
        info = export_model(model, job["format"], artifact, dynamic_batch=job["dynamic_batch"],
                            method=job["method"], converter_options=options)
        if job["precision"] in reduced.REDUCED:
            reduced.reduce_artifact(job["format"], str(artifact), job["precision"], calibration)
        np.savez(where / "heldout.npz", x=data.x_heldout.astype(np.float32), y=data.y_heldout)
        found.append({"seed": seed, "keras_accuracy": evaluation["heldout_step_accuracy"], "artifact": str(artifact),
                      "heldout": str(where / "heldout.npz"), "dynamic_batch": info["dynamic_batch"]})
    return found


def compare_heldout(fmt: str, runs: list[dict], runtime_precision: str, timeout_s: float) -> dict:
    """In the parent: each seed's artifact on its held-out set; accuracies and the paired difference's interval."""
    from keras_impl.experiments.metrics import heldout_accuracy
    from keras_impl.experiments.stats import mean_ci

    from .runtimes import run_sets_in_subprocess
    rows = []
    for run in runs:
        with np.load(run["heldout"]) as stored:
            x, y = stored["x"], stored["y"]
        sets = [[x]] if run["dynamic_batch"] else [[x[k:k + 1]] for k in range(len(x))]
        outputs, _ = run_sets_in_subprocess(fmt, run["artifact"], sets, precision=runtime_precision,
                                            timeout_s=timeout_s)
        probabilities = np.concatenate([o[0] for o in outputs])
        accuracy, _ = heldout_accuracy(probabilities, y)
        rows.append({"seed": run["seed"], "float32": run["keras_accuracy"], "artifact": accuracy,
                     "difference": accuracy - run["keras_accuracy"]})
    summary = {}
    for key in ("float32", "artifact", "difference"):
        mean, low, high = mean_ci([r[key] for r in rows], bounds=(-1.0, 1.0) if key == "difference" else (0.0, 1.0))
        summary[key] = {"mean": mean, "low": low, "high": high}
    return {"seeds": rows, "summary": summary, "updates": UPDATES, "heldout": HELDOUT}


def accuracy_lines(result: dict, precision: str) -> list[str]:
    s = result["summary"]

    def pct(d):
        interval = "" if np.isnan(d["low"]) else f" [{100 * d['low']:.1f}, {100 * d['high']:.1f}]"
        return f"{100 * d['mean']:.1f}%{interval}"
    d = s["difference"]
    return [f"  held-out step accuracy over {len(result['seeds'])} seeds ({result['updates']} updates, "
            f"{result['heldout']} sequences each, 95% interval): float32 Keras {pct(s['float32'])}, "
            f"{precision} artifact {pct(s['artifact'])}",
            f"  {precision} changes held-out accuracy by {100 * d['mean']:+.2f} points"
            + ("" if np.isnan(d["low"]) else f" [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]")
            + " (artifact minus float32, paired by seed)"]
