"""The parity template: the same weights into the oracle and into Keras, results compared by name.

Every parity check is built from these steps (after PyTorch's ``_test_RNN_cpu_vs_cudnn``):

1. draw the weights once: random, non-zero, non-symmetric, biases included
   (``random_array``, the same recipe as ``reference.random_weights``), random
   non-zero initial states for every state, random inputs;
2. load the same arrays into both sides: the oracle takes them as they are,
   Keras through ``set_weights`` (Keras's own layout and order, so nothing is sliced);
3. run both and name every result (``L1.output``, ``L0.h_f``, ...);
4. compare the two dicts key by key (``keras_impl/parity/compare.py``): the
   failure message names each key over the tolerance and its error.

A case's cell (``LayerCase.cell`` and its options, ``ModelCase.cell``) picks
``keras.layers.LSTM | GRU | SimpleRNN`` on one side and ``reference.lstm_forward |
gru_forward | simple_rnn_forward`` (or ``bidirectional_forward(cell=...)``) on the other;
weights and states are drawn in that cell's shapes (``reference.Cell.weight_roles``).

Where Keras's backends disagree with each other (``divergences.py``), the
oracle is run in the convention of the backend under test: at masked steps
before a row's first valid step, an LSTM outputs h0 on JAX and zeros on
TensorFlow and torch (``divergences.initial_output``, the oracle's
``initial_output=`` option).

Speed: Keras layers (and models) are built once per structural configuration
and cached (``LayerCase.structure``); a case only calls ``set_weights``. How
Keras is run (eagerly, op by op on JAX's CPU, or compiled) is said in
``default_compiled``; ``compiled=True`` runs a ``jax.jit`` of ``stateless_call``
(weights as arguments, compiled once per structure) or a ``tf.function``.
"""
from __future__ import annotations

import contextlib

import numpy as np

import reference
from keras_impl.parity import divergences
from keras_impl.parity.cases import DIMS, Dims, LayerCase, ModelCase, mask_array


def random_array(rng: np.random.Generator, shape, scale: float = 0.5) -> np.ndarray:
    """Uniform in [-scale, scale), pushed 0.05 away from zero: no zero entry, no two units alike."""
    a = rng.uniform(-scale, scale, size=shape)
    return a + np.where(a >= 0, 0.05, -0.05)


# ---------------------------------------------------------------- drawing the inputs of a case

def layer_input_features(case: LayerCase, dims: Dims, k: int) -> int:
    if k == 0:
        return dims.features
    u = dims.units[k - 1]
    return 2 * u if case.bidirectional and case.merge_mode == "concat" else u


def draw_layer_weights(case: LayerCase, dims: Dims, rng) -> list[list[np.ndarray]]:
    """Per layer, its ``get_weights()``: ``[kernel, recurrent_kernel, bias]`` (twice for Bidirectional: fwd, bwd),
    in the shapes of the case's cell (``reference.Cell.weight_roles``)."""
    weights, cell = [], case.cell_config
    for k in range(case.layers):
        d, u = layer_input_features(case, dims, k), dims.units[k]
        direction = lambda: [random_array(rng, shape) for _, shape in cell.weight_roles(d, u)]  # noqa: E731
        weights.append(direction() + direction() if case.bidirectional else direction())
    return weights


def draw_states(case: LayerCase, dims: Dims, rng) -> list[list[np.ndarray] | None]:
    """Per layer, the cell's states (``[h, c]`` for LSTM, ``[h]`` otherwise; forward's then backward's for
    Bidirectional), each (B, U); None without initial_state."""
    if not case.initial_state:
        return [None] * case.layers
    count = len(case.cell_config.state_names) * (2 if case.bidirectional else 1)
    return [[random_array(rng, (dims.batch, dims.units[k])) for _ in range(count)] for k in range(case.layers)]


def draw_x(dims: Dims, rng) -> np.ndarray:
    return rng.normal(size=(dims.batch, dims.time, dims.features))  # (B, T, D)


# ---------------------------------------------------------------- naming results

def result_names(case: LayerCase) -> list[str]:
    """Names of a layer call's results, in the order Keras returns them."""
    names = ["output_fwd", "output_bwd"] if case.bidirectional and case.merge_mode is None else ["output"]
    if case.return_state:
        states = case.cell_config.state_names  # (h, c) for LSTM, (h,) for GRU and SimpleRNN
        names += [f"{n}_{d}" for d in "fb" for n in states] if case.bidirectional else list(states)
    return names


def name_results(case: LayerCase, k: int, raw) -> dict[str, np.ndarray]:
    values = list(raw) if isinstance(raw, (tuple, list)) else [raw]
    names = result_names(case)
    if len(values) != len(names):
        raise AssertionError(f"layer {k} returned {len(values)} results, expected {len(names)}: {names}")
    return {f"L{k}.{name}": value for name, value in zip(names, values)}


def next_layer_input(raw):
    return raw[0] if isinstance(raw, (tuple, list)) else raw


# ---------------------------------------------------------------- the oracle side

def oracle_layer(case: LayerCase, weights, x, mask, states, initial_output: str = "h0") -> dict[str, np.ndarray]:
    """The oracle's named results for a stack of ``case.layers`` layers (float64).

    ``initial_output``: the oracle's option for masked steps before a row's first valid one ("h0" | "zeros").
    """
    results, h = {}, x
    cell = case.cell_config
    n = cell.weight_count
    for k in range(case.layers):
        w, rs = weights[k], case.layer_returns_sequences(k)
        if case.bidirectional:
            fwd, bwd = (tuple(half) + (None,) * (3 - n) for half in (w[:n], w[n:]))  # bias None without use_bias
            raw = reference.bidirectional_forward(h, fwd, bwd, merge_mode=case.merge_mode, initial_state=states[k],
                                                  mask=mask, return_sequences=rs, return_state=case.return_state,
                                                  initial_output=initial_output, cell=cell.kind,
                                                  activation=cell.activation,
                                                  recurrent_activation=cell.recurrent_activation,
                                                  reset_after=cell.reset_after)
        else:
            raw = ORACLE_LAYERS[cell.kind](h, *w, *(None,) * (3 - n), initial_state=states[k], mask=mask, go_backwards=case.go_backwards,
                                           return_sequences=rs, return_state=case.return_state,
                                           initial_output=initial_output, **cell_kwargs(cell))
        results.update(name_results(case, k, raw))
        h = next_layer_input(raw)
    return results


ORACLE_LAYERS = {"lstm": reference.lstm_forward, "gru": reference.gru_forward,
                 "simple_rnn": reference.simple_rnn_forward}


def cell_kwargs(cell) -> dict:
    """The cell's options as its oracle function and its Keras layer take them."""
    kwargs = {"activation": cell.activation}
    if cell.kind != "simple_rnn":
        kwargs["recurrent_activation"] = cell.recurrent_activation
    if cell.kind == "gru":
        kwargs["reset_after"] = cell.reset_after
    return kwargs


def keras_cell_layer(cell, units: int, **kwargs):
    """``keras.layers.LSTM | GRU | SimpleRNN(units, <cell options>, **kwargs)``."""
    import keras
    layer_class = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}[cell.kind]
    return layer_class(units, use_bias=cell.use_bias, **cell_kwargs(cell), **kwargs)


# ---------------------------------------------------------------- the Keras side

def _backend() -> str:
    import keras
    return keras.backend.backend()


def to_numpy(value) -> np.ndarray:
    import keras
    return np.asarray(keras.ops.convert_to_numpy(value))


def device() -> str:
    from keras_impl.backend import device_name
    global _DEVICE
    if _DEVICE is None:
        _DEVICE = device_name()
    return _DEVICE


_DEVICE = None


def default_compiled() -> bool:
    """How the suite runs Keras by default: eagerly, except JAX on an accelerator.

    An eager JAX RNN call compiles its ``lax.scan`` afresh every time (Keras
    builds a new step closure per call), about 0.2 s a layer on the CPU: the
    product of cases would take minutes. So on the CPU JAX runs op by op
    (``jax.disable_jit``: the same Keras code, the scan run as a Python loop);
    the compiled path (``jax.jit`` of ``stateless_call``) is checked by the
    ``compiled`` tests and by ``bilstm parity``. On a GPU everything is compiled,
    so the cuDNN paths run as users run them.
    """
    return _backend() == "jax" and device() != "cpu"


def op_by_op():
    """A context in which JAX executes op by op (nothing else changes on other backends)."""
    if _backend() == "jax":
        import jax
        return jax.disable_jit()
    return contextlib.nullcontext()


def compile_eager(owner, attribute: str, function):
    """``function`` compiled the backend's way, cached on ``owner``: tf.function on TensorFlow; torch stays eager."""
    compiled = getattr(owner, attribute, None)
    if compiled is None:
        if _backend() == "tensorflow":
            import tensorflow as tf
            compiled = tf.function(function)
        else:
            compiled = function  # Keras on torch has no graph mode of its own
        setattr(owner, attribute, compiled)
    return compiled


@contextlib.contextmanager
def floatx(dtype: str):
    """Keras computes in ``dtype`` for the duration; everything is restored afterwards.

    ``set_floatx`` alone is not enough: Keras fixes its default dtype policy the
    first time a layer asks for it (``keras/src/dtype_policies/dtype_policy.py``
    ``dtype_policy()``), so later layers would stay float32. JAX also needs its
    x64 mode for any float64 array.
    """
    import keras
    previous_floatx, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    jax_x64 = None
    if _backend() == "jax":
        import jax
        jax_x64 = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", dtype == "float64")
    try:
        yield
    finally:
        keras.config.set_floatx(previous_floatx)
        keras.config.set_dtype_policy(previous_policy)
        if jax_x64 is not None:
            jax.config.update("jax_enable_x64", jax_x64)


def check_dtype(results: dict[str, np.ndarray], label: str) -> None:
    """Keras must have answered in the floatx the case asked for (a float32 answer would pass float64 bounds on JAX)."""
    import keras
    wrong = {k: str(v.dtype) for k, v in results.items() if v.dtype != np.dtype(keras.config.floatx())}
    if wrong:
        raise AssertionError(f"{label}: Keras returned {wrong} under floatx {keras.config.floatx()}")


# Every case sets its own weights, so the initial ones do not matter: zeros skip the orthogonal
# initializer's QR (and, on JAX, a compilation for every new shape).
CHEAP_INIT = {"kernel_initializer": "zeros", "recurrent_initializer": "zeros"}


def build_keras_layers(case: LayerCase, dims: Dims):
    """Fresh Keras layers for ``case`` in the current floatx, built for (B, T, D_k)."""
    import keras
    layers = []
    for k in range(case.layers):
        rnn = keras_cell_layer(case.cell_config, dims.units[k], return_sequences=case.layer_returns_sequences(k),
                               return_state=case.return_state, go_backwards=case.go_backwards, **CHEAP_INIT)
        layer = keras.layers.Bidirectional(rnn, merge_mode=case.merge_mode) if case.bidirectional else rnn
        layer.build((dims.batch, dims.time, layer_input_features(case, dims, k)))
        layers.append(layer)
    return layers


def variable_values(layer) -> tuple[list, list]:
    """The (trainable, non-trainable) values ``stateless_call`` takes (an LSTM keeps a seed generator's state)."""
    return [v.value for v in layer.trainable_variables], [v.value for v in layer.non_trainable_variables]


class KerasStack:
    """Keras layers for one structure, callable with any weights, inputs, mask and states."""

    def __init__(self, case: LayerCase, dims: Dims):
        self.case, self.layers = case, build_keras_layers(case, dims)
        self._compiled = None

    def _eager(self, x, mask, states):
        raws, h = [], x
        for layer, layer_states in zip(self.layers, states):
            raw = layer(h, mask=mask, initial_state=layer_states)
            raws.append(raw)
            h = next_layer_input(raw)
        return raws

    def _stateless(self, values, x, mask, states):
        raws, h = [], x
        for layer, (trainable, non_trainable), layer_states in zip(self.layers, values, states):
            raw, _ = layer.stateless_call(trainable, non_trainable, h, mask=mask, initial_state=layer_states)
            raws.append(raw)
            h = next_layer_input(raw)
        return raws

    def __call__(self, weights, x, mask, states, compiled: bool | None = None) -> dict[str, np.ndarray]:
        import keras
        dtype = keras.config.floatx()
        x = x.astype(dtype)
        states = [None if s is None else [a.astype(dtype) for a in s] for s in states]
        for layer, w in zip(self.layers, weights):
            layer.set_weights(w)
        if compiled is None:
            compiled = default_compiled()
        if not compiled:
            with op_by_op():
                raws = self._eager(x, mask, states)
        elif _backend() == "jax":
            if self._compiled is None:
                import jax
                self._compiled = jax.jit(self._stateless)
            raws = self._compiled([variable_values(layer) for layer in self.layers], x, mask, states)
        else:
            raws = compile_eager(self, "_compiled_eager", self._eager)(x, mask, states)
        results = {}
        for k, raw in enumerate(raws):
            raw = [to_numpy(r) for r in raw] if isinstance(raw, (tuple, list)) else to_numpy(raw)
            results.update(name_results(self.case, k, raw))
        return results


_LAYER_CACHE: dict[tuple, KerasStack] = {}
_MODEL_CACHE: dict[tuple, KerasModel] = {}


def keras_stack(case: LayerCase, dims: Dims) -> KerasStack:
    import keras
    key = (case.structure, dims, keras.config.dtype_policy().name)
    if key not in _LAYER_CACHE:
        _LAYER_CACHE[key] = KerasStack(case, dims)  # names and layers do not depend on the mask
    return _LAYER_CACHE[key]


# ---------------------------------------------------------------- one case, both sides

def layer_parity(case: LayerCase, rng, dims: Dims = DIMS, mask=None, compiled: bool | None = None,
                 initial_output: str | None = None):
    """``(expected, actual)`` named results of one layer-level case.

    ``mask`` defaults to ``mask_array(case.mask)``; the hypothesis test passes its own.
    ``initial_output`` defaults to the convention of the backend under test
    (``divergences.initial_output``); a test passes the other one to show that it matters.
    """
    if mask is None:
        mask = mask_array(case.mask, dims.batch, dims.time)
    if initial_output is None:
        initial_output = divergences.initial_output(_backend())
    weights, states, x = draw_layer_weights(case, dims, rng), draw_states(case, dims, rng), draw_x(dims, rng)
    expected = oracle_layer(case, weights, x, mask, states, initial_output)
    actual = keras_stack(case, dims)(weights, x, mask, states, compiled=compiled)
    check_dtype(actual, case.id)
    return expected, actual


def model_input(case: ModelCase, dims: Dims, rng) -> np.ndarray:
    """Random inputs, zero at masked steps (the Masking layer's padding value), (B, T, D)."""
    x = draw_x(dims, rng)
    mask = mask_array(case.mask, dims.batch, dims.time)
    return x if mask is None else x * mask[..., None]


class KerasModel:
    """``build_model(spec)`` for one spec and floatx, callable with any weights (compiled or not)."""

    def __init__(self, spec):
        from keras_impl.models import build_model
        self.model = build_model(spec, **CHEAP_INIT)
        self._compiled = None

    def __call__(self, weights, x, compiled: bool | None = None) -> np.ndarray:
        import keras
        self.model.set_weights(weights)
        x = x.astype(keras.config.floatx())
        if compiled is None:
            compiled = default_compiled()
        if not compiled:
            with op_by_op():
                return to_numpy(self.model(x))
        if _backend() == "jax":
            if self._compiled is None:
                import jax
                self._compiled = jax.jit(lambda values, x: self.model.stateless_call(*values, x)[0])
            return to_numpy(self._compiled(variable_values(self.model), x))
        return to_numpy(compile_eager(self, "_compiled_eager", self.model)(x))


def keras_model(case: ModelCase, dims: Dims) -> KerasModel:
    import keras
    key = (case.spec(dims), keras.config.dtype_policy().name)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = KerasModel(case.spec(dims))
    return _MODEL_CACHE[key]


def model_parity(case: ModelCase, rng, dims: Dims = DIMS, compiled: bool | None = None):
    """``(expected, actual)``: the per-step probabilities of ``build_model(spec)`` and ``model_forward``."""
    spec = case.spec(dims)
    weights = [random_array(rng, shape) for shape in spec.weight_shapes()]
    x = model_input(case, dims, rng)
    expected = {"probabilities": reference.model_forward(spec, weights, x)}
    actual = {"probabilities": keras_model(case, dims)(weights, x, compiled=compiled)}
    check_dtype(actual, case.id)
    return expected, actual
