"""The parity machinery: the oracle and Keras fed the same weights, their results compared by name.

``bilstm parity`` runs it as a table; ``parity_tests/`` runs it under pytest.
Nothing here imports Keras at import time (the command sets the backend first).

    cases            the configurations (layer product, model product), with readable ids
    harness          the template: draw weights, run both sides, name and compare results
    divergences      where Keras 3.15.1's backends answer differently (modelled, or predicted on a GPU), and why
    tolerances       every bound, named by situation, and the one lookup ``bound(what, dtype, backend)``
    compare          the one comparison of named results (absolute or relative error)
    rows             a row of the table and its verdict
    checks           the layer and model sections of the table
    training_checks  gradients and Adam trajectories, both sides
"""
