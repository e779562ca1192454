"""``keras_impl.verify.verify``: the Python API under ``bilstm verify``, returning a report object (issue 16)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, backend):
    import keras
    L = keras.layers
    model = keras.Sequential([keras.Input((6, 3)), L.Masking(0.0, name="masking"),
                              L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="concat", name="bi"),
                              L.TimeDistributed(L.Dense(2), name="head")])
    path = tmp_path_factory.mktemp("api") / "model.keras"
    randomise_weights(model, np.random.default_rng(5)).save(path)
    return path


def test_verify_returns_a_printable_json_serialisable_report(model_file, backend):
    from keras_impl.verify import VerifyReport, verify
    report = verify(model_file, batch=3, seed=2)
    assert isinstance(report, VerifyReport)
    assert report.passed and report.verdict == "pass" and report.failed_layers == []
    assert [row["layer"] for row in report.layers] == ["masking", "bi", "head"]
    assert report.backend == backend and report.seed == 2 and report.inputs[0]["shape"] == [3, 6, 3]
    text = str(report)
    assert text == report.format() and text.startswith(f"bilstm verify: {model_file}")
    assert text.endswith("3/3 layers within bounds")
    data = json.loads(report.to_json())
    assert data["verdict"] == "pass" and data["layers"][1]["class"] == "Bidirectional"
    assert VerifyReport.from_dict(data) == report  # the JSON round trip loses nothing


def test_verify_reports_a_failing_layer(model_file, monkeypatch):
    from keras_impl.verify import verify
    from reference.layers import rnn
    monkeypatch.setitem(rnn.MERGE, "concat", lambda f, b: np.concatenate([b, f], axis=-1))
    report = verify(model_file, seed=1)
    assert not report.passed and report.verdict == "FAIL" and report.failed_layers[0] == "bi"
    assert report.as_dict()["verdict"] == "FAIL" and "FAIL: bi" in str(report)


def test_verify_takes_an_array_and_refuses_bad_values(model_file):
    from keras_impl.options import UsageError
    from keras_impl.verify import VerifyRefusal, verify
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    report = verify(model_file, inputs=x)
    assert report.passed and report.seed is None and report.inputs[0]["drawn"] == "the user's --inputs"
    with pytest.raises(UsageError, match="batch must be a whole number between 1 and 4096"):
        verify(model_file, batch=0)
    with pytest.raises(UsageError, match="dtype must be one of float32, float64"):
        verify(model_file, dtype="float16")
    with pytest.raises(UsageError, match="leave out --batch"):
        verify(model_file, inputs=x, batch=2)
    assert issubclass(VerifyRefusal, UsageError)  # a model that cannot be verified: exit 2, one line, too
