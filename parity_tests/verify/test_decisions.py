"""Whether a difference changes an answer (issue 18, item 6): a classifier head's decisions, Keras's against
the oracle's, counted on valid steps only, reported beside the tensor distances."""
from __future__ import annotations

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights


@pytest.mark.backend_independent
def test_argmax_agreement_counts_valid_steps_only_and_gives_the_closest_call():
    from keras_impl.verify.decisions import agreement
    expected = np.array([[[0.7, 0.2, 0.1], [0.1, 0.45, 0.45], [0.3, 0.3, 0.4]]])
    actual = expected.copy()
    actual[0, 1] = [0.1, 0.44, 0.46]   # step 1's decision flips
    actual[0, 2] = [0.9, 0.05, 0.05]   # step 2 differs too, but it is padding
    mask = np.array([[True, True, False]])
    result = agreement("argmax", actual, expected, mask)
    assert (result["agree"], result["total"]) == (1, 2)
    assert result["closest_call"] == pytest.approx(0.0)  # step 1 is a tie in the oracle: the closest call
    assert agreement("argmax", actual, expected)["total"] == 3


@pytest.mark.backend_independent
def test_sigmoid_decisions_threshold_every_unit():
    from keras_impl.verify.decisions import agreement
    expected = np.array([[0.2, 0.6], [0.51, 0.9]])
    actual = np.array([[0.2, 0.6], [0.49, 0.9]])
    result = agreement("threshold", actual, expected)
    assert (result["agree"], result["total"]) == (3, 4) and result["closest_call"] == pytest.approx(0.01)


@pytest.fixture(scope="module")
def tagger_file(tmp_path_factory, backend):
    import keras
    L = keras.layers
    model = keras.Sequential([keras.Input((7,), dtype="int32"), L.Embedding(23, 5, mask_zero=True, name="embed"),
                              L.Bidirectional(L.LSTM(4, return_sequences=True), merge_mode="sum", name="bi"),
                              L.TimeDistributed(L.Dense(6, activation="softmax"), name="tags")])
    path = tmp_path_factory.mktemp("decisions") / "tagger.keras"
    randomise_weights(model, np.random.default_rng(8)).save(path)
    return path


def test_a_tagger_reports_its_decisions_on_valid_steps(tagger_file):
    from keras_impl.verify import VerifyReport, verify
    report = verify(tagger_file, batch=5, seed=3)
    assert report.passed
    (entry,) = report.decisions
    valid = int(report.layers[0]["mask"].split("-> ")[1].split("/")[0])  # the Embedding's mask: valid steps
    assert entry["output"] == "tags" and entry["rule"] == "argmax over 6 classes"
    assert entry["agree"] == entry["total"] == valid < 5 * 7
    assert f"decisions of tags (argmax over 6 classes): {valid}/{valid} agree with the oracle" in str(report)
    assert VerifyReport.from_dict(report.as_dict()) == report


def test_a_changed_head_changes_decisions_and_the_report_says_how_many(tagger_file, monkeypatch):
    """The oracle's head bias moved by +3 on one class: most decisions flip to that class, and the report
    counts the ones that no longer agree."""
    from keras_impl.verify import describe, verify
    original = describe.describe_layer

    def biased(keras_layer, name, inbound, *call):
        described, shown = original(keras_layer, name, inbound, *call)
        if name == "tags":  # the TimeDistributed's inner Dense
            from dataclasses import replace
            inner = described.options["inner"]
            kernel, bias = inner.weights
            bias = bias.copy()
            bias[2] += 3.0
            described = replace(described, options={**described.options, "inner": replace(inner, weights=(kernel, bias))})
        return described, shown
    monkeypatch.setattr(describe, "describe_layer", biased)
    report = verify(tagger_file, batch=5, seed=3)
    (entry,) = report.decisions
    assert not report.passed and 0 <= entry["agree"] < entry["total"]
