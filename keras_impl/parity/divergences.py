"""Which parity cases Keras 3.15.1 itself answers differently on some backends, and why.

The oracle follows the JAX and numpy backends. Each function returns the reason
(naming the Keras source) when ``case`` diverges on ``backend``/``device``, else
None; the tests turn a reason into ``pytest.mark.xfail(strict=True, reason=...)``,
so a divergence that disappears (a Keras upgrade, a wrong prediction here)
fails the suite as loudly as a new one.

Leading masked steps with a non-zero initial state (CPU, measured: exactly the
46 layer cases this predicts fail on TensorFlow and torch, none on JAX).
A layer with ``zero_output_for_mask=False`` (a plain LSTM; a Bidirectional's
copies when ``return_sequences=False``) outputs, at a masked step, "the previous
output". Before the first valid step there is none: JAX uses the carried state
``h0`` (``keras/src/backend/jax/rnn.py`` L166-170, ``output_tm1 = states[0]``),
TensorFlow and torch start from zeros (``keras/src/backend/tensorflow/rnn.py``
L335-339 and L391, ``flat_zero_output`` as the first ``prev_output``;
``keras/src/backend/torch/rnn.py`` L252-254 and L304-307). The outputs differ
where a row starts, in processing order, with masked steps: left padding for a
forward LSTM, right padding for ``go_backwards``, a fully masked row for both
(and, without ``return_sequences``, that row's only output). States agree.
In a stack the difference travels: a ``go_backwards`` layer hands its outputs
on in processing order while the next layer reads the mask in time order, so
the next layer reads some of the differing outputs at valid steps.

GPU paths (from the Keras source and ../shared/KERAS_SEMANTICS.md, not yet run
on a GPU by this suite; a wrong prediction shows as a strict-xfail failure):
* JAX, cuDNN (no mask, default activations): ``keras/src/backend/jax/rnn.py``
  L330-331 flips a ``go_backwards`` output sequence back to time order, unlike
  every other path.
* TensorFlow, cuDNN (strictly right-padded mask): the kernel writes zeros at
  padded steps (``keras/src/backend/tensorflow/rnn.py`` L968-975), where a plain
  LSTM outputs the previous output.
"""
from __future__ import annotations

import numpy as np

from keras_impl.parity.cases import LayerCase, ModelCase, mask_array

LEADING_MASK_REASON = (
    "Keras 3.15.1, leading masked steps with a non-zero initial_state: TF/torch output 0 "
    "(keras/src/backend/tensorflow/rnn.py L335-339,L391; keras/src/backend/torch/rnn.py L252-254,L304-307), "
    "JAX and the oracle output h0 (keras/src/backend/jax/rnn.py L166-170)")
JAX_CUDNN_BACKWARDS_REASON = (
    "Keras 3.15.1 JAX cuDNN path flips a go_backwards output sequence back to time order "
    "(keras/src/backend/jax/rnn.py L330-331); every other path returns processing order")
TF_CUDNN_RIGHT_PADDING_REASON = (
    "Keras 3.15.1 TensorFlow cuDNN path outputs 0 at right-padded steps (keras/src/backend/tensorflow/rnn.py "
    "L968-975) where a plain LSTM outputs the previous output")


def _layer_zero_outputs(case: LayerCase, k: int) -> bool:
    """zero_output_for_mask of layer k: Bidirectional forces it to return_sequences; a plain LSTM keeps False."""
    return case.bidirectional and case.layer_returns_sequences(k)


def leading_mask_diverges(case: LayerCase, mask: np.ndarray | None = None) -> bool:
    """Whether a non-zero initial state meets a leading masked step in an output that is compared.

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


def layer_divergence(case: LayerCase, backend: str, device: str = "cpu", mask: np.ndarray | None = None) -> str | None:
    if backend in ("tensorflow", "torch") and leading_mask_diverges(case, mask):
        return LEADING_MASK_REASON
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
    on_gpu = device != "cpu"
    if on_gpu and backend == "jax" and case.mask == "none" and case.direction == "backward":
        return JAX_CUDNN_BACKWARDS_REASON
    if on_gpu and backend == "tensorflow" and case.mask == "right" and case.direction == "forward":
        return TF_CUDNN_RIGHT_PADDING_REASON
    return None


def xfail_params(cases, divergence, backend: str, device: str) -> list:
    """``pytest.param`` per case, id = ``case.id``, a strict xfail where ``divergence`` names a reason."""
    import pytest  # here, not at the top: ``bilstm parity`` uses this module without pytest
    params = []
    for case in cases:
        reason = divergence(case, backend, device)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params
