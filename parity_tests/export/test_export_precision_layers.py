"""Each layer inside a reduced-precision artifact (keras_impl/verify/artifact.artifact_layers with a precision):
its error against the oracle, the stored weights' own error E_w for that layer (the oracle on the weights rounded
as the precision stores them, layer by layer) and its bound from tolerances.artifact_precision_bound; a weight
scale made wrong in one layer puts that layer, first, outside its bound.

No Keras: a two-layer model (Bidirectional LSTM(6), concat, then a sigmoid Dense per step: reference.ModelSpec
with the project's random weights), written as float32 ONNX by the native writer (which names each tensor after
its layer), converted by the format's own toolchain (keras_impl/export/precision.reduce_artifact), as
`bilstm export --precision ... --verify` converts it.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from keras_impl.export import precision as reduced
from parity_tests.conftest import require_export_modules

backend_independent = pytest.mark.backend_independent

SPEC = {"units": 6, "timesteps": 7, "features": 3}  # T, D, U all different; batch 4 below
LAYERS = ["recurrent_0", "head"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(LayerGraph, its float32 ONNX file, one input set)."""
    require_export_modules("onnx", "onnxruntime")
    import onnx

    from keras_impl.export.native_onnx import write_onnx
    from reference import ModelSpec, random_weights
    from reference.layers.spec_graph import spec_graph
    spec = ModelSpec(**SPEC)
    graph = spec_graph(spec, random_weights(spec, np.random.default_rng(5)))
    assert [layer.name for layer in graph.layers[1:]] == LAYERS
    path = tmp_path_factory.mktemp("float32") / "model.onnx"
    onnx.save(write_onnx(graph, {graph.inputs[0]: ("float32", (spec.timesteps, spec.features))}), path)
    x = np.random.default_rng(9).normal(size=(4, spec.timesteps, spec.features)).astype(np.float32)
    return graph, path, [x]


@pytest.fixture(scope="module")
def int8_dynamic(model, tmp_path_factory):
    _, path, _ = model
    artifact = tmp_path_factory.mktemp("int8") / "model.onnx"
    shutil.copy(path, artifact)
    reduced.reduce_artifact("onnx", str(artifact), "int8-dynamic", None)
    return artifact


def _layers(fmt, artifact, model, precision):
    from keras_impl.verify.artifact import artifact_layers
    graph, _, inputs = model
    return artifact_layers(fmt, artifact, graph, inputs, 0.0, precision=precision,
                           arithmetic=reduced.rounds_activations(fmt, precision))


@backend_independent
def test_int8_dynamic_artifact_gives_each_layer_its_errors_and_bound(model, int8_dynamic):
    """quantize_dynamic keeps the layers' tensor names: both layers are found, each off the oracle by a
    fraction of an int8 step, beside a non-zero E_w of its own, inside its bound."""
    rows = _layers("onnx", int8_dynamic, model, "int8-dynamic")
    assert [r["layer"] for r in rows] == LAYERS
    for row in rows:
        assert row["tensor"] is not None, row
        assert 0 < row["error"] <= row["allowed"] and row["weight_error"] > 0, row
        assert row["error"] / row["unit"] < 2, row  # int8-dynamic costs a fraction of a step here
        assert row["verdict"] == "pass"


@backend_independent
@pytest.mark.parametrize("scale, layer", [("head/kernel_scale", "head"), ("recurrent_0/lstm/R_scale", "recurrent_0")])
def test_a_wrong_weight_scale_names_its_layer_first(model, int8_dynamic, tmp_path, scale, layer):
    """One weight tensor's scale 1.5 times too large inside the int8 artifact: its layer is the first outside
    its bound, and a layer before it still passes."""
    import onnx
    from onnx import numpy_helper

    from keras_impl.verify.artifact import layer_lines
    artifact = tmp_path / "model.onnx"
    broken = onnx.load(int8_dynamic)
    tensor = next(t for t in broken.graph.initializer if t.name == scale)
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * np.float32(1.5), tensor.name))
    onnx.save(broken, artifact)
    rows = _layers("onnx", artifact, model, "int8-dynamic")
    verdicts = {r["layer"]: r["verdict"] for r in rows}
    assert next(r["layer"] for r in rows if r["verdict"] == "FAIL") == layer, rows
    assert all(verdicts[name] == "pass" for name in LAYERS[:LAYERS.index(layer)]), verdicts
    assert layer_lines(rows, "int8 step")[-1] == f"  first layer outside its bound inside the artifact: {layer}"


@backend_independent
def test_int8_static_layers_are_read_after_their_quantize_dequantize(model, tmp_path):
    """quantize_static (QDQ) keeps each tensor's name and adds X_DequantizeLinear_Output, the value the next
    layer reads: the Bidirectional is found as that one, and its error includes the quantization of its
    output (more than its E_w), still inside the int8-static bound (T/2 steps, doubled)."""
    _, path, inputs = model
    artifact = tmp_path / "model.onnx"
    shutil.copy(path, artifact)
    rng = np.random.default_rng(13)
    calibration = [[rng.normal(size=(1,) + inputs[0].shape[1:]).astype(np.float32)] for _ in range(8)]
    reduced.reduce_artifact("onnx", str(artifact), "int8-static", calibration)
    rows = {r["layer"]: r for r in _layers("onnx", artifact, model, "int8-static")}
    assert rows["recurrent_0"]["tensor"] == "recurrent_0_DequantizeLinear_Output", rows
    assert rows["head"]["tensor"] == "head", rows  # the graph output: DequantizeLinear's, the float one renamed
    for row in rows.values():
        assert row["weight_error"] < row["error"] <= row["allowed"], row


@backend_independent
def test_openvino_float16_artifact_gives_each_layer_its_errors(model, tmp_path):
    """OpenVINO's float16 artifact (compress_to_fp16, of the native ONNX file): each layer found by its name,
    off the oracle by a fraction of a float16 ulp, inside its bound."""
    require_export_modules("openvino")
    import openvino as ov
    _, path, _ = model
    artifact = tmp_path / "model.xml"
    ov.save_model(ov.Core().read_model(str(path)), str(artifact), compress_to_fp16=False)
    reduced.reduce_artifact("openvino", str(artifact), "float16", None)
    rows = _layers("openvino", artifact, model, "float16")
    assert [r["layer"] for r in rows] == LAYERS
    for row in rows:
        assert row["tensor"] is not None and 0 < row["error"] <= row["allowed"], row
        assert 0 < row["weight_error"] and row["error"] / row["unit"] < 1, row


@backend_independent
def test_a_time_major_tensor_is_read_batch_major_and_a_superseded_one_is_not():
    """The matching rule's two extensions: a tensor of the layer's shape time-major (tf2onnx's recurrent
    outputs) is read batch-major, and a QDQ graph's float tensor X is passed over for X_DequantizeLinear_Output,
    the value the next layer reads, however close X is."""
    from keras_impl.verify.artifact import _closest
    expected = np.random.default_rng(2).normal(size=(3, 5, 4))  # (B, T, U)
    near = expected + 1e-3
    found = _closest({"rec/concat:0": near.swapaxes(0, 1), "rec/other:0": expected[:, :, :2]}, expected,
                     lambda t: "rec" in t)
    assert found == (pytest.approx(1e-3), "rec/concat:0 (time-major)")
    qdq = {"rec": expected, "rec_DequantizeLinear_Output": near, "rec_QuantizeLinear_Input": expected}
    assert _closest(qdq, expected, lambda t: "rec" in t) == (pytest.approx(1e-3), "rec_DequantizeLinear_Output")


@backend_independent
def test_the_report_shows_the_set_furthest_from_its_bound_and_a_failed_route_names_its_layer():
    """bilstm export's side (keras_impl/export/pipeline.py): of the worker's per-set layers, the set whose output
    is furthest past its bound is shown, and a route that failed its verification names its first layer
    outside its bound."""
    from keras_impl.export.pipeline import _first_layer_outside, _pick_layers

    def rows(verdict):
        return [{"layer": "recurrent_0", "verdict": "pass"}, {"layer": "head", "verdict": verdict}]
    result = {"sets": [{"set": 0, "vs_oracle": 1e-3, "bound": 4e-2}, {"set": 1, "vs_oracle": 9e-2, "bound": 4e-2},
                       {"set": 2, "vs_oracle": 5e-2, "bound": 4e-2}]}
    _pick_layers(result, [rows("pass"), rows("FAIL"), rows("FAIL")])
    assert result["layers_set"] == 1 and result["layers"] == rows("FAIL")
    assert _first_layer_outside(result) == "; first layer outside its bound inside the artifact: head"
    assert _first_layer_outside({"layers": rows("pass")}) == ""
    refused = {"sets": result["sets"]}
    _pick_layers(refused, {"error": "RuntimeError: no tensors"})
    assert refused["layers"] == {"error": "RuntimeError: no tensors"} and _first_layer_outside(refused) == ""


@backend_independent
@pytest.mark.slow  # a TensorFlow worker (tf2onnx) and onnxruntime: ~1.5 minutes on a busy CPU
def test_export_of_a_float16_onnx_artifact_reports_each_layer(tmp_path, capsys):
    """`bilstm export --precision float16 --verify` from TensorFlow (tf2onnx, then convert_float_to_float16):
    the Bidirectional found time-major, the head by place, each with its own E_w and bound."""
    import json

    from parity_tests.conftest import run_bilstm
    require_export_modules("onnx", "onnxruntime", "tensorflow")
    out = tmp_path / "fp16"
    code, stdout, err = run_bilstm(["export", "--format", "onnx", "--backend", "tensorflow", "--units", "4",
                                    "--timesteps", "5", "--features", "3", "--seed", "2", "--precision", "float16",
                                    "--verify", "--accuracy-seeds", "0", "--out", out], capsys)
    assert code == 0, stdout + err
    verified = json.loads((out / "export.json").read_text())["verify"]
    rows = {r["layer"]: r for r in verified["layers"]}
    assert set(rows) == set(LAYERS), rows
    assert rows["recurrent_0"]["tensor"].endswith("(time-major)"), rows
    for row in rows.values():
        assert 0 < row["error"] <= row["allowed"] and row["weight_error"] > 0, row
    assert "inside the artifact (set " in stdout and "    head: " in stdout
