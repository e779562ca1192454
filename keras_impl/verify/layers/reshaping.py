"""Keras's reshaping layers -> the oracle's (``reference/layers/reshaping.py``).

Every one of them drops the mask in Keras 3.15.1 (none supports masking), as the oracle does, except where the
backend's op hands back its input object, which keeps its mask attribute (JAX: a reshape to the same shape, an
identity permutation, a crop of nothing): ``keeps_mask`` probes the layer for it on the backend in use. UpSampling2D is
modelled for ``interpolation`` nearest and bilinear (the half-pixel resize all three backends compute); the
other interpolations (bicubic, lanczos3, lanczos5, area) are refused by name. UpSampling3D is nearest only (Keras
has no other).
"""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer

MODELLED_INTERPOLATIONS = ("nearest", "bilinear")
TEST = "parity_tests/verify/test_reshaping_merging_layers.py"


def _pairs(value) -> tuple:
    """Keras's normalised padding/cropping as ((before, after), ...): ZeroPadding1D/Cropping1D store (a, b)."""
    value = tuple(value)
    return (tuple(int(v) for v in value),) if all(isinstance(v, int) for v in value) \
        else tuple(tuple(int(v) for v in pair) for pair in value)


def keeps_mask(layer) -> bool:
    """Whether Keras, on this backend, leaves a mask on this layer's output: the layer is called once on a small
    masked tensor (the batch 2, a free axis 3) and its output is asked for the mask attribute."""
    import warnings

    import keras
    import numpy as np
    from keras.src.backend import get_keras_mask, set_keras_mask
    try:
        shape = (2,) + tuple(3 if d is None else int(d) for d in layer.input.shape[1:])
    except (AttributeError, ValueError):  # never called on a known input: nothing to probe
        return False
    x = keras.ops.convert_to_tensor(np.ones(shape), dtype=layer.compute_dtype)
    set_keras_mask(x, keras.ops.convert_to_tensor(np.ones(shape[:2], bool)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "does not support masking": the very thing probed
        return get_keras_mask(layer(x)) is not None


def _layer(name, kind, inbound, options, layer):
    """The oracle's Layer, with ``keeps_mask`` set where the backend keeps the mask (see keeps_mask)."""
    return Layer(name, kind, inbound, {**options, "keeps_mask": True} if keeps_mask(layer) else options)


def _shown(text, options_layer) -> str:
    return text + (", keeps the mask (the backend returns the input itself)"
                   if options_layer.options.get("keeps_mask") else ", drops the mask")


def reshape(layer, name, inbound):
    target = tuple(int(d) for d in layer.target_shape)
    described = _layer(name, "Reshape", inbound, {"target_shape": target}, layer)
    return described, _shown(f"target_shape={target}", described)


def permute(layer, name, inbound):
    dims = tuple(int(d) for d in layer.dims)
    described = _layer(name, "Permute", inbound, {"dims": dims}, layer)
    return described, _shown(f"dims={dims}", described)


def repeat_vector(layer, name, inbound):
    described = _layer(name, "RepeatVector", inbound, {"n": int(layer.n)}, layer)
    return described, _shown(f"n={layer.n}", described)


def flatten(layer, name, inbound):
    described = _layer(name, "Flatten", inbound, {"data_format": layer.data_format}, layer)
    return described, _shown(layer.data_format, described)


def zero_padding(layer, name, inbound):
    cls, padding = type(layer).__name__, _pairs(layer.padding)
    described = _layer(name, cls, inbound, {"padding": padding, "data_format": layer.data_format}, layer)
    return described, _shown(f"padding={padding}, {layer.data_format}", described)


def cropping(layer, name, inbound):
    cls, crops = type(layer).__name__, _pairs(layer.cropping)
    data_format = getattr(layer, "data_format", "channels_last")  # Cropping1D has none: always the steps axis
    described = _layer(name, cls, inbound, {"cropping": crops, "data_format": data_format}, layer)
    return described, _shown(f"cropping={crops}, {data_format}", described)


def up_sampling_1d(layer, name, inbound):
    described = _layer(name, "UpSampling1D", inbound, {"size": int(layer.size)}, layer)
    return described, _shown(f"size={layer.size}", described)


def up_sampling_2d(layer, name, inbound):
    if layer.interpolation not in MODELLED_INTERPOLATIONS:
        raise refuse_layer(name, "UpSampling2D", f"interpolation={layer.interpolation!r}: "
                                                 f"{', '.join(MODELLED_INTERPOLATIONS)} are modelled")
    size = tuple(int(s) for s in layer.size)
    described = _layer(name, "UpSampling2D", inbound, {"size": size, "data_format": layer.data_format,
                                                       "interpolation": layer.interpolation}, layer)
    return described, _shown(f"size={size}, {layer.interpolation}, {layer.data_format}", described)


def up_sampling_3d(layer, name, inbound):
    size = tuple(int(s) for s in layer.size)
    described = _layer(name, "UpSampling3D", inbound, {"size": size, "data_format": layer.data_format}, layer)
    return described, _shown(f"size={size}, nearest, {layer.data_format}", described)


DESCRIBE = {"Reshape": reshape, "Permute": permute, "RepeatVector": repeat_vector, "Flatten": flatten,
            "ZeroPadding1D": zero_padding, "ZeroPadding2D": zero_padding, "ZeroPadding3D": zero_padding,
            "Cropping1D": cropping, "Cropping2D": cropping, "Cropping3D": cropping,
            "UpSampling1D": up_sampling_1d, "UpSampling2D": up_sampling_2d, "UpSampling3D": up_sampling_3d}

KEPT = "kept where JAX hands back the input itself: probed"
ROWS = [
    ("Reshape, Permute, RepeatVector", f"target_shape (with -1), dims, n; the mask dropped ({KEPT})", "-",
     f"{TEST}::test_models_verify_within_bounds"),
    ("Flatten", f"any rank, channels_last and channels_first; the mask dropped ({KEPT})", "-",
     f"{TEST}::test_models_verify_within_bounds"),
    ("ZeroPadding1D, ZeroPadding2D, Cropping1D, Cropping2D",
     f"any padding/cropping, channels_last and channels_first; the mask dropped ({KEPT})",
     "-", f"{TEST}::test_models_verify_within_bounds"),
    ("UpSampling1D, UpSampling2D", "size; interpolation nearest and bilinear (half-pixel centres), "
     f"channels_last and channels_first; the mask dropped ({KEPT})",
     "UpSampling2D interpolation bicubic, lanczos3, lanczos5, area",
     f"{TEST}::test_models_verify_within_bounds"),
    ("ZeroPadding3D, Cropping3D, UpSampling3D", "any padding/cropping, size (nearest, Keras's only one), "
     f"channels_last and channels_first; the mask dropped ({KEPT})", "-",
     "parity_tests/verify/test_reshaping_3d.py::test_3d_reshaping_layers_verify"),
]
