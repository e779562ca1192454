"""Artifacts in reduced precision: which format's toolchain makes which, how, and what the weights alone cost.

    bilstm export MODEL --format onnx --precision int8-dynamic --verify

A precision is what the *artifact* stores and the runtime computes in (formats.PRECISIONS): float32 (the
default), the runtime's own default ("native"), or a reduced one (``REDUCED``). Each reduced precision comes from
the format's own toolchain, applied to the float32 artifact the route wrote (ONNX, OpenVINO) or to the Keras model
it converts (LiteRT); a format whose toolchain has no such conversion is refused in one line naming what it can
produce (``check``).

    onnx      float16        onnxconverter-common's convert_float_to_float16 (keep_io_types): weights and
                             arithmetic in float16 where onnxruntime's CPU provider has a float16 kernel, the
                             other nodes kept float32 behind Casts (the report names them)
              int8-dynamic   onnxruntime.quantization.quantize_dynamic: int8 weights, activations quantized
                             to uint8 at run time
              int8-static    onnxruntime.quantization.quantize_static: int8 weights and activations (QDQ),
                             the activations' ranges calibrated on ``calibration`` sets
    litert    float16        TFLiteConverter, Optimize.DEFAULT, supported_types float16: float16 weights
              int8-dynamic   TFLiteConverter, Optimize.DEFAULT: dynamic-range int8 weights
              int8-static    TFLiteConverter, Optimize.DEFAULT with a representative dataset: full integer,
                             of a copy with the recurrent layers unrolled (exporters._unrolled: the converter
                             crashes on the loop itself)
    openvino  float16        openvino.save_model(compress_to_fp16=True): float16 weights, float32 arithmetic
              bfloat16       the CPU plugin's INFERENCE_PRECISION_HINT bf16 (the artifact stays float32):
                             arithmetic in bfloat16, on a CPU with BF16 (AVX512-BF16, AMX)
              int8-dynamic   NNCF's nncf.compress_weights, INT8_SYM: int8 weights (symmetric, per output
                             channel) of every MatMul, float32 activations and arithmetic (weight-only, the
                             analogue of the others' dynamic-range int8)
              int8-static    NNCF's nncf.quantize on the ``calibration`` sets: FakeQuantize (int8) on the
                             weights and the activations of each MatMul, ranges calibrated

The oracle's side (``rounded_graph``): the same model with its weights rounded as the precision stores them,
in float64 (float16, bfloat16: round to nearest even; int8: a symmetric grid of 255 steps over each weight
tensor's range, the coarser of the converters' per-tensor and per-channel grids). Its distance from the oracle
is what the weights alone cost; keras_impl/parity/tolerances.artifact_precision_bound turns it into the bound.
"""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

REDUCED = ("float16", "bfloat16", "int8-dynamic", "int8-static")
INT8 = ("int8-dynamic", "int8-static")

# format -> precision -> the toolchain that produces it (said in the report).
TOOLCHAIN = {
    "onnx": {"float16": "convert_float_to_float16 (keep_io_types): float16 weights and arithmetic",
             "int8-dynamic": "onnxruntime.quantization.quantize_dynamic (int8 weights, uint8 activations)",
             "int8-static": "onnxruntime.quantization.quantize_static (QDQ, int8 weights and activations)"},
    "litert": {"float16": "TFLiteConverter Optimize.DEFAULT, float16 weights",
               "int8-dynamic": "TFLiteConverter Optimize.DEFAULT, dynamic-range int8 weights",
               "int8-static": "TFLiteConverter Optimize.DEFAULT with a representative dataset (full integer), "
                              "the recurrent layers unrolled"},
    "openvino": {"float16": "openvino.save_model(compress_to_fp16=True), float16 weights",
                 "bfloat16": "the CPU plugin's INFERENCE_PRECISION_HINT bf16 (bfloat16 arithmetic)",
                 "int8-dynamic": "NNCF compress_weights INT8_SYM (int8 weights, float32 activations)",
                 "int8-static": "NNCF quantize (int8 weights and activations, ranges calibrated)"},
}
# Why a format lacks the rest (the refusal's second half).
MISSING = {
    "onnx": "onnxruntime's CPU provider has no bfloat16 kernels for its recurrent and MatMul nodes",
    "litert": "the TFLite converter has no bfloat16 target",
    "tf_saved_model": "a SavedModel has no quantization toolchain of its own (LiteRT is TensorFlow's)",
    "torch_export": "torch.export has no post-training quantization that onnxruntime-free CPUs run here",
    "jax_export": "jax.export serializes the computation as it is traced; there is no converter to run",
}
# Where the runtime rounds activations to the precision too (its bound gets a floor of half a unit:
# keras_impl/parity/tolerances.artifact_precision_bound); the other artifacts are weight-only.
ROUNDS_ACTIVATIONS = {("onnx", "float16"), ("openvino", "bfloat16"), ("onnx", "int8-static"),
                      ("litert", "int8-static"), ("openvino", "int8-static")}
CALIBRATION_BATCH = 32  # sequences drawn for int8-static when no --calibration file is given
CALIBRATION_SEED = 1000  # apart from the verification sets' seeds (0, 1, 2)


def producible(fmt: str) -> tuple[str, ...]:
    return ("float32", "native") + tuple(TOOLCHAIN.get(fmt, {}))


def check(fmt: str, precision: str) -> str | None:
    """None if ``fmt`` can be produced in ``precision``, else the one-line refusal."""
    if precision in producible(fmt):
        return None
    return f"{fmt} cannot be produced in {precision} ({MISSING[fmt]}): it can produce {', '.join(producible(fmt))}"


def rounds_activations(fmt: str, precision: str) -> bool:
    return (fmt, precision) in ROUNDS_ACTIVATIONS


def runtime_precision(precision: str) -> str:
    """What the runtime is asked to compute in: its default for native, bfloat16 for bfloat16 (OpenVINO's hint),
    float32 for every other artifact (its reduced weights are the artifact's, not the runtime's choice)."""
    return precision if precision in ("native", "bfloat16") else "float32"


# ---------------------------------------------------------------- the oracle's weights, rounded

def round_weight(w: np.ndarray, precision: str) -> np.ndarray:
    """``w`` (float64) as ``precision`` stores it, back in float64."""
    w = np.asarray(w, np.float64)
    if precision == "float16":
        return w.astype(np.float16).astype(np.float64)
    if precision == "bfloat16":  # the top 16 bits of the float32, rounded to nearest even
        bits = w.astype(np.float32).view(np.uint32).astype(np.uint64)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16
        return bits.astype(np.uint32).view(np.float32).astype(np.float64)
    if precision in INT8:
        if w.ndim < 2:  # biases stay float in every int8 toolchain here
            return w
        step = np.max(np.abs(w)) / 127.0
        return w if step == 0 else np.round(w / step) * step
    return w


def rounded_graph(graph, precision: str):
    """A reference.layers.LayerGraph whose weights are rounded as ``precision`` stores them."""
    def layer(one):
        options = one.options
        if isinstance(options.get("inner"), type(one)):
            options = {**options, "inner": layer(options["inner"])}
        weights = tuple(round_weight(w, precision) if isinstance(w, np.ndarray) and w.dtype.kind == "f" else w
                        for w in one.weights)
        return dataclasses.replace(one, weights=weights, options=options)
    return dataclasses.replace(graph, layers=tuple(layer(one) for one in graph.layers))


# ---------------------------------------------------------------- the conversions

def calibration_sets(described, calibration: str | None,
                     static_timesteps: int | None = None) -> tuple[list[list[np.ndarray]], str]:
    """The calibration inputs (a list of input lists, one sequence each) and how they were found.

    By default ``CALIBRATION_BATCH`` sequences drawn as the verification draws its sets: every input family
    that applies (keras_impl/verify/families.py), the large-magnitude one (x30) included, one sequence at a
    time, in rounds of seeds apart from the verification's. A static quantizer saturates every activation at its
    calibrated range: calibrated on standard-normal inputs alone, the matrix's GRU saturated its output range on
    the x30 family (0.111 off the oracle, 14 int8 steps) while its standard-normal sets were within 2 steps."""
    if calibration:
        x = np.load(calibration, allow_pickle=False)
        return [[x[k:k + 1]] for k in range(len(x))], f"{len(x)} sequences from {calibration}"
    from keras_impl.verify.families import family_sets
    found: list[list[np.ndarray]] = []
    families: set = set()
    for round_ in range(CALIBRATION_BATCH):
        for s in family_sets(described, dynamic_batch=True, seed=CALIBRATION_SEED + 100 * round_,
                             static_timesteps=static_timesteps):
            families.add(s["family"])
            found += [[a[k:k + 1] for a in s["inputs"]] for k in range(len(s["inputs"][0]))]
        if len(found) >= CALIBRATION_BATCH:
            break
    return (found[:CALIBRATION_BATCH],
            f"{CALIBRATION_BATCH} sequences drawn as the verification draws its inputs (seed {CALIBRATION_SEED}; "
            f"{len(families)} input families, large magnitudes included); give your own with --calibration FILE.npy")


def litert_options(precision: str, calibration) -> dict:
    """Keras's LiteRT exporter passes these to the TFLiteConverter (keras/src/export/litert.py L167-190)."""
    if precision in ("float32", "native"):
        return {}
    import tensorflow as tf
    options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    if precision == "float16":
        options["target_spec"] = {"supported_types": [tf.float16]}
    elif precision == "int8-static":
        def representative():
            for inputs in calibration:
                yield [x.astype(np.float32) if x.dtype.kind == "f" else x for x in inputs]
        options["representative_dataset"] = representative
    return options


def reduce_artifact(fmt: str, artifact_path: str, precision: str, calibration) -> list[str]:
    """Rewrite the float32 ONNX or OpenVINO artifact at ``artifact_path`` in ``precision``; notes for the report."""
    if fmt == "onnx" and precision == "float16":
        return _onnx_float16(artifact_path)
    if fmt == "onnx" and precision in INT8:
        return _onnx_int8(artifact_path, precision, calibration)
    if fmt == "openvino" and precision == "float16":
        import openvino as ov
        model = ov.Core().read_model(artifact_path)
        _replace_openvino(model, artifact_path, compress_to_fp16=True)
        return []
    if fmt == "openvino" and precision in INT8:
        return _openvino_int8(artifact_path, precision, calibration)
    return []  # openvino bfloat16: the runtime's hint; litert: in the converter


def _replace_openvino(model, path: str, *, compress_to_fp16: bool) -> None:
    """Save ``model`` over the artifact at ``path`` (its .xml and .bin), through a scratch pair beside it."""
    import openvino as ov
    scratch = path + ".reduced.xml"
    ov.save_model(model, scratch, compress_to_fp16=compress_to_fp16)
    del model
    os.replace(scratch, path)
    os.replace(scratch[:-4] + ".bin", path[:-4] + ".bin")


# OpenVINO's fused recurrent nodes. NNCF's quantize puts a FakeQuantize on their recurrent weights, which the CPU
# plugin then refuses to compile ("LSTMSequence node ... expects Constant for port 5", intel_cpu/src/nodes/rnn.cpp
# L935, OpenVINO 2026.4.1, NNCF 3.4.0): quantize leaves them out, as compress_weights does by itself.
FUSED_RECURRENT = ("LSTMSequence", "GRUSequence", "RNNSequence")


def _openvino_int8(path: str, precision: str, calibration) -> list[str]:
    """NNCF on the float32 OpenVINO model: int8-dynamic as weight compression (INT8_SYM: per output channel,
    symmetric, the grid the oracle's emulation is at least as coarse as), int8-static as post-training
    quantization calibrated on ``calibration``. NNCF compresses and quantizes MatMul (and Convolution, Embedding)
    weights only: a fused recurrent node (LSTMSequence, GRUSequence, as OpenVINO's ONNX frontend makes) keeps
    float32 weights, and the note says which tensors were made int8."""
    import openvino as ov
    try:
        import nncf
    except ImportError:
        raise RuntimeError("NNCF (OpenVINO's int8 toolchain) is not installed: pip install .[export]") from None
    import contextlib
    import io
    import logging
    logging.getLogger("nncf").setLevel(logging.WARNING)  # its tables and progress bars are not the report's;
    model = ov.Core().read_model(path)                   # the bars are rich's, on sys.stdout at the time
    with contextlib.redirect_stdout(io.StringIO()):
        if precision == "int8-dynamic":
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
        else:
            # MINMAX: every activation's range spans its calibration extremes, as onnxruntime's quantize_static
            # (CalibrationMethod.MinMax) takes them; NNCF's default averages each sample's extremes, and the
            # x30 family, 6 sequences of 32, then saturates (the matrix's concat: 13 steps off, 0.9 without it).
            from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
            from nncf.quantization.range_estimator import RangeEstimatorParametersSet
            model = nncf.quantize(model, nncf.Dataset([list(inputs) for inputs in calibration]),
                                  subset_size=len(calibration), ignored_scope=nncf.IgnoredScope(
                                      types=list(FUSED_RECURRENT), validate=False),
                                  advanced_parameters=AdvancedQuantizationParameters(
                                      activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX))
    int8 = [op for op in model.get_ops() if op.get_type_name() == "Constant"
            and op.get_element_type() in (ov.Type.i8, ov.Type.u8)]
    fake = sum(op.get_type_name() == "FakeQuantize" for op in model.get_ops())
    recurrent = sorted({op.get_type_name() for op in model.get_ops() if op.get_type_name() in FUSED_RECURRENT})
    _replace_openvino(model, path, compress_to_fp16=False)
    notes = [f"NNCF made {len(int8)} weight tensors int8" + (f", {fake} FakeQuantize nodes" if fake else "")]
    if recurrent:
        notes.append(f"NNCF leaves the weights of {', '.join(recurrent)} in float32 (it quantizes MatMul weights)")
    return notes


def _onnx_float16(path: str) -> list[str]:
    """Convert to float16; a node onnxruntime's CPU provider cannot run in float16 is kept float32 (retried)."""
    import onnx
    import onnxruntime as ort
    try:
        from onnxconverter_common import float16
        tool = "onnxconverter-common"
    except ImportError:  # onnxruntime ships the same converter
        from onnxruntime.transformers import float16
        tool = "onnxruntime.transformers.float16 (onnxconverter-common is not installed)"

    original = onnx.load(path)
    blocked: list[str] = []
    for _ in range(20):
        converted = float16.convert_float_to_float16(original, keep_io_types=True, disable_shape_infer=True,
                                                     op_block_list=float16.DEFAULT_OP_BLOCK_LIST + blocked)
        try:
            ort.InferenceSession(converted.SerializeToString(), providers=["CPUExecutionProvider"])
            break
        except Exception as exc:  # NOT_IMPLEMENTED names the op type with no float16 kernel
            found = re.search(r"implementation for (\w+)\(", str(exc))
            if not found or found.group(1) in blocked:
                raise
            blocked.append(found.group(1))
    onnx.save(converted, path)
    return [f"converted by {tool}"] + ([f"kept in float32 (no float16 kernel in onnxruntime's CPU provider): "
                                        f"{', '.join(sorted(blocked))}"] if blocked else [])


def _onnx_int8(path: str, precision: str, calibration) -> list[str]:
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    scratch = path + ".int8.onnx"
    if precision == "int8-dynamic":
        quantize_dynamic(path, scratch, weight_type=QuantType.QInt8)
    else:
        import onnx
        names = [i.name for i in onnx.load(path).graph.input]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.sets = iter(calibration)

            def get_next(self):
                inputs = next(self.sets, None)
                return None if inputs is None else dict(zip(names, inputs))
        quantize_static(path, scratch, Reader(), quant_format=QuantFormat.QDQ, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QInt8)
    os.replace(scratch, path)
    return []
