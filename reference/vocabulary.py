"""The oracle's words, each defined once: the cells, the Bidirectional merge modes, a model's directions,
and the two conventions for a masked step's output before a row's first valid step.
"""
CELLS = ("lstm", "gru", "simple_rnn")
# Keras's Bidirectional merge modes, in Keras's documentation order. ``None`` (the pair of halves, not
# merged) is a merge mode of ``bidirectional_forward`` too, but not of a model: a Dense head takes one tensor.
MERGE_MODES = ("concat", "sum", "ave", "mul")
DIRECTIONS = ("forward", "backward", "bidirectional")
INITIAL_OUTPUTS = ("h0", "zeros")  # reference/rnn.py: what a masked step outputs before the first valid one
