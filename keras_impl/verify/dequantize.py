"""A quantized Dense or Embedding's weights as Keras computes with them, dequantized to float64, and the size of
one quantisation step of each weight: what the oracle runs a quantized layer on (``describe.py``) and what the
bounds of ``precision.py`` are counted in.

Read from the variables Keras 3.15.1 stores (``keras/src/layers/core/dense.py``, ``embedding.py``), in NumPy,
each rule where Keras applies it:

- **int8** (per output channel, symmetric): ``q = round(w * s)`` with ``s = 127 / max |w|`` per output unit
  (``quantizers.abs_max_quantize``, quantizers.py L95-109, called by ``Dense.quantize`` L1039-1051 with
  ``axis=0`` and ``Embedding.quantize`` L568-584 with ``axis=-1``, one scale per vocabulary row); Keras
  divides back: ``w = q / s`` (``Dense._int8_call`` L812 ``divide(x, output_scale)``, ``Embedding._int8_call``
  L504-508). One step is ``1 / s``.
- **int4 per channel** (``Int4QuantizationConfig(block_size=-1)``): the same with ``s = 7 / max |w|`` and values
  in [-8, 7] (Dense.quantize L1061-1074), two values a byte along the last axis (``pack_int4``: the first in the
  low nibble); unpacked by ``quantizers.unpack_int4`` (L840-904: nibble ``x``, signed ``(x ^ 8) - 8``).
- **int4 by groups** (Keras's default, ``int4/128``): asymmetric, a scale and a zero point per group of
  ``block_size`` inputs (Dense: along the kernel's input axis, ``g_idx`` per input row) or per group of
  ``block_size`` features of a vocabulary row (Embedding): ``w = (q - zero) * scale``
  (``dequantize_with_sz_map``, quantizers.py L1223-1233; Dense._int4_call L910-916 with ``group_axis=0``,
  Embedding._int4_call L543-548 with ``group_axis=-1``). One step is ``scale``.
- **float8** (Dense only): the kernel is kept in float32 and rounded to ``float8_e4m3fn`` at every call,
  ``w = e4m3(w / kernel_scale) * kernel_scale`` (``quantize_and_dequantize``, quantizers.py L609-620, applied to
  the kernel in Dense._float8_call L997-1010); in a float32 layer the bias is rounded through bfloat16 first
  (L1018-1025). The step of a weight is its e4m3 ulp.
"""
from __future__ import annotations

import numpy as np

MODES = ("int8", "int4", "float8")  # Keras 3.15.1's quantization modes the oracle verifies (gptq, awq: refused)
KINDS = ("Dense", "Embedding")      # the quantizable layers the oracle has (EinsumDense: not an oracle layer)
E4M3_MAX = 448.0                    # ml_dtypes.finfo("float8_e4m3fn").max, the clip of quantize_and_dequantize


def _array(variable) -> np.ndarray:
    import keras
    return np.asarray(keras.ops.convert_to_numpy(variable))


def unpack_int4(packed: np.ndarray, length: int) -> np.ndarray:
    """``(..., ceil(n / 2))`` int8 bytes -> ``(..., n)`` int4 values in [-8, 7], unpacked along the last axis:
    the low nibble first (``keras.quantizers.unpack_int4``, quantizers.py L840-904)."""
    packed = np.asarray(packed).astype(np.int16)
    low, high = packed & 0x0F, (packed >> 4) & 0x0F
    signed = lambda x: (x ^ 8) - 8  # noqa: E731  nibble 0..15 -> -8..7, as Keras's to_signed
    both = np.stack([signed(low), signed(high)], axis=-1)  # (..., n/2, 2)
    return both.reshape(*packed.shape[:-1], -1)[..., :length].astype(np.int8)


def mode(layer) -> str | None:
    """The layer's quantization mode (``int8``, ``int4``, ``float8``, ...), or None for a float layer."""
    return getattr(getattr(layer, "dtype_policy", None), "quantization_mode", None)


def block_size(layer) -> int | None:
    """An int4 layer's group size, None for one scale per output channel (``block_size`` -1 or None)."""
    size = getattr(layer, "_int4_block_size", None)
    return None if size is None or size == -1 else int(size)


def _int_values_and_steps(layer, stored, scale_name: str, length: int, axis_of_groups: int):
    """``(dequantized float64 matrix, its step per entry)`` of an int8 or int4 matrix as ``layer`` stores it."""
    scale = _array(getattr(layer, scale_name)).astype(np.float64)
    q = _array(stored)
    if mode(layer) == "int4":
        q = unpack_int4(q, length)
    q = q.astype(np.float64)
    size = block_size(layer) if mode(layer) == "int4" else None
    if size is None:  # one multiplier per output channel: w = q / s (int8, int4 per channel)
        s = scale.reshape(-1)
        s = s[None, :] if axis_of_groups == 0 else s[:, None]  # Dense: per column; Embedding: per row
        return q / s, np.broadcast_to(1.0 / s, q.shape)
    zero = _array(getattr(layer, scale_name.replace("scale", "zero"))).astype(np.float64)
    groups = _array(layer.g_idx).astype(np.int64)
    if axis_of_groups == 0:  # Dense: scale (n_groups, out), a group per kernel row
        s, z = scale[groups, :], zero[groups, :]
    else:  # Embedding: scale (vocabulary, n_groups), a group per feature
        s, z = scale[:, groups], zero[:, groups]
    return (q - z) * s, s


def dense_weights(layer) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """``((kernel, bias), step)`` of a quantized Dense as Keras computes with them, float64; a zero bias where
    it has none; ``step``: the quantisation step of each kernel entry (float8: its e4m3 ulp)."""
    units = layer.units
    bias = _array(layer.bias).astype(np.float64) if layer.bias is not None else np.zeros(units)
    if mode(layer) == "float8":
        import ml_dtypes
        s = float(_array(layer.kernel_scale))
        kernel = _array(layer._kernel).astype(np.float32)
        scaled = np.clip(kernel / np.float32(s), -E4M3_MAX, E4M3_MAX)
        rounded = scaled.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
        if layer.dtype_policy.compute_dtype == "float32":  # the bias through bfloat16 (Dense._float8_call L1023-1025)
            bias = bias.astype(np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)
        return (rounded * s, bias), e4m3_ulp(rounded) * s
    kernel, step = _int_values_and_steps(layer, layer._kernel, "kernel_scale", units, axis_of_groups=0)
    return (kernel, bias), step


def embedding_weights(layer) -> tuple[tuple[np.ndarray], np.ndarray]:
    """``((table,), step)`` of a quantized Embedding, float64, and the quantisation step of each entry."""
    table, step = _int_values_and_steps(layer, layer._embeddings, "embeddings_scale", layer.output_dim,
                                        axis_of_groups=1)
    return (table,), step


def e4m3_ulp(x: np.ndarray) -> np.ndarray:
    """The spacing of float8_e4m3fn numbers at ``x`` (3 mantissa bits; subnormal below 2^-6: 2^-9)."""
    exponent = np.floor(np.log2(np.maximum(np.abs(x), 2.0 ** -6)))
    return 2.0 ** (exponent - 3)


def float_weights_kept(layer) -> tuple | None:
    """The float weights a quantized layer still holds (float8 keeps its float32 kernel), else None: int8 and
    int4 keep only the quantized values, and the float model must be given (``--float-model``)."""
    if mode(layer) != "float8":
        return None
    bias = _array(layer.bias).astype(np.float64) if layer.bias is not None else np.zeros(layer.units)
    return _array(layer._kernel).astype(np.float64), bias


def oracle_weights(layer, kind: str) -> tuple:
    """The weights the oracle's ``kind`` layer takes for a quantized Keras layer: the dequantized ones."""
    return dense_weights(layer)[0] if kind == "Dense" else embedding_weights(layer)[0]
