"""``bilstm verify``: a user's model file, read into the oracle's layer list and checked layer by layer.

    api.py          ``verify(path, *, batch, timesteps, inputs, dtype, seed, float_model) -> VerifyReport``: the API the
                    command calls (importing this package imports no framework)
    report.py       ``VerifyReport``: printable (the command's table) and JSON-serialisable
    load.py         the file, through Keras's own loaders (safe mode), after its config is read (config_file.py:
                    bounded size, ratio and depth), checked for its structure (structure.py), scanned for
                    unsupported layers (and reduced precision, found by name), and its memory estimated (budget.py)
    describe.py     the loaded Keras model -> ``reference.layers.LayerGraph`` (refusing, by name,
                    any layer or option the oracle does not implement)
    inputs.py       inputs drawn to fit the model, or the user's, checked
    compare.py      every layer's output, Keras (one sub-model) against the oracle, and the table
    precision.py    a 16-bit or quantized model: each layer's weights' and arithmetic's errors, in ulps or steps
                    (precision_report.py: its report; dequantize.py: the weights Keras computes with)
    errors.py       ``VerifyRefusal``: the model cannot be verified (a ``UsageError``: one line, exit status 2)
"""
from .api import verify
from .errors import VerifyRefusal
from .report import VerifyReport

__all__ = ["verify", "VerifyReport", "VerifyRefusal"]
