"""The one error of ``bilstm verify``'s model reading: the model cannot be verified, in one line (exit status 2)."""
from __future__ import annotations

from keras_impl.options import UsageError


class VerifyRefusal(UsageError):
    """The model cannot be verified: one line that says why (exit status 2). A user's input caused it (the file,
    the batch or timesteps asked for), so it is a ``UsageError``, which every command reports in one line."""
