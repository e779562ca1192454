"""The input families (keras_impl/verify/families.py) and the interface match of an artifact
(keras_impl/export/interface.py): which families apply to which model, what each draws, and how tensors are
paired. Drawn inputs and pairing do not depend on the Keras backend (backend_independent)."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.backend_independent]


@pytest.fixture(scope="module")
def described():
    import keras
    from keras_impl.verify.describe import describe_model
    L = keras.layers
    tokens = keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(11, 3, mask_zero=True, name="emb"),
                               L.LSTM(4, name="lstm")])
    floats = keras.Sequential([keras.Input((7, 3)), L.Masking(0.0, name="masking"), L.GRU(4, name="gru")])
    return {"tokens": describe_model(tokens), "floats": describe_model(floats)}


def _families(sets):
    return [s["family"] for s in sets]


def test_a_token_model_with_a_free_time_axis_gets_the_vocabulary_ends_not_large_values(described):
    from keras_impl.export.verify import input_sets
    sets = input_sets(described["tokens"], dynamic_batch=True)
    assert _families(sets) == ["batch 1", "batch > 1", "shorter than traced", "longer than traced", "right padding",
                               "left padding", "a fully masked row", "a row of length 1",
                               "ids at the ends of the vocabulary"]
    assert sets.left_out == [("large magnitude (saturated gates)", "no input of float values")]
    by = {s["family"]: s["inputs"][0] for s in sets}
    assert by["shorter than traced"].shape[1] < by["batch 1"].shape[1] < by["longer than traced"].shape[1]
    assert set(np.unique(by["ids at the ends of the vocabulary"])) <= {0, 1, 2, 9, 10}
    left = by["left padding"]
    assert (left[:, 0] == 0).all() and (left[:, -1] != 0).all()  # masked first, valid last
    assert (by["a fully masked row"][1] == 0).all() and (by["a row of length 1"][1, 1:] == 0).all()


def test_a_static_time_axis_and_a_static_batch_leave_their_families_out(described):
    from keras_impl.export.verify import input_sets
    from keras_impl.verify.families import LARGE_SCALE, left_out_line
    sets = input_sets(described["floats"], dynamic_batch=False, static_batch=1)
    assert all(s["inputs"][0].shape[:2] == (1, 7) for s in sets)
    assert "batch > 1" not in _families(sets) and "shorter than traced" not in _families(sets)
    assert left_out_line(sets.left_out) == ("input families left out: batch > 1 (the artifact's batch is static); "
                                            "shorter than traced, longer than traced (the time axis is static "
                                            "at 7); ids at the ends of the vocabulary (no token input)")
    large = [s["inputs"][0] for s in sets if s["family"].startswith("large magnitude")]
    assert np.abs(np.concatenate(large)).max() > LARGE_SCALE  # beyond any gate's linear range


def test_an_artifact_known_to_fix_the_time_axis_is_drawn_at_that_length(described):
    """``static_timesteps`` (an artifact whose time axis is fixed though the model's is free)."""
    from keras_impl.export.verify import input_sets
    sets = input_sets(described["tokens"], dynamic_batch=True, static_timesteps=5)
    assert {s["inputs"][0].shape[1] for s in sets} == {5}
    assert ("longer than traced", "the time axis is static at 5") in sets.left_out


@pytest.mark.parametrize("model, artifact, mapping, expected", [
    ([("x", 3)], [("x", 3)], {}, ([0], "by name")),
    ([("a", 3), ("b", 2)], [("b", 2), ("a", 3)], {}, ([1, 0], "by name")),
    ([("head", 3)], [("Identity:0", 3)], {}, ([0], "by order")),
    ([("head", 3)], [("Identity:0", 3), ("extra", 2)], {"head": "Identity:0"}, ([0], "by --map")),
], ids=["by-name", "by-name-reordered", "by-order", "by-map"])
def test_tensors_are_matched_by_name_order_or_map(model, artifact, mapping, expected):
    from keras_impl.export.interface import match
    assert match("outputs", model, artifact, mapping) == expected


@pytest.mark.parametrize("model, artifact, mapping, says", [
    ([("head", 3)], [("a", 3), ("b", 3)], {}, "the artifact has 2 outputs (a, b), the model 1 (head)"),
    ([("head", 3)], [("a", 2)], {}, "do not match the model's (head) by name, rank or order"),
    ([("head", 3)], [("a", 3)], {"head": "b"}, "--map head=b: the artifact has no output of that name"),
], ids=["count", "rank", "unknown-name"])
def test_a_mismatch_is_one_line(model, artifact, mapping, says):
    from keras_impl.export.interface import InterfaceMismatch, match
    with pytest.raises(InterfaceMismatch) as caught:
        match("outputs", model, artifact, mapping)
    assert says in str(caught.value) and "\n" not in str(caught.value)
