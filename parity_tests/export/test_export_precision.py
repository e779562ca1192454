"""Artifacts in reduced precision (keras_impl/export/precision.py) against the bounds derived from that precision
(keras_impl/parity/tolerances.artifact_precision_bound): each bound holds for the real artifact and fails for
one whose stored weights are wrong in the way a broken toolchain would make them.

No Keras: the models are reference.ModelSpec graphs with the project's random weights, written as float32 ONNX
by the native writer (OpenVINO reads that file), converted by the format's own toolchain, run in the runtime
in this process and compared by keras_impl.export.verify.compare, as `bilstm export --precision ... --verify`
compares. Keras's own outputs are not involved (the oracle stands in for them). The tutorial's model
(ModelSpec(): a Bidirectional LSTM(20), concat, a sigmoid head) and a masked one (Masking(0) in front, padded
rows in every set).
"""
from __future__ import annotations

import numpy as np
import pytest

from keras_impl.export import precision as reduced
from keras_impl.export.verify import compare, rounded_outputs
from parity_tests.conftest import require_export_modules

backend_independent = pytest.mark.backend_independent

MODELS = {"tutorial": {}, "masked": {"mask_value": 0.0, "units": 6, "timesteps": 7, "features": 3}}
BATCHES = (3, 5)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (LayerGraph, float32 ONNX path, input sets with the oracle's outputs and masks)."""
    require_export_modules("onnx", "onnxruntime")
    import onnx

    from keras_impl.export.native_onnx import write_onnx
    from reference import ModelSpec, random_weights
    from reference.layers import graph_forward
    from reference.layers.spec_graph import spec_graph
    made = {}
    for name, options in MODELS.items():
        spec = ModelSpec(**options)
        graph = spec_graph(spec, random_weights(spec, np.random.default_rng(7)))
        path = tmp_path_factory.mktemp(name) / "model.onnx"
        onnx.save(write_onnx(graph, {graph.inputs[0]: ("float32", (spec.timesteps, spec.features))}), path)
        rng = np.random.default_rng(11)
        sets = []
        for batch in BATCHES:
            x = rng.normal(size=(batch, spec.timesteps, spec.features)).astype(np.float32)
            if spec.mask_value is not None:  # trailing padding of different lengths, one row unpadded
                for row, valid in enumerate(rng.integers(1, spec.timesteps + 1, size=batch)):
                    x[row, valid:] = spec.mask_value
            values = graph_forward(graph, [x])
            out, mask = values[graph.outputs[0]]
            sets.append({"inputs": [x], "oracle": [out], "keras": [out.astype(np.float32)],
                         "masks": [np.zeros(0, bool) if mask is None else mask]})
        made[name] = (graph, path, sets)
    return made


def _verdict(graph, sets, outputs, precision, *, arithmetic=False):
    """compare's verdict for ``outputs`` held to ``precision``'s bound (the oracle on weights rounded as
    ``precision`` stores them)."""
    rounded = reduced.rounded_graph(graph, precision)
    held = [{**s, "rounded": rounded_outputs(rounded, s["inputs"])} for s in sets]
    return compare(held, outputs, backend="tensorflow", ran_precision="float32", rules=["threshold"],
                   precision=precision, arithmetic=arithmetic)


def _run(fmt, path, sets, precision="float32"):
    from keras_impl.export.runtimes import run_artifact
    return [run_artifact(fmt, path, s["inputs"], precision=precision)[0] for s in sets]


@backend_independent
@pytest.mark.parametrize("name", list(MODELS))
def test_int8_dynamic_onnx_passes_and_a_wrong_weight_scale_fails(models, tmp_path, name):
    """ONNX Runtime's quantize_dynamic artifact holds the int8-dynamic bound; the same artifact with one weight
    tensor's scale 1.5 times too large (a requantization with a wrong scale) fails it."""
    import shutil

    import onnx
    from onnx import numpy_helper
    graph, path, sets = models[name]
    artifact = tmp_path / "model.onnx"
    shutil.copy(path, artifact)
    reduced.reduce_artifact("onnx", str(artifact), "int8-dynamic", None)
    good = _verdict(graph, sets, _run("onnx", artifact, sets), "int8-dynamic")
    assert good["verdict"] == "pass", good["units"]
    assert 0 < good["units"]["worst_vs_oracle"] < 4 * max(good["units"]["weight_error_units"], 0.05)

    model = onnx.load(artifact)
    scales = [t for t in model.graph.initializer if t.name.endswith("_scale") and "W" in t.name]
    assert scales, [t.name for t in model.graph.initializer]
    scale = scales[0]
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * np.float32(1.5), scale.name))
    onnx.save(model, artifact)
    bad = _verdict(graph, sets, _run("onnx", artifact, sets), "int8-dynamic")
    assert bad["verdict"] == "FAIL", bad["units"]


def _bfloat16_weights(path, out):
    """The OpenVINO float16 artifact at ``path`` with every float16 constant rounded to bfloat16's 8 bits of
    significand, as a runtime that silently computed the weights in bfloat16 would have them."""
    import openvino as ov
    from openvino import opset13
    model = ov.Core().read_model(str(path))
    for op in model.get_ops():
        if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.f16:
            values = op.get_data().astype(np.float64)
            op.output(0).replace(opset13.constant(reduced.round_weight(values, "bfloat16").astype(np.float16))
                                 .output(0))
    ov.save_model(model, str(out), compress_to_fp16=False)


@backend_independent
@pytest.mark.parametrize("name", list(MODELS))
def test_the_float16_bound_separates_float16_weights_from_bfloat16_ones(models, name):
    """The default suite's cover for the OpenVINO test below (slow: OpenVINO's import and compile), on the
    oracle alone: weights rounded to bfloat16 land outside the float16 bound, weights rounded to float16
    inside it."""
    from keras_impl.export.verify import _errors
    from keras_impl.parity.tolerances import artifact_precision_bound
    graph, _, sets = models[name]
    for s in sets:
        fp16 = rounded_outputs(reduced.rounded_graph(graph, "float16"), s["inputs"])[0]
        bf16 = rounded_outputs(reduced.rounded_graph(graph, "bfloat16"), s["inputs"])[0]
        e16, size = _errors(fp16, s["oracle"][0])
        allowed = artifact_precision_bound("float16", e16, size, arithmetic=False).value
        assert 0 < e16 <= allowed < _errors(bf16, s["oracle"][0])[0]


@backend_independent
@pytest.mark.slow  # OpenVINO's import and compile: ~6 s on a busy CPU
@pytest.mark.parametrize("name", list(MODELS))
def test_float16_artifact_holds_its_bound_and_fails_it_with_bfloat16_weights(models, tmp_path, name):
    """OpenVINO's FP16-compressed artifact (float16 weights, float32 arithmetic) holds the float16 bound; the same
    artifact whose weights were rounded to bfloat16 fails the float16 bound and holds the bfloat16 one."""
    require_export_modules("openvino")
    import openvino as ov
    graph, path, sets = models[name]
    artifact = tmp_path / "model.xml"
    # Core.read_model, not convert_model: the latter imports TensorFlow to look for a model of it (15 s here)
    ov.save_model(ov.Core().read_model(str(path)), str(artifact), compress_to_fp16=False)
    reduced.reduce_artifact("openvino", str(artifact), "float16", None)
    good = _verdict(graph, sets, _run("openvino", artifact, sets), "float16")
    assert good["verdict"] == "pass" and good["units"]["weight_error"] > 0, good["units"]

    _bfloat16_weights(artifact, tmp_path / "bf16.xml")
    outputs = _run("openvino", tmp_path / "bf16.xml", sets)
    as_float16 = _verdict(graph, sets, outputs, "float16")
    assert as_float16["verdict"] == "FAIL", as_float16["units"]
    assert _verdict(graph, sets, outputs, "bfloat16")["verdict"] == "pass"


# A weight scale made wrong by this factor must fail each int8 bound: int8-static's floor (T/2 units, doubled)
# lets a 1.5 times too large head scale through on the tutorial's model (0.069 off at T = 10, bound 0.079), so
# its artifacts are held to a doubled scale.
WRONG_SCALE = {"int8-dynamic": 1.5, "int8-static": 2.0}


def _wrong_head_scale(graph, factor):
    import dataclasses
    return dataclasses.replace(graph, layers=tuple(
        dataclasses.replace(one, weights=(one.weights[0] * factor,) + tuple(one.weights[1:])) if one.name == "head"
        else one for one in graph.layers))


@backend_independent
@pytest.mark.parametrize("precision", list(WRONG_SCALE))
@pytest.mark.parametrize("name", list(MODELS))
def test_the_int8_bounds_separate_int8_weights_from_a_wrong_scale(models, name, precision):
    """The default suite's cover for the OpenVINO int8 test below (slow: OpenVINO's and NNCF's imports), on the
    oracle alone: the weights rounded to int8 lie inside each int8 bound, the same with the head's scale made
    wrong (WRONG_SCALE) outside it. int8-static's bound takes its per-step floor (arithmetic, T steps)."""
    from keras_impl.export.verify import _errors
    from keras_impl.parity.tolerances import artifact_precision_bound
    graph, _, sets = models[name]
    int8 = reduced.rounded_graph(graph, precision)
    wrong = _wrong_head_scale(int8, WRONG_SCALE[precision])
    for s in sets:
        e_w, size = _errors(rounded_outputs(int8, s["inputs"])[0], s["oracle"][0])
        allowed = artifact_precision_bound(precision, e_w, size, arithmetic=precision == "int8-static",
                                           steps=s["inputs"][0].shape[1]).value
        assert 0 < e_w <= allowed < _errors(rounded_outputs(wrong, s["inputs"])[0], s["oracle"][0])[0]


def _wrong_openvino_scale(path, out, factor):
    """The NNCF artifact at ``path`` with the largest int8 weight's dequantization scale (int8 Constant ->
    Convert -> Multiply by the scale) ``factor`` times too large, as a requantization with a wrong scale makes it."""
    import openvino as ov
    from openvino import opset13
    model = ov.Core().read_model(str(path))
    weights = [op for op in model.get_ops() if op.get_type_name() == "Constant" and op.get_element_type() == ov.Type.i8]
    assert weights, "NNCF made no weight int8"
    weight = max(weights, key=lambda op: int(np.prod(op.get_output_shape(0))))
    convert = next(iter(weight.output(0).get_target_inputs())).get_node()
    multiply = next(iter(convert.output(0).get_target_inputs())).get_node()
    assert multiply.get_type_name() == "Multiply", multiply.get_type_name()
    scale = next(i.get_source_output().get_node() for i in multiply.inputs()
                 if i.get_source_output().get_node().get_type_name() == "Constant")
    values = scale.get_data()
    scale.output(0).replace(opset13.constant((values.astype(np.float64) * factor).astype(values.dtype)).output(0))
    ov.save_model(model, str(out), compress_to_fp16=False)


@backend_independent
@pytest.mark.slow  # OpenVINO's and NNCF's imports (~20 s on a busy CPU) and NNCF's calibration
@pytest.mark.parametrize("precision", list(WRONG_SCALE))
@pytest.mark.parametrize("name", list(MODELS))
def test_openvino_int8_artifact_holds_its_bound_and_fails_it_with_a_wrong_weight_scale(models, tmp_path, name,
                                                                                         precision):
    """NNCF's int8 artifacts (int8-dynamic: weight compression, weight-only, no floor; int8-static: quantized
    weights and activations, calibrated, the per-step floor) hold their bounds; the same artifact with its
    largest int8 weight's scale made wrong (WRONG_SCALE) fails."""
    require_export_modules("openvino", "nncf")
    import openvino as ov
    graph, path, sets = models[name]
    artifact = tmp_path / "model.xml"
    ov.save_model(ov.Core().read_model(str(path)), str(artifact), compress_to_fp16=False)
    rng = np.random.default_rng(5)  # calibrated apart from the checked sets, on inputs drawn as they are
    x = sets[-1]["inputs"][0]
    calibration = [[np.where(x[k % len(x):k % len(x) + 1] == 0, 0, rng.normal(size=(1,) + x.shape[1:]))
                    .astype(np.float32)] for k in range(16)]
    notes = reduced.reduce_artifact("openvino", str(artifact), precision, calibration)
    assert "weight tensors int8" in notes[0], notes
    arithmetic = reduced.rounds_activations("openvino", precision)
    good = _verdict(graph, sets, _run("openvino", artifact, sets), precision, arithmetic=arithmetic)
    assert good["verdict"] == "pass" and good["worst_vs_oracle"] > 1e-6, good["units"]

    _wrong_openvino_scale(artifact, tmp_path / "wrong.xml", WRONG_SCALE[precision])
    bad = _verdict(graph, sets, _run("openvino", tmp_path / "wrong.xml", sets), precision, arithmetic=arithmetic)
    assert bad["verdict"] == "FAIL", bad["units"]


@backend_independent
def test_formats_without_a_toolchain_say_what_they_can_produce():
    assert reduced.check("onnx", "int8-dynamic") is None and reduced.check("litert", "float16") is None
    refusal = reduced.check("tf_saved_model", "int8-dynamic")
    assert refusal.startswith("tf_saved_model cannot be produced in int8-dynamic") and "float32, native" in refusal
    assert "float16" in reduced.check("onnx", "bfloat16")  # names what onnx can do instead


@backend_independent
@pytest.mark.parametrize("argv, says", [
    (["--format", "tf_saved_model", "--precision", "int8-dynamic"], "it can produce float32, native"),
    (["--format", "onnx", "--precision", "bfloat16"], "it can produce float32, native, float16, int8-dynamic"),
    (["--format", "torch_export", "--precision", "int8-static"], "it can produce float32, native"),
    (["--format", "onnx", "--precision", "float16", "--calibration", "x.npy"], "goes with --precision int8-static"),
    (["--format", "onnx", "--precision", "all"], "--precision all goes with --matrix"),
    (["--format", "onnx", "--accuracy-seeds", "2", "--features", "3", "--verify"], "tutorial's problem"),
])
def test_a_precision_the_format_cannot_produce_is_one_line_and_exit_2(tmp_path, capsys, argv, says):
    from parity_tests.conftest import nonblank_lines, run_bilstm
    code, out, err = run_bilstm(["export", *argv, "--backend", "torch", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and len(nonblank_lines(err)) == 1 and says in err, err
    assert not (tmp_path / "x").exists()


@backend_independent
def test_litert_full_integer_converts_the_recurrent_layers_unrolled():
    """LiteRT's full-integer conversion of a recurrent loop crashes the converter; the exporter converts a copy
    whose recurrent layers (nested in Bidirectional too) are unrolled, a free time axis fixed first."""
    from keras_impl.export.exporters import _has_loop, _unroll_config
    lstm = {"class_name": "LSTM", "config": {"units": 4, "unroll": False}}
    config = {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [None, None, 3]}},
                         {"class_name": "Bidirectional", "config": {"layer": lstm, "backward_layer": lstm}},
                         {"class_name": "Dense", "config": {"units": 1}}]}
    assert _has_loop(config) and not _has_loop({"layers": [config["layers"][2]]})
    unrolled = _unroll_config(config, 6)
    assert not _has_loop(unrolled)
    bidirectional = unrolled["layers"][1]["config"]
    assert bidirectional["layer"]["config"]["unroll"] is True and bidirectional["backward_layer"]["config"]["unroll"]
    assert unrolled["layers"][0]["config"]["batch_shape"] == [None, 6, 3]
    assert config["layers"][0]["config"]["batch_shape"] == [None, None, 3]  # the model's own config untouched
    assert _unroll_config(config, None)["layers"][0]["config"]["batch_shape"] == [None, None, 3]
