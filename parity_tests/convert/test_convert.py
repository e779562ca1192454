"""Layout conversion (``keras_impl.convert``) of every cell: Keras <-> torch and ONNX, round trips, refusals.

LSTM, GRU and SimpleRNN weights converted to ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` (tanh
and relu) must reproduce the oracle (``reference.lstm_forward``, ``gru_forward``,
``simple_rnn_forward``, ``bidirectional_forward(cell=...)``), outputs and final states
from non-zero initial states, in float64 and float32; a Keras model's ``get_weights()``
converted to torch must reproduce the Keras model. The ONNX inputs of all three cells,
in a one-node ONNX graph run by ONNX Runtime, must reproduce the oracle in float32:
ONNX Runtime's CPU ``LSTM``, ``GRU`` and ``RNN`` kernels take float32 only ("does not
support double yet"). Round trips are exact; bad input is refused by name.

The tests are parametrised over the cell (and its options) where they check the same
thing; what one cell has and the others do not (the LSTM's ``as_torch`` block check,
the GRU's torch gate order and two bias rows) has its own test. Only the Keras-model
test needs Keras (one small model a case); the rest runs the same under every
``KERAS_BACKEND``, so it is kept to a few hundred milliseconds. torch and onnxruntime
are each skipped, with the reason, where not installed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

import reference
from keras_impl import convert
from keras_impl.parity.tolerances import FLOAT32_ABS, FLOAT64_SELF_ABS

B, T, D, U = 3, 6, 4, 5  # a different size for every dimension


@dataclass(frozen=True)
class Case:
    cell: str
    options: dict = field(default_factory=dict)  # the oracle layer's options: activation, reset_after

    @property
    def reset_after(self) -> bool:
        return self.options.get("reset_after", True)

    @property
    def activation(self) -> str:
        return self.options.get("activation", "tanh")

    @property
    def carried(self) -> int:
        """States a direction carries: h and c for the LSTM, h for the others."""
        return 2 if self.cell == "lstm" else 1

    def convert_options(self) -> dict:
        return {"cell": self.cell, "reset_after": self.reset_after}


LSTM = Case("lstm")
LAYER_FORWARD = {"lstm": reference.lstm_forward, "gru": reference.gru_forward,
                 "simple_rnn": reference.simple_rnn_forward}
TORCH_CASES = {  # what torch has: nn.GRU is reset_after=True; nn.RNN's nonlinearity is tanh or relu
    "lstm": LSTM,
    "gru": Case("gru"),
    "simple_rnn_tanh": Case("simple_rnn", {"activation": "tanh"}),
    "simple_rnn_relu": Case("simple_rnn", {"activation": "relu"}),
}
ONNX_CASES = {
    "lstm": LSTM,
    "gru": Case("gru"),                                           # linear_before_reset=1
    "gru_reset_before": Case("gru", {"reset_after": False}),      # linear_before_reset=0
    "simple_rnn_tanh": Case("simple_rnn", {"activation": "tanh"}),
    "simple_rnn_relu": Case("simple_rnn", {"activation": "relu"}),
}
ONNX_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu"}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[torch]' to run the interop tests")


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx", reason="onnx is not installed: pip install -e '.[export]' to run the ONNX layout tests")
    return pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install -e '.[export]' "
                                                     "to run the ONNX layout tests")


def close(actual, expected, what, atol):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol, err_msg=what)


def keras_weights(case: Case, rng, layers=1, direction="bidirectional", dtype=np.float64, units=U):
    """Random Keras-order recurrent weights of a ``layers``-deep stack, stacked as torch stacks them (concat)."""
    spec = reference.ModelSpec(timesteps=T, features=D, units=(units,) * layers, direction=direction, cell=case.cell,
                               **case.options)
    recurrent, _ = convert.spec_recurrent_weights(spec, reference.random_weights(spec, rng))
    return [w.astype(dtype) for w in recurrent]


def random_states(case: Case, rng, layers, bidirectional):
    return [rng.uniform(-0.8, 0.8, size=(B, U)) for _ in range(layers * case.carried * (2 if bidirectional else 1))]


def oracle_stack(case: Case, x, recurrent, states, direction):
    """The oracle layer after layer: (outputs (B, T, dirs*U) in Keras's order, final states in Keras's order)."""
    bidirectional = direction == "bidirectional"
    per_layer, per_states = (6, 2 * case.carried) if bidirectional else (3, case.carried)
    h, finals = x, []
    for k in range(len(recurrent) // per_layer):
        w = recurrent[k * per_layer:(k + 1) * per_layer]
        initial = states[k * per_states:(k + 1) * per_states]
        if bidirectional:
            h, *layer_states = reference.bidirectional_forward(h, w[:3], w[3:], cell=case.cell, **case.options,
                                                               initial_state=initial, return_sequences=True,
                                                               return_state=True)
        else:
            h, *layer_states = LAYER_FORWARD[case.cell](h, *w, **case.options, initial_state=initial,
                                                        go_backwards=direction == "backward",
                                                        return_sequences=True, return_state=True)
        finals += layer_states
    return h, finals


# --------------------------------------------------------------------------------------- torch

def torch_module(torch, case: Case, features, layers, bidirectional, dtype):
    if case.cell == "lstm":
        module = torch.nn.LSTM(features, U, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    elif case.cell == "gru":
        module = torch.nn.GRU(features, U, num_layers=layers, bidirectional=bidirectional, batch_first=True)
    else:
        module = torch.nn.RNN(features, U, num_layers=layers, bidirectional=bidirectional, batch_first=True,
                              nonlinearity=case.activation)
    return module.to(dtype)


def run_torch(torch, case: Case, module, x, states, bidirectional, dtype):
    """torch's outputs (B, T, dirs*U) and final states in Keras's order, from Keras-order initial ``states``."""
    initial = convert.keras_states_to_torch(states, bidirectional=bidirectional, cell=case.cell)
    tensor = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    with torch.no_grad():
        if case.cell == "lstm":  # (h_0, c_0) in, (h_n, c_n) out
            y, (h_n, c_n) = module(tensor(x), tuple(tensor(s) for s in initial))
            return y.numpy(), convert.torch_states_to_keras(h_n.numpy(), c_n.numpy())
        y, h_n = module(tensor(x), tensor(initial))
    return y.numpy(), convert.torch_states_to_keras(h_n.numpy())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("direction, layers", [("bidirectional", 1), ("bidirectional", 2), ("forward", 1),
                                               ("forward", 2), ("backward", 1)],
                         ids=["bidirectional-1layer", "bidirectional-2layers", "forward-1layer", "forward-2layers",
                              "backward-1layer"])
@pytest.mark.parametrize("name", list(TORCH_CASES))
@pytest.mark.backend_independent
def test_torch_runs_converted_keras_weights_like_the_oracle(torch, rng, name, direction, layers, dtype):
    """Keras's go_backwards layer has no torch flag: torch reads the flipped input, outputs in processing order."""
    case, bidirectional = TORCH_CASES[name], direction == "bidirectional"
    recurrent = keras_weights(case, rng, layers, direction, dtype=np.dtype(dtype))
    states = random_states(case, rng, layers, bidirectional)
    x = rng.normal(size=(B, T, D)).astype(dtype)
    state_dict = convert.keras_to_torch(recurrent, bidirectional=bidirectional, **case.convert_options())
    module = torch_module(torch, case, D, layers, bidirectional, getattr(torch, dtype))
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state_dict.items()})  # strict: every key and shape
    y, finals = run_torch(torch, case, module, x[:, ::-1].copy() if direction == "backward" else x, states,
                          bidirectional, getattr(torch, dtype))
    y_ref, finals_ref = oracle_stack(case, x.astype(np.float64), recurrent, states, direction)
    atol = FLOAT64_SELF_ABS if dtype == "float64" else FLOAT32_ABS
    close(y, y_ref, "outputs", atol)
    assert len(finals) == len(finals_ref)
    per_layer = case.carried * (1 + bidirectional)
    for k, (got, want) in enumerate(zip(finals, finals_ref)):
        close(got, want, f"final state {k} (layer {k // per_layer})", atol)


@pytest.mark.parametrize("name", list(TORCH_CASES))
@pytest.mark.backend_independent
def test_torch_initialised_module_converts_to_keras(torch, rng, name):
    """torch's own init gives two non-zero biases: the GRU keeps both rows, the LSTM and the RNN sum them."""
    case = TORCH_CASES[name]
    torch.manual_seed(11)
    module = torch_module(torch, case, D, 2, True, torch.float64)
    assert module.bias_hh_l0.abs().min() > 0
    recurrent = convert.torch_to_keras(module.state_dict(), cell=case.cell)
    x = rng.normal(size=(B, T, D))
    states = random_states(case, rng, 2, True)
    y, _ = run_torch(torch, case, module, x, states, True, torch.float64)
    close(y, oracle_stack(case, x, recurrent, states, "bidirectional")[0], "outputs", FLOAT64_SELF_ABS)


@pytest.mark.backend_independent
def test_as_torch_gives_tensors_that_load(torch, rng):
    """LSTM: torch tensors that load strictly; the recurrent kernel's blocks in Keras's order (i, f, g, o)."""
    recurrent = keras_weights(LSTM, rng)
    state_dict = convert.keras_to_torch(recurrent, as_torch=True)
    assert all(isinstance(v, torch.Tensor) for v in state_dict.values())
    lstm = torch.nn.LSTM(D, U, bidirectional=True).double()
    lstm.load_state_dict(state_dict)  # strict: same keys, same shapes
    np.testing.assert_array_equal(lstm.weight_hh_l0_reverse.detach().numpy(), recurrent[4].T)


# A Keras model costs seconds: the LSTM at one and two layers (stacked layers need torch's concat input),
# the GRU and the SimpleRNN at one.
KERAS_MODEL_SPECS = {
    "lstm_bi_concat_2layers": reference.ModelSpec(timesteps=T, features=D, units=(U, U)),
    "lstm_forward_2layers": reference.ModelSpec(timesteps=T, features=D, units=(U, U), direction="forward"),
    "lstm_bi_concat_1layer": reference.ModelSpec(timesteps=T, features=D, units=U),
    "gru_bi_concat": reference.ModelSpec(timesteps=T, features=D, units=U, cell="gru"),
    "simple_rnn_relu_forward": reference.ModelSpec(timesteps=T, features=D, units=U, direction="forward",
                                                   cell="simple_rnn", activation="relu"),
}


@pytest.mark.parametrize("name", list(KERAS_MODEL_SPECS))
def test_keras_model_weights_in_torch_match_keras(torch, backend, rng, name):
    """The Keras layer's own weights (not the oracle's reading of them) in torch give Keras's outputs and the oracle's."""
    import keras

    from keras_impl import build_model
    spec = KERAS_MODEL_SPECS[name]
    case = Case(spec.cell, {"activation": spec.activation} if spec.cell == "simple_rnn" else {})
    weights = [w.astype(np.float32) for w in reference.random_weights(spec, rng)]
    model = build_model(spec)
    model.set_weights(weights)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    keras_probs = keras.ops.convert_to_numpy(model(x, training=False))  # a call, not predict: no compiled function
    recurrent, (dense_kernel, dense_bias) = convert.spec_recurrent_weights(spec, model.get_weights())
    state_dict = convert.keras_to_torch(recurrent, bidirectional=spec.bidirectional, cell=spec.cell,
                                        reset_after=spec.reset_after, as_torch=True)
    module = torch_module(torch, case, D, spec.num_layers, spec.bidirectional, torch.float32)
    module.load_state_dict(state_dict)
    zeros = [np.zeros((B, U))] * (spec.num_layers * case.carried * (2 if spec.bidirectional else 1))
    y, _ = run_torch(torch, case, module, x, zeros, spec.bidirectional, torch.float32)
    torch_probs = 1.0 / (1.0 + np.exp(-(y @ dense_kernel + dense_bias)))  # the TimeDistributed(Dense(1, sigmoid)) head
    close(torch_probs, keras_probs, "torch vs Keras", FLOAT32_ABS)
    close(torch_probs, reference.model_forward(spec, weights, x), "torch vs oracle", FLOAT32_ABS)


# ------------------------------------------------------------------------------- ONNX Runtime

def onnx_session(ort, case: Case, direction: str, features: int):
    """One ``LSTM`` / ``GRU`` / ``RNN`` node (time-major, float32) with every input fed at run time."""
    from onnx import TensorProto, helper
    dirs = 2 if direction == "bidirectional" else 1
    G = convert.GATES[case.cell]
    shapes = {"X": [T, B, features], "W": [dirs, G * U, features], "R": [dirs, G * U, U], "B": [dirs, 2 * G * U],
              "initial_h": [dirs, B, U], "initial_c": [dirs, B, U]}
    inputs = ["X", "W", "R", "B", "", "initial_h"] + (["initial_c"] if case.cell == "lstm" else [])  # "": no sequence_lens
    outputs = {"Y": [T, dirs, B, U], "Y_h": [dirs, B, U], "Y_c": [dirs, B, U]}
    output_names = ["Y", "Y_h"] + (["Y_c"] if case.cell == "lstm" else [])
    attributes = {"hidden_size": U, "direction": direction}
    if case.cell == "gru":
        attributes["linear_before_reset"] = int(case.reset_after)
    if case.cell == "simple_rnn":
        attributes["activations"] = [ONNX_ACTIVATIONS[case.activation]] * dirs
    node = helper.make_node(convert.ONNX_OPERATORS[case.cell], inputs, output_names, **attributes)
    graph = helper.make_graph(
        [node], "one_recurrent_node",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shapes[name]) for name in inputs if name],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, outputs[name]) for name in output_names])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # small, and the test machines have 2 cores
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run_onnx(ort, case, direction, W, R, B_, x, states):
    """ONNX Runtime's outputs for batch-major ``x``: Y (T, dirs, B, U) time-aligned, then Y_h (and Y_c)."""
    session = onnx_session(ort, case, direction, x.shape[-1])
    initial = convert.keras_states_to_torch(states, bidirectional=direction == "bidirectional", cell=case.cell)
    feeds = {"X": x.transpose(1, 0, 2), "W": W, "R": R, "B": B_}  # the same [dirs, B, U] stacking as torch's
    feeds |= dict(zip(("initial_h", "initial_c"), initial)) if case.cell == "lstm" else {"initial_h": initial}
    return session.run(None, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()})


def check_against_oracle(case, direction, recurrent, x, states, onnx_outputs):
    """ONNX's time-aligned Y and final states against the oracle's layer (merge_mode None when bidirectional)."""
    Y, *finals = onnx_outputs
    if direction == "bidirectional":
        y_f, y_b, *finals_ref = reference.bidirectional_forward(
            x, recurrent[:3], recurrent[3:], merge_mode=None, cell=case.cell, **case.options, initial_state=states,
            return_sequences=True, return_state=True)
        close(Y[:, 0].transpose(1, 0, 2), y_f, "Y forward", FLOAT32_ABS)
        close(Y[:, 1].transpose(1, 0, 2), y_b, "Y reverse (time-aligned, as Bidirectional flips it back)", FLOAT32_ABS)
    else:  # ONNX's reverse is Keras's go_backwards, time-aligned: flip Y to get processing order
        y, *finals_ref = LAYER_FORWARD[case.cell](x, *recurrent, **case.options, initial_state=states,
                                                  go_backwards=direction == "reverse", return_sequences=True,
                                                  return_state=True)
        close((Y[::-1] if direction == "reverse" else Y)[:, 0].transpose(1, 0, 2), y, "Y", FLOAT32_ABS)
    # Keras's final states: per direction h (and c); ONNX's: Y_h [dirs] (and Y_c [dirs])
    got = [state[d] for d in range(len(finals[0])) for state in finals]
    assert len(got) == len(finals_ref)
    for k, (a, b) in enumerate(zip(got, finals_ref)):
        close(a, b, f"final state {k}", FLOAT32_ABS)


@pytest.mark.parametrize("direction", ["bidirectional", "forward", "reverse"])
@pytest.mark.parametrize("name", list(ONNX_CASES))
@pytest.mark.backend_independent
def test_onnx_runtime_runs_converted_keras_weights_like_the_oracle(ort, rng, name, direction):
    case = ONNX_CASES[name]
    recurrent = keras_weights(case, rng, 1, "bidirectional" if direction == "bidirectional" else "forward")
    states = random_states(case, rng, 1, direction == "bidirectional")
    x = rng.normal(size=(B, T, D))
    [(W, R, B_)] = convert.keras_to_onnx(recurrent, bidirectional=direction == "bidirectional",
                                         **case.convert_options())
    dirs, G = (2 if direction == "bidirectional" else 1), convert.GATES[case.cell]
    assert (W.shape, R.shape, B_.shape) == ((dirs, G * U, D), (dirs, G * U, U), (dirs, 2 * G * U))
    check_against_oracle(case, direction, recurrent, x, states, run_onnx(ort, case, direction, W, R, B_, x, states))


@pytest.mark.parametrize("name", list(ONNX_CASES))
@pytest.mark.backend_independent
def test_onnx_weights_convert_to_keras(ort, rng, name):
    """ONNX inputs as another tool writes them, both bias halves non-zero: the converted Keras weights match ONNX Runtime.

    With linear_before_reset=1 the recurrent bias of the GRU's candidate gate is scaled by the reset
    gate, so it cannot be folded into the input bias: only Keras's (2, 3U) bias keeps it apart.
    """
    case = ONNX_CASES[name]
    G = convert.GATES[case.cell]
    W, R, B_ = (rng.uniform(-0.6, 0.6, size=shape) for shape in ((2, G * U, D), (2, G * U, U), (2, 2 * G * U)))
    lbr = {"linear_before_reset": int(case.reset_after)} if case.cell == "gru" else {}
    recurrent = convert.onnx_to_keras(W, R, B_, cell=case.cell, **lbr)
    states = random_states(case, rng, 1, True)
    x = rng.normal(size=(B, T, D))
    check_against_oracle(case, "bidirectional", recurrent, x, states,
                         run_onnx(ort, case, "bidirectional", W, R, B_, x, states))


# ---------------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("direction", ["bidirectional", "forward"])
@pytest.mark.parametrize("layers", [1, 2], ids=["1layer", "2layers"])
@pytest.mark.parametrize("name", list(TORCH_CASES))
@pytest.mark.backend_independent
def test_keras_torch_keras_is_identity(rng, name, layers, direction):
    case = TORCH_CASES[name]
    recurrent = keras_weights(case, rng, layers, direction, dtype=np.float32)
    state_dict = convert.keras_to_torch(recurrent, bidirectional=direction == "bidirectional", **case.convert_options())
    if case.cell != "gru":  # the documented split: the whole bias in bias_ih (the GRU's bias_hh is its second row)
        assert np.all(state_dict["bias_hh_l0"] == 0)
    back = convert.torch_to_keras(state_dict, cell=case.cell)
    assert len(back) == len(recurrent)
    for k, (a, b) in enumerate(zip(back, recurrent)):
        assert a.dtype == b.dtype, f"weights[{k}] dtype"
        np.testing.assert_array_equal(a, b, err_msg=f"weights[{k}]")


@pytest.mark.backend_independent
def test_gru_layout_is_torchs_r_z_n_with_both_bias_rows(rng):
    """The documented layout, block by block: Keras's z, r, h are torch's z, r, n at rows U:2U, 0:U, 2U:3U."""
    kernel, recurrent_kernel, bias = keras_weights(TORCH_CASES["gru"], rng, 1, "forward")
    state = convert.keras_to_torch([kernel, recurrent_kernel, bias], bidirectional=False, cell="gru")
    for keras_block, torch_block in ((0, 1), (1, 0), (2, 2)):  # z, r, h
        keras_cols, torch_rows = slice(keras_block * U, (keras_block + 1) * U), slice(torch_block * U, (torch_block + 1) * U)
        np.testing.assert_array_equal(state["weight_ih_l0"][torch_rows], kernel[:, keras_cols].T)
        np.testing.assert_array_equal(state["weight_hh_l0"][torch_rows], recurrent_kernel[:, keras_cols].T)
        np.testing.assert_array_equal(state["bias_ih_l0"][torch_rows], bias[0, keras_cols])
        np.testing.assert_array_equal(state["bias_hh_l0"][torch_rows], bias[1, keras_cols])


@pytest.mark.backend_independent
def test_torch_gru_keras_torch_is_identity(torch):
    """nn.GRU keeps its two biases apart and so does Keras's reset_after=True: nothing is summed, nothing lost."""
    torch.manual_seed(3)
    state_dict = {k: v.numpy() for k, v in torch.nn.GRU(D, U, num_layers=2, bidirectional=True).state_dict().items()}
    back = convert.keras_to_torch(convert.torch_to_keras(state_dict, cell="gru"), cell="gru")
    assert back.keys() == state_dict.keys()
    for key in state_dict:
        np.testing.assert_array_equal(back[key], state_dict[key], err_msg=key)


@pytest.mark.parametrize("direction", ["bidirectional", "forward"])
@pytest.mark.parametrize("name", list(ONNX_CASES))
@pytest.mark.backend_independent
def test_keras_onnx_keras_is_identity(rng, name, direction):
    case = ONNX_CASES[name]
    recurrent = keras_weights(case, rng, 2, direction, dtype=np.float32)
    lbr = {"linear_before_reset": int(case.reset_after)} if case.cell == "gru" else {}
    back = [w for W, R, B_ in convert.keras_to_onnx(recurrent, bidirectional=direction == "bidirectional",
                                                    **case.convert_options())
            for w in convert.onnx_to_keras(W, R, B_, cell=case.cell, **lbr)]
    for k, (a, b) in enumerate(zip(back, recurrent, strict=True)):
        assert a.dtype == b.dtype, f"weights[{k}] dtype"
        np.testing.assert_array_equal(a, b, err_msg=f"weights[{k}]")


@pytest.mark.parametrize("cell", ["lstm", "gru", "simple_rnn"])
@pytest.mark.backend_independent
def test_states_round_trip(rng, cell):
    """Two Bidirectional layers: Keras's [h_f, (c_f,) h_b, (c_b)] per layer are torch's h_0 (and c_0)
    at index layer * 2 + direction."""
    case = Case(cell)
    states = [rng.normal(size=(B, U)) for _ in range(2 * 2 * case.carried)]
    initial = convert.keras_states_to_torch(states, cell=cell)
    torch_states = initial if cell == "lstm" else (initial,)  # (h_0, c_0) for the LSTM, h_0 alone otherwise
    assert all(isinstance(s, np.ndarray) and s.shape == (4, B, U) for s in torch_states)
    if cell == "lstm":
        np.testing.assert_array_equal(torch_states[0][1], states[2])  # layer 0 backward h is torch index 1
        np.testing.assert_array_equal(torch_states[1][2], states[5])  # layer 1 forward c is torch index 2
    else:
        np.testing.assert_array_equal(torch_states[0][1], states[1])  # layer 0 backward is torch index 1
    for layer in range(2):
        for direction in range(2):
            for role, torch_state in enumerate(torch_states):
                keras_index = (layer * 2 + direction) * case.carried + role
                np.testing.assert_array_equal(torch_state[layer * 2 + direction], states[keras_index])
    for a, b in zip(convert.torch_states_to_keras(*torch_states), states, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------------------ errors

def good(rng):
    """One LSTM Bidirectional layer's six arrays."""
    return keras_weights(LSTM, rng)


def gru(rng, reset_after=True, **kwargs):
    return keras_weights(Case("gru", {"reset_after": reset_after}), rng, **kwargs)


def recurrent_weights(rng, layers, bidirectional, units=U):
    """LSTM weights of a ``layers``-deep stack."""
    return keras_weights(LSTM, rng, layers, "bidirectional" if bidirectional else "forward", units=units)


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
    # ---- GRU and SimpleRNN
    "gru_reset_before_to_torch": (lambda r: convert.keras_to_torch(gru(r, False), cell="gru", reset_after=False),
                                  ValueError, r"reset_after=False has no torch.nn.GRU equivalent: torch.nn.GRU applies "
                                              r"the reset gate after the recurrent matmul.*linear_before_reset=0"),
    # refused before the weights are read: a list that is not even weights gets the same answer
    "gru_reset_before_to_torch_first": (lambda r: convert.keras_to_torch("weights", cell="gru", reset_after=False),
                                        ValueError, r"reset_after=False has no torch.nn.GRU equivalent"),
    "gru_bias_of_reset_before_form": (lambda r: convert.keras_to_onnx(gru(r, False), cell="gru"), ValueError,
                                      r"weights\[0:3\] \(layer 0\): bias of shape \(15,\) is the GRU bias for "
                                      r"reset_after=False, but reset_after=True needs shape \(2, 15\)"),
    "gru_bias_of_reset_after_form": (lambda r: convert.keras_to_onnx(gru(r), cell="gru", reset_after=False),
                                     ValueError, r"bias of shape \(2, 15\) is the GRU bias for reset_after=True, but "
                                                 r"reset_after=False needs shape \(15,\)"),
    "lstm_weights_as_gru": (lambda r: convert.keras_to_torch(keras_weights(Case("lstm"), r), cell="gru"), ValueError,
                            r"recurrent_kernel must have shape \(units, 3\*units\) with units >= 1, got \(5, 20\) for "
                            r"cell='gru'; \(units, 4\*units\) is the shape of an LSTM: pass cell='lstm'"),
    "gru_weights_as_lstm": (lambda r: convert.keras_to_onnx(gru(r)), ValueError,
                            r"got \(5, 15\) for cell='lstm'; \(units, 3\*units\) is the shape of a GRU: pass cell='gru'"),
    "simple_rnn_kernel_shape": (lambda r: convert.keras_to_torch([np.ones((D, 2 * U)), np.ones((U, U)), np.ones(U)],
                                                                 bidirectional=False, cell="simple_rnn"), ValueError,
                                r"kernel must have shape \(input_dim, 5\) \(input_dim, 1\*units\) for units=5, got \(4, 10\)"),
    "simple_rnn_bias_shape": (lambda r: convert.keras_to_torch([np.ones((D, U)), np.ones((U, U)), np.ones(2 * U)],
                                                               bidirectional=False, cell="simple_rnn"), ValueError,
                              r"bias must have shape \(5,\) \(1\*units,\) for units=5, got \(10,\)"),
    "cell_unknown": (lambda r: convert.keras_to_torch(gru(r), cell="GRU"), ValueError,
                     r"cell must be one of \('lstm', 'gru', 'simple_rnn'\), got 'GRU'"),
    "reset_after_not_bool": (lambda r: convert.keras_to_onnx(gru(r), cell="gru", reset_after=1), TypeError,
                             r"reset_after must be True or False, got 1"),
    "reset_after_with_simple_rnn": (lambda r: convert.keras_to_onnx(gru(r), cell="simple_rnn", reset_after=False),
                                    ValueError, r"reset_after applies to the gru cell only"),
    "gru_torch_stack_units_differ": (lambda r: convert.keras_to_torch(
        gru(r) + [np.ones((2 * U, 9)), np.ones((3, 9)), np.ones((2, 9))] * 2, cell="gru"), ValueError, r"torch.nn.GRU has one hidden_size for every layer, but layer 0 has units 5 and layer 1 has 3"),
    "torch_gru_read_as_lstm": (lambda r: convert.torch_to_keras(convert.keras_to_torch(gru(r), cell="gru")), ValueError,
                               r"weight_hh_l0 must have shape \(4\*hidden_size, hidden_size\) for a torch.nn.LSTM, got "
                               r"\(15, 5\); \(units, 3\*units\) is the shape of a GRU: pass cell='gru'"),
    "torch_rnn_read_as_gru": (lambda r: convert.torch_to_keras(convert.keras_to_torch(
        keras_weights(TORCH_CASES["simple_rnn_tanh"], r), cell="simple_rnn"), cell="gru"), ValueError,
        r"weight_hh_l0 must have shape \(3\*hidden_size, hidden_size\) for a torch.nn.GRU, got \(5, 5\); "
        r"\(units, 1\*units\) is the shape of a SimpleRNN: pass cell='simple_rnn'"),
    "torch_gru_bias_shape": (lambda r: convert.torch_to_keras(convert.keras_to_torch(gru(r), cell="gru")
                                                              | {"bias_hh_l0": np.zeros(2 * U)}, cell="gru"), ValueError,
                             r"bias_ih_l0 and bias_hh_l0 must both have shape \(3\*hidden_size,\) = \(15,\), "
                             r"got \(15,\) and \(10,\)"),
    "onnx_gru_without_linear_before_reset": (lambda r: convert.onnx_to_keras(*convert.keras_to_onnx(gru(r), cell="gru")[0],
                                                                             cell="gru"), ValueError,
                                             r"linear_before_reset must be given for cell='gru'.*ONNX's default"),
    "onnx_linear_before_reset_not_0_or_1": (lambda r: convert.onnx_to_keras(np.ones((1, 15, D)), np.ones((1, 15, U)),
                                                                            cell="gru", linear_before_reset=2),
                                            ValueError, r"linear_before_reset must be 0 or 1, got 2"),
    "onnx_linear_before_reset_on_rnn": (lambda r: convert.onnx_to_keras(np.ones((1, U, D)), np.ones((1, U, U)),
                                                                        cell="simple_rnn", linear_before_reset=1),
                                        ValueError, r"linear_before_reset is an attribute of the ONNX GRU only"),
    "onnx_gru_R_shape": (lambda r: convert.onnx_to_keras(np.ones((1, 20, D)), np.ones((1, 20, U)), cell="gru",
                                                         linear_before_reset=1), ValueError,
                         r"R must have shape \[num_directions \(1 or 2\), 3\*hidden_size, hidden_size\], got "
                         r"\(1, 20, 5\) for the ONNX GRU"),
    "onnx_rnn_B_shape": (lambda r: convert.onnx_to_keras(np.ones((2, U, D)), np.ones((2, U, U)), np.ones((2, 4 * U)),
                                                         cell="simple_rnn"), ValueError,
                         r"B must have shape \[2, 10\] \(num_directions, 2\*hidden_size\) .* got \(2, 20\)"),
    "gru_states_count": (lambda r: convert.keras_states_to_torch([np.zeros((B, U))] * 3, cell="gru"), ValueError,
                         r"states must be \[h_f, h_b\] per layer \(2 arrays a layer\), got 3 arrays \(cell='gru'\)"),
    "h_n_not_3d": (lambda r: convert.torch_states_to_keras(np.zeros((B, U))), ValueError,
                   r"h_n must have shape \(num_layers \* num_directions, batch, hidden_size\), got \(3, 5\)"),
}


@pytest.mark.parametrize("case", list(CONVERT_ERRORS))
@pytest.mark.backend_independent
def test_converter_rejects(rng, case):
    call, error, pattern = CONVERT_ERRORS[case]
    with pytest.raises(error, match=pattern):
        call(rng)
