"""The oracle's layer list (reference/layers.py), NumPy only: against the oracle's own model and by hand."""
from __future__ import annotations

import numpy as np
import pytest

from reference import ModelSpec, model_forward, random_weights
from reference.layers import Layer, LayerGraph, graph_forward, spec_graph

pytestmark = pytest.mark.oracle  # NumPy only: runs in the framework-free environment too


@pytest.mark.parametrize("spec", [ModelSpec(), ModelSpec(timesteps=6, features=3, units=(4, 5), merge_mode="sum", mask_value=0.0),
                                  ModelSpec(timesteps=5, features=2, units=3, direction="backward", mask_value=0.0),
                                  ModelSpec(timesteps=5, features=2, units=3, direction="forward", merge_mode="mul")],
                         ids=["tutorial", "stacked_sum_masked", "reversed_masked", "forward"])
def test_spec_graph_equals_model_forward(spec, rng):
    """The layer list of a ModelSpec computes what reference.model_forward computes (the two share no loop)."""
    weights = random_weights(spec, rng)
    x = rng.standard_normal((4, spec.timesteps, spec.features))
    if spec.mask_value is not None:
        x[1, 3:] = spec.mask_value
        x[2, 1:] = spec.mask_value
    expected = model_forward(spec, weights, x)
    got, _ = graph_forward(spec_graph(spec, weights), [x])["head"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


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
    with pytest.raises(ValueError, match="unknown kind 'GRU'"):
        Layer("g", "GRU")
