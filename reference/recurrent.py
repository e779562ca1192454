"""Every cell by name: its ``Steps`` (``reference/lstm.py``, ``gru.py``, ``simple_rnn.py``), one step of it
(``cell_step``), and one recurrent layer of it on checked arrays (``run_cell``, ``reference/rnn.py``'s loop).
"""
from __future__ import annotations

from . import gru, lstm, rnn, simple_rnn
from .cells import Cell, CellWeights, split_bias

STEPS = {"lstm": lstm.STEPS, "gru": gru.STEPS, "simple_rnn": simple_rnn.STEPS}


def cell_step(cell: Cell, x_t, states, kernel, recurrent_kernel, bias):
    """One step of ``cell`` (no mask): ``states`` in, states out, as a tuple in ``cell.state_names`` order."""
    b_in, b_rec = split_bias(cell, bias)
    xp = x_t @ kernel if b_in is None else x_t @ kernel + b_in
    new_states, _ = STEPS[cell.kind].step(cell, xp, tuple(states), recurrent_kernel, b_rec)
    return new_states


def run_cell(cell: Cell, x, weights, states, mask=None, **options):
    """``reference.rnn.run`` for ``cell``: ``(outputs (B, T, U) in processing order, final states, RNNCache)``.

    ``weights``: ``(kernel, recurrent_kernel, bias)``; ``options``: ``rnn.run``'s keywords.
    """
    return rnn.run(cell, STEPS[cell.kind], x, CellWeights(*weights), states, mask, **options)


def layer_call(cell: Cell, x, weights, **options):
    """``reference.rnn.layer_call`` for ``cell``: the checked Keras layer call."""
    return rnn.layer_call(cell, STEPS[cell.kind], x, weights, **options)
