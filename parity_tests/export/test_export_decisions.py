"""An artifact's decisions against the oracle's (issue 18 item 6, in ``bilstm export --verify`` and ``bilstm
verify --artifact``): counted on valid steps, over every input set, beside the tensor distances."""
import numpy as np
import pytest

pytestmark = pytest.mark.backend_independent


def _set(oracle, mask):
    return {"inputs": [np.zeros((oracle.shape[0], oracle.shape[1], 1), np.float32)], "keras": [oracle],
            "oracle": [oracle], "masks": [mask]}


def test_flipped_decisions_are_counted_on_valid_steps_over_every_set():
    from keras_impl.export.verify import compare, decision_lines
    rng = np.random.default_rng(0)
    oracle = rng.dirichlet(np.ones(3), size=(2, 4))             # (B=2, T=4, 3 classes)
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    flipped = oracle.copy()
    flipped[0, 1] = flipped[0, 1][::-1] if np.argmax(flipped[0, 1]) != 1 else np.roll(flipped[0, 1], 1)
    flipped[1, 3] = np.roll(flipped[1, 3], 1)                  # padding: does not count
    sets = [_set(oracle, mask), _set(oracle, np.zeros(0, bool))]
    result = compare(sets, [[flipped.astype(np.float32)], [oracle.astype(np.float32)]], backend="jax",
                     ran_precision="float32", rules=["argmax"])
    (d,) = result["decisions"]
    assert (d["agree"], d["total"]) == (5 + 8 - 1, 5 + 8)  # set 0: 5 valid steps, one flipped; set 1: all 8
    assert decision_lines(result["decisions"])[0].startswith(
        "  decisions of output 0 (argmax over 3 classes): 12/13 agree with the oracle")


def test_outputs_without_a_rule_count_no_decisions():
    from keras_impl.export.verify import compare
    oracle = np.random.default_rng(1).standard_normal((2, 3, 2))
    result = compare([_set(oracle, np.zeros(0, bool))], [[oracle]], backend="jax", ran_precision="float32",
                     rules=[None])
    assert result["decisions"] == []
