"""The native ONNX writer (keras_impl/export/native_onnx.py): its graphs run in ONNX Runtime and OpenVINO against
the oracle (reference.layers.graph_forward), its planted faults caught, its refusals one line, its CLI route.

The writer needs no Keras: the graphs are built here as layer lists with random non-zero, non-symmetric weights
(biases too), a different size for every dimension (features 3, embedding 4, units 5 then 6, head 2), and the
tests that use only them are ``backend_independent``. Masks: right padding through an Embedding(mask_zero) or a
Masking layer, with a fully masked row and a length-1 row in every batch of 3 or more, and masks with holes.
The default suite runs a covering subset (every cell, direction and merge mode, each mask source and
return_sequences setting among them); the full product is ``slow``. The bound is the project's float32 one
(``keras_impl.parity.tolerances.FLOAT32_ABS``, scaled by max(1, max |oracle|)), as ``bilstm export --verify``.
"""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from keras_impl import convert
from keras_impl.backend import configured_backend
from keras_impl.parity.tolerances import FLOAT32_ABS
from parity_tests.conftest import nonblank_lines, run_bilstm
from reference.layers import Layer, LayerGraph, graph_forward

ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install '.[export]')")
onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install '.[export]')")
from keras_impl.export import native_onnx  # noqa: E402 (needs onnx)
from keras_impl.export.native_onnx import NativeRefusal, write_onnx  # noqa: E402

FEATURES, EMBEDDING, VOCAB, HEAD = 3, 4, 11, 2
UNITS = (5, 6)
KIND = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
DIRECTIONS = [("forward", None), ("backward", None), ("bidirectional", "concat"), ("bidirectional", "sum"),
              ("bidirectional", "ave"), ("bidirectional", "mul")]
FRONTS = (None, "embedding", "masking")
# (batch, length, padding): right padding; "holes": each step valid with probability 0.6.
SHAPES = [(7, 8, "right"), (1, 1, "right"), (7, 3, "right"), (1, 40, "right"), (7, 40, "holes")]


# ------------------------------------------------------------------------------------------ builders

def recurrent_weights(rng, cell, features, units, reset_after=True):
    G = convert.GATES[cell]
    bias = (2, G * units) if cell == "gru" and reset_after else (G * units,)
    return tuple(rng.uniform(-0.7, 0.6, shape) for shape in ((features, G * units), (units, G * units), bias))


def cell_options(cell):
    options = {"activation": "tanh"}
    if cell != "simple_rnn":
        options["recurrent_activation"] = "sigmoid"
    if cell == "gru":
        options["reset_after"] = True
    return options


def build_graph(rng, cell, direction, merge, *, layers=2, return_sequences=True, front=None, zero_output=False,
                head="TimeDistributed"):
    """Input -> [Embedding(mask_zero) | Masking(0)] -> ``layers`` recurrent layers -> a softmax Dense head."""
    graph = [Layer("x", "InputLayer")]
    prev, width = "x", FEATURES
    if front == "embedding":
        graph.append(Layer("embedding", "Embedding", (prev,), {"mask_zero": True},
                           (rng.uniform(-1, 1, (VOCAB, EMBEDDING)),)))
        prev, width = "embedding", EMBEDDING
    elif front == "masking":
        graph.append(Layer("masking", "Masking", (prev,), {"mask_value": 0.0}))
        prev = "masking"
    for i in range(layers):
        units, rs = UNITS[i], return_sequences or i < layers - 1
        name = f"recurrent_{i}"
        if direction == "bidirectional":
            options = {**cell_options(cell), "cell": cell}
            graph.append(Layer(name, "Bidirectional", (prev,), {
                "merge_mode": merge, "return_sequences": rs, "forward": {**options, "go_backwards": False},
                "backward": {**options, "go_backwards": True}},
                recurrent_weights(rng, cell, width, units) + recurrent_weights(rng, cell, width, units)))
            width = 2 * units if merge == "concat" else units
        else:
            graph.append(Layer(name, KIND[cell], (prev,), {
                **cell_options(cell), "return_sequences": rs, "go_backwards": direction == "backward",
                "zero_output_for_mask": zero_output}, recurrent_weights(rng, cell, width, units)))
            width = units
        prev = name
    kind = head if return_sequences else "Dense"
    graph.append(Layer("head", kind, (prev,), {"activation": "softmax"},
                       (rng.uniform(-1, 1, (width, HEAD)), rng.uniform(-0.5, 0.5, HEAD))))
    return LayerGraph(("x",), tuple(graph), ("head",))


def input_spec(front):
    return {"x": ("int32", (None,))} if front == "embedding" else {"x": ("float32", (None, FEATURES))}


def draw_input(rng, front, batch, length, padding):
    """Ids (trailing 0 padding) or features (trailing rows of 0 where masked): row 0 full, row 1 fully masked,
    row 2 of length 1 when the batch has them; "holes": any step masked."""
    if padding == "holes":
        valid = rng.random((batch, length)) < 0.6
        valid[0] = True
    else:
        lengths = rng.integers(0, length + 1, batch)
        lengths[0] = length
        lengths[1:3] = [0, 1][:max(0, min(2, batch - 1))]
        valid = np.arange(length)[None, :] < lengths[:, None]
    if front == "embedding":
        return np.where(valid, rng.integers(1, VOCAB, (batch, length)), 0).astype(np.int32)
    x = rng.standard_normal((batch, length, FEATURES))
    return (np.where(valid[..., None], x, 0.0) if front == "masking" else x).astype(np.float32)


def session(proto):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # small graphs, 2 shared cores
    options.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def worst_error(run, graph, x) -> tuple[float, float]:
    """(max |artifact - oracle|, the bound for it) for one input."""
    got = run(x)
    expected = graph_forward(graph, [x])[graph.outputs[0]][0]
    assert got.shape == expected.shape
    return float(np.max(np.abs(got - expected))), FLOAT32_ABS * max(1.0, float(np.max(np.abs(expected))))


def check_in_onnxruntime(graph, front, rng, shapes=SHAPES):
    proto = write_onnx(graph, input_spec(front))
    runner = session(proto)
    for batch, length, padding in shapes:
        if front is None and padding == "holes":
            continue
        x = draw_input(rng, front, batch, length, padding)
        error, bound = worst_error(lambda v: runner.run(None, {"x": v})[0], graph, x)
        assert error <= bound, f"batch {batch}, length {length}, {padding} padding: error {error:.2e} > {bound:.2e}"
    return proto


# ------------------------------------------------------------------------------- against the oracle

def covering_cases():
    """Every cell x direction/merge, the mask source, return_sequences and zero_output_for_mask rotating."""
    cases = []
    for k, (cell, (direction, merge)) in enumerate(itertools.product(convert.GATES, DIRECTIONS)):
        cases.append((cell, direction, merge, FRONTS[k % 3], k % 2 == 0,
                      direction != "bidirectional" and k % 4 == 1, 1 + k % 2))
    return cases


def _case_id(case):
    cell, direction, merge, front, rs, zero, layers = case
    return "-".join([cell, direction] + ([merge] if merge else []) + [front or "nomask", "seq" if rs else "last"]
                    + (["zero_output"] if zero else []) + [f"{layers}layers"])


@pytest.mark.backend_independent
@pytest.mark.parametrize("case", covering_cases(), ids=_case_id)
def test_native_onnx_matches_the_oracle_in_onnxruntime(case, rng):
    cell, direction, merge, front, rs, zero, layers = case
    graph = build_graph(rng, cell, direction, merge, layers=layers, return_sequences=rs, front=front,
                        zero_output=zero)
    check_in_onnxruntime(graph, front, rng)


def full_product():
    for cell, (direction, merge), front, rs, layers in itertools.product(convert.GATES, DIRECTIONS, FRONTS,
                                                                        (True, False), (1, 2)):
        for zero in ((False, True) if direction != "bidirectional" and front else (False,)):
            yield cell, direction, merge, front, rs, zero, layers


@pytest.mark.slow
@pytest.mark.backend_independent
@pytest.mark.parametrize("case", list(full_product()), ids=_case_id)
def test_native_onnx_full_product_matches_the_oracle(case, rng):
    cell, direction, merge, front, rs, zero, layers = case
    graph = build_graph(rng, cell, direction, merge, layers=layers, return_sequences=rs, front=front,
                        zero_output=zero)
    shapes = [(b, t, p) for b in (1, 7) for t in (1, 3, 8, 40) for p in ("right", "holes")]
    check_in_onnxruntime(graph, front, rng, shapes)


@pytest.mark.backend_independent
def test_the_graph_is_checked_named_after_the_layers_with_free_batch_and_time(rng):
    graph = build_graph(rng, "lstm", "bidirectional", "sum", front="embedding")
    proto = write_onnx(graph, input_spec("embedding"))
    onnx.checker.check_model(proto, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    [x] = inferred.graph.input
    assert [d.dim_param for d in x.type.tensor_type.shape.dim] == ["batch", "time"]
    [y] = inferred.graph.output
    assert y.name == "head"
    dims = y.type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[:2]] == ["batch", "time"] and dims[2].dim_value == HEAD
    produced = {out for node in proto.graph.node for out in node.output}
    assert {"embedding", "embedding/mask", "recurrent_0", "recurrent_1", "head"} <= produced


@pytest.mark.backend_independent
def test_pooling_dense_concatenate_and_masking_value(rng):
    """Masking(0.5) -> [BiGRU(ave) last step | LSTM -> GlobalAveragePooling1D | GlobalMaxPooling1D] -> Concatenate
    -> Dropout -> Dense(tanh) -> Activation(sigmoid); a fully masked row's masked mean is NaN, as in Keras."""
    options = {**cell_options("gru"), "cell": "gru"}
    layers = [Layer("x", "InputLayer"), Layer("masking", "Masking", ("x",), {"mask_value": 0.5}),
              Layer("bigru", "Bidirectional", ("masking",), {
                  "merge_mode": "ave", "return_sequences": False, "forward": {**options, "go_backwards": False},
                  "backward": {**options, "go_backwards": True}},
                  recurrent_weights(rng, "gru", FEATURES, 5) + recurrent_weights(rng, "gru", FEATURES, 5)),
              Layer("lstm", "LSTM", ("masking",), {**cell_options("lstm"), "return_sequences": True},
                    recurrent_weights(rng, "lstm", FEATURES, 4)),
              Layer("mean", "GlobalAveragePooling1D", ("lstm",)),
              Layer("max", "GlobalMaxPooling1D", ("lstm",)),
              Layer("joined", "Concatenate", ("bigru", "mean", "max")),
              Layer("dropout", "Dropout", ("joined",)),
              Layer("dense", "Dense", ("dropout",), {"activation": "tanh"},
                    (rng.uniform(-1, 1, (13, 6)), rng.uniform(-1, 1, 6))),
              Layer("out", "Activation", ("dense",), {"activation": "sigmoid"})]
    graph = LayerGraph(("x",), tuple(layers), ("out",))
    runner = session(write_onnx(graph, {"x": ("float32", (None, FEATURES))}))
    x = rng.standard_normal((5, 9, FEATURES)).astype(np.float32)
    x[1] = 0.5      # fully masked
    x[2, 1:] = 0.5  # length 1
    x[3, 4] = 0.5   # a hole
    got = runner.run(None, {"x": x})[0]
    expected = graph_forward(graph, [x])["out"][0]
    assert np.isnan(expected[1]).any() and np.array_equal(np.isnan(got), np.isnan(expected))
    finite = ~np.isnan(expected)
    assert np.max(np.abs(got[finite] - expected[finite])) <= FLOAT32_ABS


# -------------------------------------------------------------------------------- planted faults

def _tagger_like(rng):
    return build_graph(rng, "lstm", "bidirectional", "concat", front="embedding")


def _error_over_shapes(graph, rng) -> float:
    runner = session(write_onnx(graph, input_spec("embedding")))
    worst = 0.0
    for batch, length, padding in SHAPES:
        x = draw_input(rng, "embedding", batch, length, padding)
        error, bound = worst_error(lambda v: runner.run(None, {"x": v})[0], graph, x)
        worst = max(worst, error / bound)
    return worst  # in units of the bound


@pytest.mark.backend_independent
def test_a_swapped_gate_order_in_the_writer_fails(rng, monkeypatch):
    graph = _tagger_like(rng)
    assert _error_over_shapes(graph, np.random.default_rng(1)) <= 1
    monkeypatch.setitem(convert._ONNX_ORDER, "lstm", (0, 3, 2, 1))  # o and f swapped in the written W, R, B
    assert _error_over_shapes(graph, np.random.default_rng(1)) > 100


@pytest.mark.backend_independent
def test_a_valid_step_count_off_by_one_fails(rng, monkeypatch):
    """The count of valid steps (what sequence_lens would hold) one short: the last output read one step early."""
    graph = _tagger_like(rng)
    real = native_onnx.valid_step_count

    def one_short(b, steps, name):
        return b.op("Sub", [real(b, steps, name), b.const(f"{name}/planted", 1, np.int64)], f"{name}/one_short")

    monkeypatch.setattr(native_onnx, "valid_step_count", one_short)
    assert _error_over_shapes(graph, np.random.default_rng(1)) > 100


# ------------------------------------------------------------------------------------------ refusals

@pytest.mark.backend_independent
@pytest.mark.parametrize("change, says", [
    (lambda g: {"forward": {**g["forward"], "recurrent_activation": "hard_sigmoid"}}, "cell activation hard_sigmoid"),
    (lambda g: {"forward": {**g["forward"], "go_backwards": True}, "backward": {**g["backward"], "go_backwards": False}},
     "forward copy runs backwards"),
])
def test_what_the_writer_does_not_write_is_refused_in_one_line(rng, change, says):
    graph = build_graph(rng, "lstm", "bidirectional", "concat", layers=1)
    layer = graph.layers[1]
    changed = Layer(layer.name, layer.kind, layer.inbound, {**layer.options, **change(layer.options)}, layer.weights)
    with pytest.raises(NativeRefusal) as refused:
        write_onnx(LayerGraph(graph.inputs, (graph.layers[0], changed) + graph.layers[2:], graph.outputs),
                   input_spec(None))
    message = str(refused.value)
    assert says in message and "'recurrent_0'" in message and "\n" not in message


# ------------------------------------------------------------------------------------------ OpenVINO

@pytest.mark.backend_independent
def test_openvino_reads_the_same_artifacts(rng):
    ov = pytest.importorskip("openvino", reason="openvino not installed (pip install '.[export]')")
    import io
    core = ov.Core()
    for cell, direction, merge, front, rs in [("lstm", "bidirectional", "sum", "embedding", True),
                                              ("gru", "backward", None, "masking", False),
                                              ("simple_rnn", "forward", None, "masking", True)]:
        graph = build_graph(rng, cell, direction, merge, return_sequences=rs, front=front)
        proto = write_onnx(graph, input_spec(front))
        compiled = core.compile_model(ov.convert_model(io.BytesIO(proto.SerializeToString())), "CPU",
                                      {"INFERENCE_PRECISION_HINT": "f32"})
        for batch, length, padding in [(7, 8, "right"), (1, 1, "right"), (7, 40, "holes")]:
            x = draw_input(rng, front, batch, length, padding)
            error, bound = worst_error(lambda v: np.asarray(compiled([v])[compiled.outputs[0]]), graph, x)
            assert error <= bound, f"{cell} {direction}: batch {batch}, length {length}, {padding}: {error:.2e}"


# ------------------------------------------------------------------------------------ Keras and the CLI

def tagger_model():
    """The issue's tagger, as the export matrix builds it (keras_impl/export/matrix_models.py)."""
    from keras_impl.export.matrix_models import tagger
    return tagger(3)


@pytest.mark.parametrize("fmt", ["onnx", "tf_saved_model", "litert"])
def test_tensorflow_routes_refuse_the_tagger_time_distributed_over_free_time(fmt):
    """Token ids are (batch, time): the refusal once looked for a rank-3 input only, and for onnx only."""
    from keras_impl.export.exporters import _refuse_known_wrong
    from keras_impl.export.formats import ExportError
    with pytest.raises(ExportError, match="TimeDistributed over a free time axis"):
        _refuse_known_wrong(tagger_model(), "tensorflow", fmt)


BACKEND = configured_backend()
command_pass = pytest.mark.skipif(BACKEND != "torch", reason="bilstm export spawns its own backend processes: "
                                  "run once, in the KERAS_BACKEND=torch pass")


@pytest.fixture(scope="module")
def tagger_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("native") / "tagger.keras"
    tagger_model().save(path)
    return path


def _report(out) -> dict:
    return json.loads((out / "export.json").read_text())


@command_pass
def test_cli_native_route_verifies_the_tagger(tagger_file, tmp_path, capsys):
    code, stdout, err = run_bilstm(["export", tagger_file, "--format", "onnx", "--route", "native", "--verify",
                                    "--out", tmp_path / "native"], capsys)
    assert code == 0, err
    report = _report(tmp_path / "native")
    assert report["route"] == "native ONNX writer" and report["failed_routes"] == []
    assert report["verify"]["verdict"] == "pass" and report["verify"]["worst_vs_oracle"] <= FLOAT32_ABS
    assert (tmp_path / "native" / "model.onnx").is_file()


@pytest.mark.backend_independent
@pytest.mark.parametrize("fmt, files, expected", [
    ("onnx", ["model.onnx"], ["model.FAILED.onnx"]),
    ("openvino", ["model.xml", "model.bin"], ["model.FAILED.bin", "model.FAILED.xml"]),
    ("tf_saved_model", ["saved_model/"], ["saved_model.FAILED"]),
])
def test_mark_failed_renames_the_artifact_and_its_weights(tmp_path, fmt, files, expected):
    from keras_impl.export.destination import EXPORT_ENTRIES, mark_failed
    for name in files:
        (tmp_path / name.rstrip("/")).mkdir() if name.endswith("/") else (tmp_path / name).write_text("x")
    assert mark_failed(tmp_path, fmt) == {"openvino": "model.FAILED.xml"}.get(fmt, expected[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == expected
    assert set(expected) <= EXPORT_ENTRIES  # --overwrite may replace a folder that holds them


@pytest.mark.slow
@command_pass
def test_a_failed_artifact_is_kept_under_a_name_that_says_so(tagger_file, tmp_path, monkeypatch, capsys):
    from onnx import numpy_helper

    from keras_impl.export import runtimes
    real = runtimes.run_sets_in_subprocess

    def altered(fmt, artifact_path, input_sets, **kwargs):  # the embedding table changed after the export
        model = onnx.load(str(artifact_path))
        table = next(t for t in model.graph.initializer if t.name == "embedding/embeddings")
        table.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(table) + np.float32(0.05), table.name))
        onnx.save(model, str(artifact_path))
        return real(fmt, artifact_path, input_sets, **kwargs)

    monkeypatch.setattr(runtimes, "run_sets_in_subprocess", altered)
    out = tmp_path / "failed"
    code, stdout, err = run_bilstm(["export", tagger_file, "--format", "onnx", "--route", "native", "--verify",
                                    "--out", out], capsys)
    assert code == 1, err
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.FAILED.onnx"]
    report = _report(out)
    assert report["artifact"].endswith("model.FAILED.onnx") and report["verify"]["verdict"] == "FAIL"


@command_pass
def test_route_native_is_refused_for_a_format_it_does_not_reach(tagger_file, tmp_path, capsys):
    code, _, err = run_bilstm(["export", tagger_file, "--format", "litert", "--route", "native",
                               "--out", tmp_path / "x"], capsys)
    assert code == 2 and len(nonblank_lines(err)) == 1 and "--route native writes onnx and openvino" in err


@pytest.mark.slow
@command_pass
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])  # OpenVINO in float32 by default
def test_cli_auto_route_reaches_the_tagger(tagger_file, tmp_path, capsys, fmt):
    """Every upstream route fails for the tagger (the issue's table); the native route is taken and verifies."""
    out = tmp_path / fmt
    code, stdout, err = run_bilstm(["export", tagger_file, "--format", fmt, "--verify", "--out", out], capsys)
    assert code == 0, err
    report = _report(out)
    assert report["route"].startswith("native ONNX writer") and report["failed_routes"]
    assert any("every upstream route failed" in note for note in report["notes"])


def _verified(verdict: str, precision: str = "float32") -> dict:
    return {"verdict": verdict, "worst_vs_oracle": 0.5 if verdict == "FAIL" else 1e-8, "worst_vs_keras": 0.5,
            "bounds": {"vs_oracle": 1e-5, "vs_keras": 1e-5}, "ran_precision": precision, "sets": [], "notes": []}


@pytest.mark.backend_independent
@pytest.mark.parametrize("precision, taken", [("float32", "native ONNX writer"), ("bfloat16", "keras on tensorflow")])
def test_an_upstream_artifact_outside_its_bounds_gives_way_to_the_native_route(tmp_path, monkeypatch, precision,
                                                                                taken):
    """Verified outside its bounds in float32, the upstream artifact gives way; in bfloat16 every route would
    fail alike, so the search ends there."""
    from keras_impl.export import pipeline
    from keras_impl.export.routes import Route
    verdicts = iter([(1, _verified("FAIL", precision)), (0, _verified("pass"))])
    monkeypatch.setattr(pipeline, "spawn_worker", lambda job, backend, scratch, name: {
        "ok": True, "export": {"dynamic_batch": True, "notes": []}, "sets": []})
    monkeypatch.setattr(pipeline, "_verify", lambda *args: next(verdicts))
    plan = {"format": "onnx", "source": "tensorflow", "model": {"file": str(tmp_path / "m.keras")},
            "routes": [Route("onnx", "tensorflow", "keras", False), Route("onnx", "tensorflow", "native", False)],
            "dynamic_batch": True, "verify": True, "precision": "native"}
    code, report = pipeline._export(plan, tmp_path, tmp_path, lambda line: None)
    assert report["route"] == taken
    if taken == "native ONNX writer":
        assert code == 0 and report["failed_routes"][0]["error"].startswith("verification failed")
        assert any("every upstream route failed" in note for note in report["notes"])
    else:
        assert code == 1 and report["failed_routes"] == []
