"""``keras_impl.keras_compat``: the one door to Keras's private API, checked directly.

The training loops reach ``Model._symbolic_build`` and keep compiled programs
in ``model.__dict__`` only through this module; it must refuse a Keras other
than the pinned one, and fail loudly (not with an AttributeError deep in a
loop) when the private method it relies on is gone.
"""
from __future__ import annotations

import numpy as np
import pytest

from keras_impl import keras_compat
from keras_impl.keras_compat import KerasCompatibilityError
from reference import ModelSpec


def test_the_pinned_keras_is_installed_and_accepted():
    import keras
    assert keras.version() == keras_compat.PINNED_KERAS
    assert keras_compat.check_keras_version() == keras_compat.PINNED_KERAS


def test_another_keras_version_is_refused_with_the_version_found(monkeypatch):
    import keras
    monkeypatch.setattr(keras, "version", lambda: "3.99.0")
    with pytest.raises(KerasCompatibilityError, match=r"found keras 3\.99\.0: pip install keras==3\.15\.1"):
        keras_compat.check_keras_version()
    with pytest.raises(KerasCompatibilityError, match="found keras 3.99.0"):
        keras_compat.symbolic_build(object(), data_batch=None)  # refused before it touches the model


def test_symbolic_build_without_the_private_method_raises_a_compatibility_error():
    class RenamedModel:  # a Model of a Keras where _symbolic_build was renamed
        pass
    with pytest.raises(KerasCompatibilityError, match=r"keras.Model._symbolic_build is gone"):
        keras_compat.symbolic_build(RenamedModel(), data_batch=None)


def test_symbolic_build_creates_the_variables_fit_would_create():
    from keras_impl.models import build_model
    spec = ModelSpec(timesteps=5, features=2, units=3, direction="forward")
    model = build_model(spec)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    assert not model.optimizer.built
    x, y = np.zeros((1, 5, 2), np.float32), np.zeros((1, 5, 1), np.float32)
    keras_compat.symbolic_build(model, data_batch=(x, y, None))
    assert model.optimizer.built and "accuracy" in model.get_metrics_result()
    assert int(model.optimizer.iterations.numpy()) == 0  # built, not trained


def test_program_cache_is_one_dict_a_name_on_the_model():
    class Model:
        pass
    model, other = Model(), Model()
    cache = keras_compat.program_cache(model, "jax")
    cache["scan"] = "compiled"
    assert keras_compat.program_cache(model, "jax") is cache
    assert keras_compat.program_cache(model, "tensorflow") == {}
    assert keras_compat.program_cache(other, "jax") == {}
    assert set(vars(model)) == {"_bilstm_programs"}  # one private attribute, whatever the names


def test_no_other_product_module_touches_the_private_api():
    """``_symbolic_build`` and ``model.__dict__`` appear in keras_compat.py only (read from the source)."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    offenders = [f"{path.relative_to(root)}:{k}" for package in ("keras_impl", "benchmarks")
                 for path in sorted((root / package).rglob("*.py")) if path.name != "keras_compat.py"
                 for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if "_symbolic_build" in line or ".__dict__" in line]
    assert offenders == [], "private Keras API outside keras_impl/keras_compat.py"
