"""The oracle's layer list (reference/layers/), NumPy only: against the oracle's own model and by hand."""
from __future__ import annotations

import numpy as np
import pytest

import reference
from reference import ModelSpec, model_forward, random_weights
from reference.layers import Layer, LayerGraph, graph_forward, spec_graph



@pytest.mark.parametrize("spec", [
    ModelSpec(), ModelSpec(timesteps=6, features=3, units=(4, 5), merge_mode="sum", mask_value=0.0),
    ModelSpec(timesteps=5, features=2, units=3, direction="backward", mask_value=0.0),
    ModelSpec(timesteps=5, features=2, units=3, direction="forward", merge_mode="mul"),
    ModelSpec(timesteps=6, features=3, units=(4, 5), merge_mode="ave", mask_value=0.0, cell="gru"),
    ModelSpec(timesteps=5, features=2, units=3, direction="backward", mask_value=0.0, cell="gru", reset_after=False,
              activation="relu", recurrent_activation="hard_sigmoid"),
    ModelSpec(timesteps=6, features=3, units=(4, 2), merge_mode="concat", mask_value=0.0, cell="simple_rnn",
              activation="relu", use_bias=False),
    ModelSpec(timesteps=5, features=2, units=3, merge_mode="mul", cell="lstm", activation="linear",
              recurrent_activation="hard_sigmoid", use_bias=False),
], ids=["tutorial", "stacked_sum_masked", "reversed_masked", "forward", "gru_stacked_ave_masked",
        "gru_reset_before_reversed_masked", "simple_rnn_stacked_concat_no_bias", "lstm_other_activations"])
def test_spec_graph_equals_model_forward(spec, rng):
    """The layer list of a ModelSpec (what reference.model_forward runs) computes the model composed by
    hand from the public per-cell layer calls: the same weights in the same order, each direction's cell
    and options, a Bidirectional as two single-direction calls flipped and merged."""
    weights = random_weights(spec, rng)
    x = rng.standard_normal((4, spec.timesteps, spec.features))
    if spec.mask_value is not None:
        x[1, 3:] = spec.mask_value
        x[2, 1:] = spec.mask_value
    expected = composed_by_hand(spec, weights, x)
    got, _ = graph_forward(spec_graph(spec, weights), [x])["head"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model_forward(spec, weights, x), expected, rtol=0, atol=1e-12)


def composed_by_hand(spec, weights, x):
    """``spec``'s model from ``lstm_forward`` / ``gru_forward`` / ``simple_rnn_forward`` and NumPy alone."""
    cell = spec.cell_config
    options = {"activation": cell.activation}
    if cell.kind != "simple_rnn":
        options["recurrent_activation"] = cell.recurrent_activation
    if cell.kind == "gru":
        options["reset_after"] = cell.reset_after
    layer = {"lstm": reference.lstm_forward, "gru": reference.gru_forward, "simple_rnn": reference.simple_rnn_forward}
    call = layer[cell.kind]
    n = cell.weight_count
    mask = None if spec.mask_value is None else np.any(x != spec.mask_value, axis=-1)
    h = x if mask is None else x * mask[..., None]
    rest = list(weights)
    for _ in spec.layer_units:
        if spec.bidirectional:
            fwd, bwd = rest[:n] + [None] * (3 - n), rest[n:2 * n] + [None] * (3 - n)
            rest = rest[2 * n:]
            y_f = call(h, *fwd, mask=mask, return_sequences=True, zero_output_for_mask=True, **options)
            y_b = call(h, *bwd, mask=mask, return_sequences=True, zero_output_for_mask=True, go_backwards=True,
                       **options)[:, ::-1]
            h = {"concat": np.concatenate([y_f, y_b], axis=-1), "sum": y_f + y_b, "ave": (y_f + y_b) / 2,
                 "mul": y_f * y_b}[spec.merge_mode]
        else:
            own, rest = rest[:n] + [None] * (3 - n), rest[n:]
            h = call(h, *own, mask=mask, return_sequences=True, go_backwards=spec.direction == "backward", **options)
    kernel, bias = rest
    return 1.0 / (1.0 + np.exp(-(h @ kernel + bias)))


def test_model_forward_runs_the_layer_list(rng, monkeypatch):
    """One forward path: model_forward (and so training, through forward_with_cache) runs reference.layers."""
    from reference.layers import graph as layers
    spec = ModelSpec(timesteps=4, features=2, units=3)
    weights, x = random_weights(spec, rng), rng.standard_normal((2, 4, 2))
    before = model_forward(spec, weights, x)
    original = layers.layer_forward

    def halved_head(layer, inputs, masks, tape=None):
        y, mask = original(layer, inputs, masks, tape)
        return (y / 2 if layer.kind == "TimeDistributed" else y), mask
    monkeypatch.setattr(layers, "layer_forward", halved_head)
    np.testing.assert_allclose(model_forward(spec, weights, x), before / 2, rtol=1e-15)
    loss, _ = reference.loss_and_grads(spec, weights, x, np.full((2, 4, 1), 0.5))
    monkeypatch.undo()
    assert loss != reference.loss_and_grads(spec, weights, x, np.full((2, 4, 1), 0.5))[0]


def test_mask_rules_by_hand(rng):
    """Embedding mask_zero makes the mask; pooling averages valid steps only; Concatenate ORs two masks."""
    E = rng.standard_normal((6, 2))
    ids = np.array([[1, 2, 0, 0], [3, 4, 5, 1]])
    graph = LayerGraph(("ids",), (
        Layer("ids", "InputLayer"),
        Layer("emb", "Embedding", ("ids",), {"mask_zero": True}, (E,)),
        Layer("other", "Embedding", ("ids",), {"mask_zero": False}, (E[::-1].copy(),)),
        Layer("cat", "Concatenate", ("emb", "other")),
        Layer("avg", "GlobalAveragePooling1D", ("emb",)),
        Layer("max", "GlobalMaxPooling1D", ("emb",)),
    ), ("avg",))
    values = graph_forward(graph, [ids])
    assert values["emb"][1].tolist() == [[True, True, False, False], [True, True, True, True]]
    assert values["other"][1] is None
    assert values["cat"][1].all()  # an unmasked input counts as all valid
    np.testing.assert_allclose(values["avg"][0][0], (E[1] + E[2]) / 2)
    np.testing.assert_allclose(values["max"][0][0], E[[1, 2, 0, 0]].max(axis=0))  # padding steps included
    assert values["avg"][1] is None


def test_layers_out_of_order_are_refused():
    with pytest.raises(ValueError, match="reads \\['later'\\]"):
        LayerGraph(("x",), (Layer("x", "InputLayer"), Layer("d", "Dropout", ("later",))), ("d",))
    with pytest.raises(ValueError, match="unknown kind 'Lambda'"):
        Layer("c", "Lambda")


def test_a_bidirectional_of_two_different_cells_runs_each_copy_as_its_own_cell(rng):
    """Keras lets a Bidirectional's backward_layer be another class: each copy is its own cell, with its own
    options, and the backward copy's sequence is flipped back to time order before the merge."""
    from reference import gru_forward, simple_rnn_forward
    x = rng.standard_normal((3, 5, 2))
    gru = (rng.standard_normal((2, 9)), rng.standard_normal((3, 9)), rng.standard_normal(9))
    rnn = (rng.standard_normal((2, 3)), rng.standard_normal((3, 3)), None)
    layer = Layer("bi", "Bidirectional", ("x",), {
        "merge_mode": "mul", "return_sequences": True,
        "forward": {"cell": "gru", "go_backwards": False, "reset_after": False, "recurrent_activation": "hard_sigmoid"},
        "backward": {"cell": "simple_rnn", "go_backwards": True, "activation": "linear"}}, gru + rnn)
    got, got_mask = graph_forward(LayerGraph(("x",), (Layer("x", "InputLayer"), layer), ("bi",)), [x])["bi"]
    y_f = gru_forward(x, *gru, reset_after=False, recurrent_activation="hard_sigmoid", return_sequences=True)
    y_b = simple_rnn_forward(x, *rnn, activation="linear", go_backwards=True, return_sequences=True)
    np.testing.assert_allclose(got, y_f * y_b[:, ::-1], rtol=0, atol=1e-12)
    assert got_mask is None
