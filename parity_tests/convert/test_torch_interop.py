"""Layout conversion (``keras_impl.convert``) of the LSTM: Keras <-> ``torch.nn.LSTM``, round trips, refusals.

The converter's torch state dict, loaded into ``torch.nn.LSTM`` in float64, must
reproduce the oracle (outputs and final states, non-zero initial states); a Keras
model's ``get_weights()`` converted to torch must reproduce the Keras model in
float32. The ONNX layout of every cell, the LSTM's included, is run in ONNX Runtime
by ``test_convert_cells.py``, which also covers GRU and SimpleRNN in torch. Tests
that need torch skip, with the reason, where it is not installed.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from keras_impl import convert
from keras_impl.parity.tolerances import FLOAT32_ABS, FLOAT64_SELF_ABS

B, T, D, U = 3, 6, 4, 5


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[torch]' to run the interop tests")


def close(actual, expected, what, atol=FLOAT64_SELF_ABS):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=what)


def recurrent_weights(rng, layers, bidirectional, features=D, units=U):
    """Keras-order recurrent weights of a ``layers``-deep stack, as torch stacks them (concat between layers)."""
    spec = reference.ModelSpec(timesteps=T, features=features, units=(units,) * layers,
                               direction="bidirectional" if bidirectional else "forward")
    recurrent, _ = convert.spec_recurrent_weights(spec, reference.random_weights(spec, rng))
    return recurrent


def oracle_stack(x, recurrent, states, bidirectional, go_backwards=False):
    """The oracle layer after layer: (outputs (B, T, dirs*U), final states in Keras order, layer after layer)."""
    per_layer, h, finals = (6 if bidirectional else 3), x, []
    for k in range(len(recurrent) // per_layer):
        w = recurrent[k * per_layer:(k + 1) * per_layer]
        if bidirectional:
            h, *layer_states = reference.bidirectional_forward(h, w[:3], w[3:], initial_state=states[4 * k:4 * k + 4],
                                                               return_sequences=True, return_state=True)
        else:
            h, *layer_states = reference.lstm_forward(h, *w, initial_state=states[2 * k:2 * k + 2],
                                                      go_backwards=go_backwards, return_sequences=True, return_state=True)
        finals += layer_states
    return h, finals


def run_torch(torch, state_dict, x, h0, c0, bidirectional, dtype):
    layers = sum(key.startswith("weight_ih") and not key.endswith("_reverse") for key in state_dict)
    units = state_dict["weight_hh_l0"].shape[1]
    lstm = torch.nn.LSTM(x.shape[-1], units, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    lstm = lstm.to(dtype)
    lstm.load_state_dict({k: torch.as_tensor(v, dtype=dtype) for k, v in state_dict.items()})
    with torch.no_grad():
        y, (h_n, c_n) = lstm(torch.as_tensor(x, dtype=dtype), (torch.as_tensor(h0, dtype=dtype),
                                                               torch.as_tensor(c0, dtype=dtype)))
    return y.numpy(), h_n.numpy(), c_n.numpy()


# --------------------------------------------------------------------- torch.nn.LSTM vs the oracle

@pytest.mark.parametrize("layers", [1, 2], ids=["1layer", "2layers"])
@pytest.mark.parametrize("bidirectional", [True, False], ids=["bidirectional", "unidirectional"])
@pytest.mark.backend_independent
def test_torch_lstm_with_converted_weights_matches_oracle(torch, rng, bidirectional, layers):
    recurrent = recurrent_weights(rng, layers, bidirectional)
    states = [rng.uniform(-0.8, 0.8, size=(B, U)) for _ in range(layers * (4 if bidirectional else 2))]
    x = rng.normal(size=(B, T, D))
    h0, c0 = convert.keras_states_to_torch(states, bidirectional=bidirectional)
    y, h_n, c_n = run_torch(torch, convert.keras_to_torch(recurrent, bidirectional=bidirectional), x, h0, c0,
                            bidirectional, torch.float64)
    y_ref, finals_ref = oracle_stack(x, recurrent, states, bidirectional)
    close(y, y_ref, "outputs")
    names = ["h_f", "c_f", "h_b", "c_b"] if bidirectional else ["h", "c"]
    for k, (got, want) in enumerate(zip(convert.torch_states_to_keras(h_n, c_n), finals_ref)):
        close(got, want, f"layer {k // len(names)} {names[k % len(names)]}")


@pytest.mark.backend_independent
def test_go_backwards_lstm_is_torch_on_flipped_input(torch, rng):
    """A Keras go_backwards LSTM has no torch flag: feed torch the flipped input; outputs stay in processing order."""
    recurrent = recurrent_weights(rng, 1, False)
    states = [rng.uniform(-0.8, 0.8, size=(B, U)) for _ in range(2)]
    x = rng.normal(size=(B, T, D))
    h0, c0 = convert.keras_states_to_torch(states, bidirectional=False)
    y, h_n, c_n = run_torch(torch, convert.keras_to_torch(recurrent, bidirectional=False), x[:, ::-1].copy(), h0, c0,
                            False, torch.float64)
    y_ref, (h_ref, c_ref) = oracle_stack(x, recurrent, states, False, go_backwards=True)
    close(y, y_ref, "outputs")
    close(h_n[0], h_ref, "h")
    close(c_n[0], c_ref, "c")


@pytest.mark.backend_independent
def test_torch_initialised_lstm_converts_to_keras(torch, rng):
    """torch's own init has two non-zero biases: Keras's bias is their sum."""
    torch.manual_seed(7)
    lstm = torch.nn.LSTM(D, U, num_layers=2, bidirectional=True, batch_first=True).double()
    assert lstm.bias_hh_l0.abs().min() > 0
    recurrent = convert.torch_to_keras(lstm.state_dict())
    x = rng.normal(size=(B, T, D))
    states = [rng.uniform(-0.8, 0.8, size=(B, U)) for _ in range(8)]
    h0, c0 = convert.keras_states_to_torch(states)
    with torch.no_grad():
        y, _ = lstm(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    close(y.numpy(), oracle_stack(x, recurrent, states, True)[0], "outputs")


@pytest.mark.backend_independent
def test_as_torch_gives_tensors_that_load(torch, rng):
    recurrent = recurrent_weights(rng, 1, True)
    state_dict = convert.keras_to_torch(recurrent, as_torch=True)
    assert all(isinstance(v, torch.Tensor) for v in state_dict.values())
    lstm = torch.nn.LSTM(D, U, bidirectional=True).double()
    lstm.load_state_dict(state_dict)  # strict: same keys, same shapes
    np.testing.assert_array_equal(lstm.weight_hh_l0_reverse.detach().numpy(), recurrent[4].T)


# ----------------------------------------------------------------------------- Keras model vs torch

MODEL_SPECS = {
    "bi_concat_2layers": reference.ModelSpec(timesteps=T, features=D, units=(U, U)),
    "forward_2layers": reference.ModelSpec(timesteps=T, features=D, units=(U, U), direction="forward"),
    "bi_concat_1layer": reference.ModelSpec(timesteps=T, features=D, units=U),
}


@pytest.mark.parametrize("name", list(MODEL_SPECS))
def test_keras_model_weights_in_torch_match_keras(torch, backend, rng, name):
    from keras_impl import build_model
    spec = MODEL_SPECS[name]
    weights = [w.astype(np.float32) for w in reference.random_weights(spec, rng)]
    model = build_model(spec)
    model.set_weights(weights)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    keras_probs = np.asarray(model.predict(x, verbose=0))
    recurrent, (dense_kernel, dense_bias) = convert.spec_recurrent_weights(spec, model.get_weights())
    zeros = np.zeros((spec.num_layers * (2 if spec.bidirectional else 1), B, U))
    y, _, _ = run_torch(torch, convert.keras_to_torch(recurrent, bidirectional=spec.bidirectional), x, zeros, zeros,
                        spec.bidirectional, torch.float32)
    torch_probs = 1.0 / (1.0 + np.exp(-(y @ dense_kernel + dense_bias)))  # the TimeDistributed(Dense(1, sigmoid)) head
    close(torch_probs, keras_probs, "torch vs Keras", atol=FLOAT32_ABS)
    close(torch_probs, reference.model_forward(spec, weights, x), "torch vs oracle", atol=FLOAT32_ABS)


# ---------------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("layers", [1, 2], ids=["1layer", "2layers"])
@pytest.mark.parametrize("bidirectional", [True, False], ids=["bidirectional", "unidirectional"])
@pytest.mark.backend_independent
def test_keras_torch_keras_is_identity(rng, bidirectional, layers):
    recurrent = [w.astype(np.float32) for w in recurrent_weights(rng, layers, bidirectional)]
    state_dict = convert.keras_to_torch(recurrent, bidirectional=bidirectional)
    assert np.all(state_dict["bias_hh_l0"] == 0)  # the documented split: the whole bias in bias_ih
    back = convert.torch_to_keras(state_dict)
    assert len(back) == len(recurrent)
    for k, (a, b) in enumerate(zip(back, recurrent)):
        assert a.dtype == b.dtype, f"weights[{k}] dtype"
        np.testing.assert_array_equal(a, b, err_msg=f"weights[{k}]")


@pytest.mark.parametrize("bidirectional", [True, False], ids=["bidirectional", "unidirectional"])
@pytest.mark.backend_independent
def test_keras_onnx_keras_is_identity(rng, bidirectional):
    recurrent = recurrent_weights(rng, 2, bidirectional)
    layers = convert.keras_to_onnx(recurrent, bidirectional=bidirectional)
    back = [w for W, R, B_ in layers for w in convert.onnx_to_keras(W, R, B_)]
    for k, (a, b) in enumerate(zip(back, recurrent, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"weights[{k}]")


@pytest.mark.backend_independent
def test_states_round_trip(rng):
    states = [rng.normal(size=(B, U)) for _ in range(8)]
    h0, c0 = convert.keras_states_to_torch(states)
    assert h0.shape == c0.shape == (4, B, U)
    np.testing.assert_array_equal(h0[1], states[2])  # layer 0 backward h is torch index 1
    np.testing.assert_array_equal(c0[2], states[5])  # layer 1 forward c is torch index 2
    for a, b in zip(convert.torch_states_to_keras(h0, c0), states, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------ errors

def good(rng):
    return recurrent_weights(rng, 1, True)


CONVERT_ERRORS = {
    "count_not_multiple": (lambda r: convert.keras_to_torch(good(r)[:5]), ValueError,
                           r"weights must hold a multiple of 6 arrays .* got 5; drop the Dense head"),
    "with_dense_head": (lambda r: convert.keras_to_torch(good(r) + [np.zeros((2 * U, 1)), np.zeros(1)]), ValueError,
                        r"multiple of 6 arrays .* got 8"),
    "not_a_list": (lambda r: convert.keras_to_torch(np.zeros(6)), TypeError,
                   r"weights must be a list of arrays .* got ndarray"),
    "bias_column": (lambda r: convert.keras_to_torch(good(r)[:2] + [good(r)[2][:, None]] + good(r)[3:]), ValueError,
                    r"weights\[0:3\] \(layer 0\): bias must have shape \(20,\) .*got \(20, 1\)"),
    "recurrent_transposed": (lambda r: convert.keras_to_torch(good(r)[:4] + [good(r)[4].T] + good(r)[5:]), ValueError,
                             r"weights\[3:6\] \(layer 0, backward\): recurrent_kernel must have shape \(units, 4\*units\) with units >= 1, got \(20, 5\)"),
    "zero_units": (lambda r: convert.keras_to_torch([np.zeros((D, 0)), np.zeros((0, 0)), np.zeros(0)],
                                                    bidirectional=False), ValueError, r"with units >= 1, got \(0, 0\)"),
    "bidirectional_not_bool": (lambda r: convert.keras_to_torch(good(r), bidirectional="yes"), TypeError,
                               r"bidirectional must be True or False, got 'yes'"),
    "directions_disagree": (lambda r: convert.keras_to_torch(good(r)[:3] + recurrent_weights(r, 1, False, units=U + 1)),
                            ValueError, r"layer 0: the two directions must have the same input size and units"),
    "string_weights": (lambda r: convert.keras_to_torch(["a", "b", "c"], bidirectional=False), TypeError,
                       r"weights\[0:3\] \(layer 0\): kernel must be a numeric array, got str"),
    "torch_stack_not_concat": (lambda r: convert.keras_to_torch(convert.spec_recurrent_weights(
        reference.ModelSpec(timesteps=T, features=D, units=(U, U), merge_mode="sum"),
        reference.random_weights(reference.ModelSpec(timesteps=T, features=D, units=(U, U), merge_mode="sum"), r))[0]),
        ValueError, r"layer 1: torch.nn.LSTM feeds a stacked layer the concatenated output .*\(10 features\).*\(5, 20\)"),
    "torch_stack_units_differ": (lambda r: convert.keras_to_torch(convert.spec_recurrent_weights(
        reference.ModelSpec(timesteps=T, features=D, units=(U, 3)),
        reference.random_weights(reference.ModelSpec(timesteps=T, features=D, units=(U, 3)), r))[0]),
        ValueError, r"torch.nn.LSTM has one hidden_size for every layer, but layer 0 has units 5 and layer 1 has 3"),
    # A Bidirectional layer's 6 arrays read as two stacked plain layers: the second "layer" takes D inputs where a
    # stacked LSTM takes the U outputs of the one below (once: two inconsistent ONNX layers, silently).
    "onnx_bidirectional_read_as_plain": (lambda r: convert.keras_to_onnx(good(r), bidirectional=False), ValueError,
                                         r"layer 1: a stacked layer's kernel must take the 5 outputs of layer 0 "
                                         r"\(units 5\), got kernel \(4, 20\).*pass bidirectional=True"),
    "torch_bidirectional_read_as_plain": (lambda r: convert.keras_to_torch(good(r), bidirectional=False), ValueError,
                                          r"layer 1: a stacked layer's kernel .*pass bidirectional=True"),
    # ... and the converse: two stacked plain layers read as one Bidirectional layer.
    "onnx_plain_read_as_bidirectional": (lambda r: convert.keras_to_onnx(recurrent_weights(r, 2, False), bidirectional=True),
                                         ValueError, r"layer 0: the two directions must have the same input size.*"
                                                     r"pass bidirectional=False"),
    "onnx_stack_not_chained": (lambda r: convert.keras_to_onnx(recurrent_weights(r, 1, False) + recurrent_weights(r, 1, False),
                                                               bidirectional=False), ValueError,
                               r"layer 1: a stacked layer's kernel must take the 5 outputs of layer 0"),
    "state_dict_missing_key": (lambda r: convert.torch_to_keras(
        {k: v for k, v in convert.keras_to_torch(good(r)).items() if k != "bias_hh_l0_reverse"}), ValueError,
        r"missing \['bias_hh_l0_reverse'\]"),
    "state_dict_empty": (lambda r: convert.torch_to_keras({}), ValueError, r"expected keys weight_ih_l0"),
    "state_dict_projection": (lambda r: convert.torch_to_keras(
        convert.keras_to_torch(good(r)) | {"weight_hr_l0": np.zeros((3, U))}), ValueError, r"proj_size > 0"),
    "state_dict_not_a_mapping": (lambda r: convert.torch_to_keras([1, 2]), TypeError,
                                 r"state_dict must be a mapping .* got list"),
    "onnx_R_shape": (lambda r: convert.onnx_to_keras(np.zeros((2, 20, D)), np.zeros((2, 20, 4))), ValueError,
                     r"R must have shape \[num_directions \(1 or 2\), 4\*hidden_size, hidden_size\], got \(2, 20, 4\)"),
    "onnx_B_shape": (lambda r: convert.onnx_to_keras(np.zeros((1, 20, D)), np.zeros((1, 20, 5)), np.zeros((1, 20))),
                     ValueError, r"B must have shape \[1, 40\] .* got \(1, 20\)"),
    "states_count": (lambda r: convert.keras_states_to_torch([np.zeros((B, U))] * 3), ValueError,
                     r"states must be \[h_f, c_f, h_b, c_b\] per layer \(4 arrays a layer\), got 3 arrays"),
}


@pytest.mark.parametrize("case", list(CONVERT_ERRORS))
@pytest.mark.backend_independent
def test_converter_rejects(rng, case):
    call, error, pattern = CONVERT_ERRORS[case]
    with pytest.raises(error, match=pattern):
        call(rng)
