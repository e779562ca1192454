"""What every recurrent layer's time loop shares, whatever its cell: the logistic, which outputs
are the state and which are 0 under a mask (``state_outputs``), and the checks of the loop's
arguments. ``reference/lstm.py`` explains the masking rules; ``reference/cells.py`` and
``reference/lstm.py`` both build on this module, which imports neither.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_float64, check_choice


def sigmoid(z: np.ndarray) -> np.ndarray:
    # Written through tanh so that it never overflows: sigmoid(z) = (1 + tanh(z/2)) / 2.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


INITIAL_OUTPUTS = ("h0", "zeros")


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
