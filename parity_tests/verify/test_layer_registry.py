"""The one registry of layers: the oracle's kinds (reference/layers/registry.py) and the Keras layers verify
describes (keras_impl/verify/layers/) are the same set, and every list a user reads comes from it."""
import pytest

pytest.importorskip("keras")


def test_verify_describes_exactly_the_oracles_kinds():
    from keras_impl.verify.layers import DESCRIBE
    from reference.layers import KINDS
    assert set(DESCRIBE) == set(KINDS)


def test_every_described_kind_is_a_keras_layer_class():
    import keras
    from keras_impl.verify.layers import DESCRIBE
    missing = [kind for kind in DESCRIBE if not isinstance(getattr(keras.layers, kind, None), type)]
    assert missing == []


def test_the_refusal_lists_the_registry():
    from keras_impl.verify.load import refuse_layer
    from reference.layers import KINDS
    message = str(refuse_layer("x", "Lambda"))
    assert all(kind in message for kind in KINDS)
