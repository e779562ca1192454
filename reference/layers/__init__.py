"""A model as a list of layers and its forward pass (NumPy, float64): the one path ``model_forward``, training
and ``bilstm verify`` run.

    graph.py        Layer, LayerGraph, layer_forward, graph_forward (and the TimeDistributed wrapper)
    outputs.py      Outputs (a layer's several outputs), tensor_ref and layer_of (the references naming them)
    registry.py     the one table of kinds: Keras's class name -> forward, gathered from the families
    core.py         InputLayer, Masking, Embedding, Dense, Activation
    rnn.py          LSTM, GRU, SimpleRNN, Bidirectional
    convolutional.py Conv1D/2D/3D, SeparableConv, DepthwiseConv, Conv1D/2DTranspose (one ``convolve``)
    conv_lstm.py    ConvLSTM1D/2D/3D
    regularization.py, pooling.py, reshaping.py, merging.py, normalization.py, activations.py
                    the rest, in Keras's layout
    attention.py    Attention, AdditiveAttention, MultiHeadAttention
    spec_graph.py   the LayerGraph of a ``reference.ModelSpec``
"""
from ..activations import LAYER_ACTIVATIONS as ACTIVATIONS  # what a Dense may use: keras_impl.verify reads it here
from .graph import Layer, LayerGraph, graph_forward, layer_forward
from .outputs import Outputs, layer_of, tensor_ref
from .registry import KINDS, family_of
from .rnn import CELL_KINDS, RECURRENT_KINDS
from .spec_graph import spec_graph

__all__ = ["ACTIVATIONS", "CELL_KINDS", "KINDS", "RECURRENT_KINDS", "Layer", "LayerGraph", "Outputs", "family_of",
           "graph_forward", "layer_forward", "layer_of", "spec_graph", "tensor_ref"]
