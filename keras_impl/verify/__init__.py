"""``bilstm verify``: a user's model file, read into the oracle's layer list and checked layer by layer.

    load.py      the file, through Keras's own loaders (safe mode), after a scan of its config that
                 refuses unsupported layers before any of them is deserialized
    describe.py  the loaded Keras model -> ``reference.layers.LayerGraph`` (refusing, by name,
                 any layer or option the oracle does not implement)
    inputs.py    inputs drawn to fit the model, or the user's, checked
    compare.py   every layer's output, Keras (one sub-model) against the oracle, and the report
"""
