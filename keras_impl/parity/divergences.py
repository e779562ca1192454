"""Where Keras 3.15.1's backends answer differently from each other, and what the suites do about it.

1. A semantic difference the oracle models: leading masked steps.
   A layer with ``zero_output_for_mask=False`` (a plain LSTM; a Bidirectional's
   copies when ``return_sequences=False``) outputs, at a masked step, "the
   previous output". Before the row's first valid step (in processing order)
   there is none, and the backends fill it differently:

   * JAX: the carried state h0. ``keras/src/backend/jax/rnn.py`` L164-170: the
     scan's step takes ``output_tm1 = states[0]`` (the first state, h) as the
     previous output.
   * TensorFlow and torch: zeros. ``keras/src/backend/tensorflow/rnn.py``
     L337-339 (``flat_zero_output``), L362-366 (a masked step repeats
     ``prev_output``) and L391 (the loop starts ``prev_output`` at zeros);
     ``keras/src/backend/torch/rnn.py`` L253-255, L278-282 and L304-308, the same.

   After the first valid step both are the carried state, and the states
   themselves agree. The outputs differ, with a non-zero initial state, where a
   row starts with masked steps in processing order: left padding for a forward
   LSTM, right padding for ``go_backwards``, a fully masked row for both (and,
   without ``return_sequences``, that row's only output); in a stack the
   difference travels into the next layer. The oracle has both conventions
   (``reference.lstm_forward(..., initial_output="h0" | "zeros")``, the same on
   ``bidirectional_forward``); ``initial_output(backend)`` picks the backend's,
   so those cases (46 in the layer product) are asserted exactly on every
   backend, and a test shows that the other convention misses by far more than
   the bound. ``bilstm parity`` prints the difference under its table.

2. Predicted GPU-path differences (from the Keras source, not yet run on a GPU
   by this suite). ``layer_divergence``/``model_divergence`` return the reason;
   pytest turns it into a strict xfail with ``raises=AssertionError``, so a
   prediction that turns out wrong fails the suite, and ``bilstm parity``
   does not compare those configurations (it lists them with the reason).

   * JAX, cuDNN (no mask, default activations): ``keras/src/backend/jax/rnn.py``
     L330-331 flips a ``go_backwards`` output sequence back to time order,
     unlike every other path.
   * TensorFlow, cuDNN (strictly right-padded mask): the kernel writes zeros at
     padded steps (``keras/src/backend/tensorflow/rnn.py`` L968-975), where a
     plain LSTM outputs the previous output.
"""
from __future__ import annotations

import numpy as np

from keras_impl.parity.cases import LayerCase, ModelCase, mask_array

INITIAL_OUTPUT = {"jax": "h0", "numpy": "h0", "tensorflow": "zeros", "torch": "zeros"}
LEADING_MASK_SEMANTICS = (
    "leading masked steps (a row's masked steps before its first valid one, with a non-zero initial state): "
    "Keras on JAX outputs h0 (keras/src/backend/jax/rnn.py L164-170, output_tm1 = states[0]), "
    "on TensorFlow and torch 0 (keras/src/backend/tensorflow/rnn.py L337-339, L362-366, L391; "
    "keras/src/backend/torch/rnn.py L253-255, L278-282, L304-308); the oracle models both "
    "(initial_output='h0' | 'zeros') and is checked in each backend's own convention")


def initial_output(backend: str) -> str:
    """The oracle's ``initial_output`` that reproduces Keras 3.15.1 on ``backend`` (see the module docstring, 1).

    "h0" on JAX (and numpy), "zeros" on TensorFlow and torch.
    """
    if backend not in INITIAL_OUTPUT:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(sorted(INITIAL_OUTPUT))}")
    return INITIAL_OUTPUT[backend]


JAX_CUDNN_BACKWARDS_REASON = (
    "Keras 3.15.1 JAX cuDNN path flips a go_backwards output sequence back to time order "
    "(keras/src/backend/jax/rnn.py L330-331); every other path returns processing order")
TF_CUDNN_RIGHT_PADDING_REASON = (
    "Keras 3.15.1 TensorFlow cuDNN path outputs 0 at right-padded steps (keras/src/backend/tensorflow/rnn.py "
    "L968-975) where a plain LSTM outputs the previous output")


def _layer_zero_outputs(case: LayerCase, k: int) -> bool:
    """zero_output_for_mask of layer k: Bidirectional forces it to return_sequences; a plain LSTM keeps False."""
    return case.bidirectional and case.layer_returns_sequences(k)


def leading_mask_matters(case: LayerCase, mask: np.ndarray | None = None) -> bool:
    """Whether a non-zero initial state meets a leading masked step in an output that is compared,
    so that the two conventions of ``initial_output`` give different results.

    ``mask`` (B, T) defaults to ``mask_array(case.mask)``.
    """
    mask = mask_array(case.mask) if mask is None and case.mask != "none" else mask
    if not case.initial_state or mask is None:
        return False
    first_valid = mask[:, -1] if case.go_backwards else mask[:, 0]  # processing order is reversed for go_backwards
    leading = bool(np.any(~first_valid))
    fully_masked_row = bool(np.any(~mask.any(axis=1)))
    for k in range(case.layers):
        if _layer_zero_outputs(case, k):
            continue
        if case.layer_returns_sequences(k) and leading:
            return True
        if not case.layer_returns_sequences(k) and fully_masked_row:  # the only output of a row never valid
            return True
    return False


def layer_divergence(case: LayerCase, backend: str, device: str = "cpu") -> str | None:
    """The reason Keras on ``backend``/``device`` is predicted to differ from the oracle in ``case``, else None.

    Only the GPU paths: the leading-masked-step difference is modelled by the oracle, not predicted here.
    """
    if not case.cell_config.fast_lstm:  # module docstring, 2: predicted for the default LSTM only
        return None
    on_gpu = device != "cpu"
    if on_gpu and backend == "jax" and case.mask == "none" and case.go_backwards and not case.bidirectional:
        if any(case.layer_returns_sequences(k) for k in range(case.layers)):
            return JAX_CUDNN_BACKWARDS_REASON
    if on_gpu and backend == "tensorflow" and case.mask == "right" and not case.bidirectional \
            and not case.go_backwards and any(case.layer_returns_sequences(k) for k in range(case.layers)):
        return TF_CUDNN_RIGHT_PADDING_REASON
    return None


def model_divergence(case: ModelCase, backend: str, device: str = "cpu") -> str | None:
    """Model level: zero initial states, so only the GPU paths can diverge."""
    if not case.spec().cell_config.fast_lstm:
        return None
    on_gpu = device != "cpu"
    if on_gpu and backend == "jax" and case.mask == "none" and case.direction == "backward":
        return JAX_CUDNN_BACKWARDS_REASON
    if on_gpu and backend == "tensorflow" and case.mask == "right" and case.direction == "forward":
        return TF_CUDNN_RIGHT_PADDING_REASON
    return None


def xfail_params(cases, divergence, backend: str, device: str) -> list:
    """``pytest.param`` per case, id = ``case.id``, a strict xfail where ``divergence`` names a reason.

    ``raises=AssertionError``: only a numeric mismatch is the predicted failure; a crash is not.
    """
    import pytest  # here, not at the top: ``bilstm parity`` uses this module without pytest
    params = []
    for case in cases:
        reason = divergence(case, backend, device)
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


JAX_FLOAT64_SIMPLE_RNN_SCAN_REASON = (
    "Keras 3.15.1 on JAX, float64: without a mask the RNN scan's step returns the SimpleRNN cell's state as the "
    "cell computed it (keras/src/backend/jax/rnn.py L183-185), in float32 because Keras's type promotion demotes "
    "float64 (keras/src/backend/common/dtypes.py L276, BIT64_TO_BIT32_DTYPE), and lax.scan (L198) refuses a float64 "
    "carry that comes back float32: TypeError. A mask hides it (the masked step's where() promotes back); "
    "jax.disable_jit (the suite's eager CPU path) too; LSTM and GRU keep float64 carries")


def jax_float64_scan_crash(cell: str, masked: bool, backend: str, dtype: str, traced: bool) -> str | None:
    """The reason Keras crashes in this configuration (upstream bug, not a numeric difference), else None.

    ``traced``: Keras's loop runs under a JAX trace (jit, value_and_grad, fit), not op by op.
    """
    if backend == "jax" and dtype == "float64" and cell == "simple_rnn" and not masked and traced:
        return JAX_FLOAT64_SIMPLE_RNN_SCAN_REASON
    return None
