"""pytest's warning filters (pyproject.toml): warnings are errors, and only named third-party noise is not.

A filter that silenced every UserWarning from ``keras.*`` would also silence the
warnings Keras gives at run time about how it is used, which the suite must see.
"""
from __future__ import annotations

import re
import warnings

import pytest


def test_a_runtime_keras_user_warning_is_an_error():
    # keras/src/layers/core/dense.py warns (UserWarning) when a layer is given input_shape.
    import keras
    with pytest.raises(UserWarning, match="input_shape"):
        keras.layers.Dense(2, input_shape=(3,))


def test_a_deprecation_or_future_warning_from_keras_is_an_error():
    # The same holds for the categories the old filters ignored wholesale from keras/tensorflow/jax/torch.
    for category in (DeprecationWarning, FutureWarning):
        with pytest.raises(category):
            warnings.warn_explicit("a runtime warning", category, "keras/src/some_module.py", 1, module="keras.src.some_module")


def test_every_ignore_filter_names_a_message_and_a_module(pytestconfig):
    """No filter ignores a whole category of a package: each names the message it silences and where from."""
    filters = pytestconfig.getini("filterwarnings")
    assert filters[0] == "error"
    for entry in filters[1:]:
        action, message, category, module = (entry.split(":", 4) + [""] * 4)[:4]
        assert action == "ignore", entry
        assert message.strip() and module.strip(), f"an ignore filter must name a message and a module: {entry}"
        assert category.strip() != "UserWarning", f"runtime UserWarnings must stay errors: {entry}"
        re.compile(module)  # a valid module pattern
