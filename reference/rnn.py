"""Keras's RNN loop, for every cell: the time loop with masking, ``go_backwards`` and the two
leading-mask conventions, its BPTT, and the checked layer call. A cell brings only its ``step``
and ``step_grad`` (``reference/lstm.py``, ``gru.py``, ``simple_rnn.py``).

The loop, with ``m_t = mask[:, t]`` (1 where the step is valid), in processing order:

    s'      = step(x_t, s)                     the cell's states leaving step t (h first)
    s_t     = m_t s' + (1 - m_t) s_{t-1}       a masked row carries its states unchanged
    out_t   = h_t                              no mask, or mask[b, t]
            = 0                                masked, zero_output_for_mask
            = h_t (= the carried state)        masked, seen[b, t]
            = h0, or 0 with "zeros"            masked, not seen[b, t]

where ``seen[b, t]`` = "row b has a valid step at or before t (processing order)". Before a
row's first valid step there is no previous output, and Keras 3.15.1's backends disagree on
what stands in for it; ``initial_output`` chooses (source lines in docs/oracle.md):

    initial_output="h0"     the initial state h0 (the default; Keras on JAX, whose scan takes the
                            first state as the previous output: keras/src/backend/jax/rnn.py
                            L164-170, output_tm1 = states[0])
    initial_output="zeros"  zeros (Keras on TensorFlow and torch, whose loops start the previous
                            output at zeros: keras/src/backend/tensorflow/rnn.py L337-339, L362-366
                            and L391; keras/src/backend/torch/rnn.py L253-255, L278-282 and L304-308)

A fully masked row is never seen: its every output (and, without return_sequences, its only one)
is h0 or 0, while its final states are its initial ones under both conventions. The states never
depend on the convention.

``go_backwards=True`` reads the input (and the mask) from the last step to the first and returns
the outputs in processing order: ``out[:, k]`` is the state after reading ``x[T-1] ... x[T-1-k]``.
One loop serves both directions: flip, run, flip ``dx`` back in BPTT.

BPTT, from t = T-1 down to 0, with ``ds`` the gradients of the states leaving step t (zero after the last):

    dh     += dout_t            (times 0 where the output is the constant 0 above)
    ds'     = m_t ds            what reaches the step
    dxp_t, dR, d b_rec, ds_in = step_grad(ds')
    ds      = ds_in + (1 - m_t) ds                        a masked row passes its gradients straight through
    dW = sum_t x_t^T dxp_t,  db_in = sum_t dxp_t,  dx_t = dxp_t W^T        (at once, after the loop)

``xp = x_t W + b_in`` is the input half of a step, computed for every step at once. The LSTM with
Keras's default options takes the fused loop of ``reference/lstm_fused.py`` instead of the literal
one (the same equations, fewer calls); ``run`` below is the one place that chooses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

import reference.gru_inference as gru_inference
from .lstm_fused import backward as fused_backward
from .lstm_fused import run as fused_run
from ._checks import as_float64, as_mask, check_choice, check_flag
from .cells import Cell, CellWeights, check_cell_weights, split_bias
from .products import last_axis_product
from .vocabulary import INITIAL_OUTPUTS


class Steps(NamedTuple):
    """A cell's step and its derivative (the signatures in ``reference/lstm.py``)."""
    step: Callable
    step_grad: Callable


@dataclass
class RNNCache:
    """What ``run`` keeps for ``backward``: its options, x and mask in processing order, and the tape
    of the loop that ran (``backward`` is that loop's own BPTT)."""
    cell: Cell
    x: np.ndarray                   # (B, T, D), flipped for go_backwards
    mask: np.ndarray | None         # (B, T), flipped likewise
    go_backwards: bool
    zero_output_for_mask: bool
    initial_output: str
    tape: object = None
    backward: Callable = field(default=None, repr=False)


def state_outputs(mask: np.ndarray | None, zero_output_for_mask: bool, initial_output: str) -> np.ndarray | None:
    """(B, T) booleans in processing order: True where the output is the state h_t, False where it is 0.

    None when every output is the state (no mask, or ``initial_output="h0"`` without
    ``zero_output_for_mask``: a masked step then outputs the carried state, h0 before any valid step).
    """
    if mask is None:
        return None
    if zero_output_for_mask:
        return mask
    if initial_output == "zeros":
        return np.logical_or.accumulate(mask, axis=1)  # seen: a valid step at or before t
    return None


def run(cell: Cell, steps: Steps, x, weights: CellWeights, states, mask=None, *, go_backwards=False,
        zero_output_for_mask=False, initial_output="h0", keep_cache=True, fused=None):
    """One recurrent layer's time loop on checked arrays (float64, or float32 throughout).

    Args:
        weights: the direction's ``CellWeights``; states: a tuple in ``cell.state_names`` order, each (B, U).
        fused: None chooses (the fused LSTM loop for ``cell.fast_lstm``; without ``keep_cache`` the in-place
            GRU loop of ``reference/gru_inference.py`` for Keras's default GRU; else the literal one); True or
            False forces the fused LSTM loop or the literal one (the tests hold them against each other).
    Returns:
        ``(outputs (B, T, U) in processing order, final states (tuple), RNNCache or None without keep_cache)``.
    """
    if go_backwards:
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    if fused is None:
        fused = cell.fast_lstm
        if not keep_cache and gru_inference.serves(cell):
            fused = None  # the in-place GRU loop: the literal loop's operations, without a tape
    loop, loop_backward = ((fused_run, fused_backward) if fused else (_literal_loop, _literal_backward)
                           if fused is False else (gru_inference.run, None))
    carried, final, tape = loop(cell, steps, x, weights, tuple(states), mask, keep_cache)  # carried (T, B, U)
    shown = state_outputs(mask, zero_output_for_mask, initial_output)
    outputs = carried if shown is None else np.where(shown.T[..., None], carried, 0.0)
    cache = RNNCache(cell, x, mask, go_backwards, zero_output_for_mask, initial_output, tape,
                     loop_backward) if keep_cache else None
    return outputs.transpose(1, 0, 2), final, cache


def backward(cache: RNNCache, weights: CellWeights, dout):
    """BPTT through one ``run`` whose initial states are constants.

    Args:
        weights: as the forward used them; dout: (B, T, U) gradient by the outputs, in processing order.
    Returns:
        ``(grads, dx)``: ``CellWeights`` of gradients (bias None without one) and dx (B, T, D) in time order.
    """
    dcarried = np.ascontiguousarray(dout.transpose(1, 0, 2), dtype=cache.x.dtype)  # (T, B, U)
    shown = state_outputs(cache.mask, cache.zero_output_for_mask, cache.initial_output)
    if shown is not None:
        dcarried *= shown.T[..., None]  # no gradient reaches an output that is the constant 0
    grads, dx = cache.backward(cache.cell, cache.x, cache.mask, cache.tape, weights, dcarried)
    return grads, (dx[:, ::-1] if cache.go_backwards else dx)


# ---------------------------------------------------------------- the literal loop: one step call a step

def _literal_loop(cell, steps, x, weights, states, mask, keep_cache):
    b_in, b_rec = split_bias(cell, weights.bias)
    xp = last_axis_product(x, weights.kernel)  # (B, T, G U): every step's input half
    if b_in is not None:
        xp = xp + b_in  # (not in place: a float64 bias promotes a float32 product, as before)
    T = x.shape[1]
    records = [] if keep_cache else None
    carried = np.empty((T,) + states[0].shape)  # h leaving each step (the carried one at masked steps)
    for t in range(T):
        new_states, record = steps.step(cell, xp[:, t], states, weights.recurrent_kernel, b_rec)
        if mask is not None:
            m = mask[:, t, None]
            new_states = tuple(np.where(m, new, old) for new, old in zip(new_states, states))
        if keep_cache:
            records.append((states, record))
        states = new_states
        carried[t] = states[0]
    return carried, states, (steps, records)


def _literal_backward(cell, x, mask, tape, weights, dcarried):
    steps, records = tape
    T = len(records)
    m_all = None if mask is None else mask.T[..., None].astype(dcarried.dtype)  # (T, B, 1)
    d_states = tuple(np.zeros_like(s) for s in records[0][0])
    dxp = np.empty((T,) + dcarried.shape[1:2] + (weights.kernel.shape[1],))  # (T, B, G U)
    d_recurrent = np.zeros_like(weights.recurrent_kernel)
    d_rec_bias = None
    for t in range(T - 1, -1, -1):
        d_states = (d_states[0] + dcarried[t],) + d_states[1:]
        d_in = d_states if m_all is None else tuple(m_all[t] * d for d in d_states)
        dxp[t], dR, db_rec, d_prev = steps.step_grad(cell, records[t][1], d_in, weights.recurrent_kernel)
        d_recurrent += dR
        if db_rec is not None:
            d_rec_bias = db_rec if d_rec_bias is None else d_rec_bias + db_rec
        if m_all is not None:
            d_prev = tuple(p + (1.0 - m_all[t]) * d for p, d in zip(d_prev, d_states))
        d_states = d_prev
    flat = dxp.reshape(T * dxp.shape[1], -1)
    x_rows = x.transpose(1, 0, 2).reshape(flat.shape[0], -1)  # (T B, D), rows in dxp's order
    d_bias = None
    if cell.use_bias:
        d_in_bias = flat.sum(axis=0)
        d_bias = np.stack([d_in_bias, d_rec_bias]) if cell.kind == "gru" and cell.reset_after else d_in_bias
    dx = (dxp @ weights.kernel.T).transpose(1, 0, 2)  # (B, T, D), processing order
    return CellWeights(x_rows.T @ flat, d_recurrent, d_bias), dx


# ---------------------------------------------------------------- the checked layer call

def check_initial_output(initial_output) -> None:
    if not isinstance(initial_output, str):
        raise TypeError(f"initial_output must be one of {INITIAL_OUTPUTS}, got {type(initial_output).__name__}")
    check_choice("initial_output", initial_output, INITIAL_OUTPUTS)


def check_states(initial_state, count, batch, units, names):
    """``count`` initial states, each (batch, units); None gives zeros."""
    if initial_state is None:
        return [np.zeros((batch, units)) for _ in range(count)]
    if isinstance(initial_state, np.ndarray) or not isinstance(initial_state, (list, tuple)):
        raise TypeError(f"initial_state must be a list of {count} arrays [{', '.join(names)}], got {type(initial_state).__name__}")
    if len(initial_state) != count:
        raise ValueError(f"initial_state must hold {count} arrays [{', '.join(names)}], got {len(initial_state)}")
    return [as_float64(f"initial_state[{k}] ({n})", s, shape=(batch, units)) for k, (s, n) in enumerate(zip(initial_state, names))]


def check_input(x):
    x = as_float64("x", x, ndim=3)
    if 0 in x.shape:
        raise ValueError(f"x must be a non-empty (batch, time, features) array, got shape {x.shape}")
    return x


def layer_call(cell: Cell, steps: Steps, x, weights, *, initial_state=None, mask=None, go_backwards=False,
               return_sequences=False, return_state=False, zero_output_for_mask=False, initial_output="h0",
               keep_cache=False):
    """Keras's ``<Cell layer>(U, ...)(x, initial_state=..., mask=...)``: checks every argument, then runs.

    ``weights``: ``(kernel, recurrent_kernel, bias)``, bias None for ``use_bias=False``.
    Returns the output ((B, T, U) or (B, U)), with ``return_state`` followed by the final states;
    with ``keep_cache`` the pair ``(that, RNNCache)``.
    """
    go_backwards, return_sequences, return_state, zero_output_for_mask = (
        check_flag(n, v) for n, v in (("go_backwards", go_backwards), ("return_sequences", return_sequences),
                                      ("return_state", return_state), ("zero_output_for_mask", zero_output_for_mask)))
    check_initial_output(initial_output)
    x = check_input(x)
    B, T, D = x.shape
    weights = check_cell_weights(cell, *weights, features=D)
    states = check_states(initial_state, len(cell.state_names), B, weights.recurrent_kernel.shape[0], cell.state_names)
    mask = as_mask(mask, B, T)
    outputs, final, cache = run(cell, steps, x, weights, states, mask, go_backwards=go_backwards,
                                zero_output_for_mask=zero_output_for_mask, initial_output=initial_output,
                                keep_cache=keep_cache)
    output = outputs if return_sequences else outputs[:, -1]
    result = (output, *final) if return_state else output
    return (result, cache) if keep_cache else result
