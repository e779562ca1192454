"""bilstm-lab's oracle: LSTM, GRU, SimpleRNN and Bidirectional from scratch, NumPy only, float64.

Public functions mirror the Keras layer calls (Keras's weight layout and gate
orders: i, f, c, o for LSTM, z, r, h for GRU; inputs (batch, time, features)), so that a reader can hold
one against the other. This package imports NumPy alone: a test proves it.
"""
from . import problem
from .adam import Adam
from .activations import CELL_ACTIVATIONS as ACTIVATIONS
from .activations import sigmoid
from .backward import lstm_backward, model_backward
from .bidirectional import bidirectional_forward
from .cells import Cell, CellWeights
from .gru import gru_forward
from .layers import Layer, LayerGraph, graph_forward, spec_graph
from .loss import binary_crossentropy, binary_crossentropy_grad
from .lstm import lstm_cell, lstm_forward
from .model import model_forward
from .recurrent import cell_step
from .simple_rnn import simple_rnn_forward
from .spec import MODEL_MERGE_MODES, ModelSpec, keras_init_weights, random_arrays, random_weights
from .vocabulary import CELLS, DIRECTIONS, INITIAL_OUTPUTS, MERGE_MODES
from .train import loss_and_grads, loss_grads_and_input_grad, train

__all__ = [
    "problem",
    "DIRECTIONS", "INITIAL_OUTPUTS", "MERGE_MODES", "MODEL_MERGE_MODES", "ModelSpec",
    "bidirectional_forward", "keras_init_weights", "lstm_cell", "lstm_forward", "model_forward",
    "random_arrays", "random_weights", "sigmoid",
    # a model as a list of layers (bilstm verify)
    "Layer", "LayerGraph", "graph_forward", "spec_graph",
    # every Keras recurrent cell
    "ACTIVATIONS", "CELLS", "Cell", "CellWeights", "cell_step", "gru_forward", "simple_rnn_forward",
    # training: BPTT, Keras's loss and Adam
    "Adam", "binary_crossentropy", "binary_crossentropy_grad", "loss_and_grads", "loss_grads_and_input_grad",
    "lstm_backward", "model_backward", "train",
]
