"""One recurrent layer of any cell, on checked arrays: the LSTM's fast loop where it applies, else the generic one.

``reference/lstm.py`` (``run_lstm``) serves the LSTM with Keras's default options;
``reference/cells.py`` (``run_generic``) every other cell and option set. The
two share the masking rules (``reference/_loop.py``); a test holds the generic
LSTM against the fast loop.
"""
from __future__ import annotations

from .cells import Cell, run_generic
from .lstm import run_lstm


def run_cell(cell: Cell, x, weights, states, mask=None, *, go_backwards=False, zero_output_for_mask=False,
             initial_output="h0", keep_cache=True):
    """One recurrent layer's time loop on checked arrays.

    Args:
        weights: ``(kernel, recurrent_kernel, bias)``, bias None without use_bias.
        states: a tuple in ``cell.state_names`` order, each (B, U).
    Returns:
        ``(outputs (B, T, U) in processing order, final states (tuple), cache)``: an
        ``LSTMCache`` for the default LSTM, a ``CellCache`` otherwise, None without keep_cache.
    """
    kernel, recurrent_kernel, bias = weights
    if cell.fast_lstm:
        outputs, h, c, cache = run_lstm(x, kernel, recurrent_kernel, bias, *states, mask, go_backwards=go_backwards,
                                        zero_output_for_mask=zero_output_for_mask, initial_output=initial_output,
                                        keep_cache=keep_cache)
        return outputs, (h, c), cache
    return run_generic(cell, x, kernel, recurrent_kernel, bias, tuple(states), mask, go_backwards,
                       zero_output_for_mask, initial_output, keep_cache)
