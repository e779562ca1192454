"""Every cell by name: its ``Steps`` (``reference/lstm.py``, ``gru.py``, ``simple_rnn.py``), one step of it
(``cell_step``), and one recurrent layer of it on checked arrays (``run_cell``, ``reference/rnn.py``'s loop).
"""
from __future__ import annotations

from .gru import STEPS as GRU_STEPS
from .lstm import STEPS as LSTM_STEPS
from .rnn import layer_call as rnn_layer_call
from .rnn import run as rnn_run
from .simple_rnn import STEPS as SIMPLE_RNN_STEPS
from .cells import Cell, CellWeights, split_bias

STEPS = {"lstm": LSTM_STEPS, "gru": GRU_STEPS, "simple_rnn": SIMPLE_RNN_STEPS}


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
    return rnn_run(cell, STEPS[cell.kind], x, CellWeights(*weights), states, mask, **options)


def layer_call(cell: Cell, x, weights, **options):
    """``reference.rnn.layer_call`` for ``cell``: the checked Keras layer call."""
    return rnn_layer_call(cell, STEPS[cell.kind], x, weights, **options)
