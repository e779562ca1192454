"""The benchmark's kernel-path probe (private Keras API, behind ``keras_impl.keras_compat``).

A probe whose target Keras renamed or removed must raise, not report every run as "generic".
"""
from __future__ import annotations

import importlib

import pytest

from keras_impl.keras_compat import KERNEL_PROBE_TARGETS, KernelProbe, KerasCompatibilityError


def own_targets(backend: str) -> list[tuple[str, str]]:
    """The targets a probe installs on ``backend`` (another backend's module is left alone)."""
    return [(m, n) for m, n in KERNEL_PROBE_TARGETS
            if not m.startswith("keras.src.backend.") or m.split(".")[3] == backend]


def originals(backend: str) -> dict:
    return {(m, n): getattr(importlib.import_module(m), n) for m, n in own_targets(backend)}


def test_probe_wraps_every_target_of_this_backend_and_puts_them_back(backend):
    before = originals(backend)
    with KernelProbe():
        during = originals(backend)
        assert all(during[t] is not before[t] for t in before), "a target was not wrapped"
    assert originals(backend) == before


def test_probe_counts_a_call_that_returned_and_names_its_kernel(backend):
    import keras.src.backend as kb
    with KernelProbe() as probe:
        assert probe.kernel() == "generic"
        with pytest.raises(TypeError):
            kb.lstm()  # a call that raises (here: missing arguments) is a path not taken
        assert probe.counts["backend-lstm"] == 0 and probe.kernel() == "generic"


@pytest.mark.parametrize("target", [("keras.src.backend", "lstm"), ("keras.src.backend", "bidirectional_lstm")])
def test_a_renamed_target_raises_instead_of_reporting_generic(target, backend, monkeypatch):
    before = originals(backend)
    monkeypatch.delattr(importlib.import_module(target[0]), target[1])
    with pytest.raises(KerasCompatibilityError, match=rf"{target[0]}\.{target[1]} is gone"):
        KernelProbe()
    monkeypatch.undo()
    assert originals(backend) == before, "a failed probe left wrappers installed"


def test_a_missing_module_raises(backend):
    with pytest.raises(KerasCompatibilityError, match="module keras.src.no_such_module is gone"):
        KernelProbe({("keras.src.no_such_module", "lstm"): "backend-lstm"})


def test_another_keras_version_is_refused(backend, monkeypatch):
    import keras
    monkeypatch.setattr(keras, "version", lambda: "3.99.0")
    with pytest.raises(KerasCompatibilityError, match="found keras 3.99.0"):
        KernelProbe()
