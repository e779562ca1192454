"""The verify tests' two shared pieces: a model built and saved once per dtype (a module fixture's value), and
``bilstm verify`` run on a file with its JSON report read back as rows by layer output."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keras_impl.parity.harness import floatx
from parity_tests.conftest import randomise_weights, run_bilstm


def saved_once(folder: Path, build, seed: int, stem: str):
    """``path(dtype)`` (or ``path(variant, dtype)`` for ``build(variant)``): the model built under that floatx,
    its weights drawn by the project's recipe from ``seed``, saved as ``folder/<stem>[_variant]_<dtype>.keras``
    the first time a test asks, and reused after."""
    paths = {}

    def path(*key):
        variant, dtype = key if len(key) == 2 else (None, key[0])
        if key not in paths:
            with floatx(dtype):
                model = build() if variant is None else build(variant)
                name = f"{stem}_{dtype}" if variant is None else f"{stem}_{variant}_{dtype}"
                paths[key] = folder / f"{name}.keras"
                randomise_weights(model, np.random.default_rng(seed)).save(paths[key])
        return paths[key]
    return path


def verify_rows(capsys, tmp_path: Path, model_path, dtype: str, *options) -> tuple[int, dict, str, str]:
    """``bilstm verify MODEL --dtype DTYPE OPTIONS --json``: (exit status, rows by layer output, stdout, stderr);
    no rows where the command wrote no report (a refusal)."""
    report = tmp_path / "report.json"
    rc, out, err = run_bilstm(["verify", model_path, "--dtype", dtype, *options, "--json", report], capsys)
    rows = {r["layer"]: r for r in json.loads(report.read_text())["layers"]} if report.exists() else {}
    return rc, rows, out, err
