"""``bilstm export``: artifacts run in their own runtime, checked against Keras and the oracle.

The command never imports Keras: it runs each export in a worker process on the backend its
``--backend`` names and each artifact in a runtime process, whatever this pytest process's
backend. So the tests that go through the command run in one ``KERAS_BACKEND`` pass only
(``COMMAND_PASS``); the known upstream failures of one exporter run in-process, in the pass of
the backend they belong to. Each command test spawns processes (seconds each): a few small cases
here, the wider ones behind ``-m slow``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from keras_impl.backend import configured_backend
from parity_tests.conftest import nonblank_lines, run_bilstm

BACKEND = configured_backend()
COMMAND_PASS = "torch"  # the shortest pass in CI; the command's results do not depend on this process's backend
command_pass = pytest.mark.skipif(BACKEND != COMMAND_PASS, reason=f"bilstm export spawns its own backend processes: "
                                  f"run once, in the KERAS_BACKEND={COMMAND_PASS} pass")
needs_onnxruntime = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("onnxruntime") is None,
    reason="onnxruntime not installed (pip install '.[export]')")


def bilstm(argv, capsys) -> tuple[int, str, str]:
    """``bilstm export ARGV`` in this process: (exit status, stdout, stderr)."""
    return run_bilstm(["export", *argv], capsys)


# ---------------------------------------------------------------- arguments, before any work


@command_pass
@pytest.mark.parametrize("argv, says", [
    ([], "--format is required"),
    (["--matrix", "--format", "onnx"], "leave out --format"),
    (["--format", "onnx", "--resume"], "--resume goes with --matrix only"),
    (["--format", "pdf"], "invalid choice"),
    (["no_such.keras", "--format", "onnx"], "does not exist"),
    (["model.txt", "--format", "onnx"], "must end in"),
    (["--format", "onnx", "--units", "0"], "--units must be between"),
    (["--format", "onnx", "--units", "3,,2"], "--units must be integers"),
    (["--format", "onnx", "--mask-value", "nan"], "--mask-value must be finite"),
    (["--format", "onnx", "--direction", "forward", "--merge-mode", "sum"], "--merge-mode needs --direction"),
    (["--format", "onnx", "--backend", "mxnet"], "invalid choice"),
    (["--format", "onnx", "--out", " "], "--out must name a folder"),
])
def test_bad_arguments_are_refused_in_one_line_before_any_work(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.txt").write_text("not a model")
    code, _, err = bilstm(argv, capsys)
    assert code == 2
    assert len(nonblank_lines(err)) == 1 and says in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.txt"]  # nothing written


@command_pass
def test_a_model_file_with_options_and_an_existing_out_are_refused(tmp_path, capsys):
    existing = tmp_path / "out"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    fake = tmp_path / "m.keras"
    fake.write_bytes(b"PK")  # never opened: the option clash is refused first
    code, _, err = bilstm([fake, "--format", "onnx", "--units", "3"], capsys)
    assert code == 2 and "leave out --units" in err and len(nonblank_lines(err)) == 1
    code, _, err = bilstm(["--format", "onnx", "--out", existing], capsys)
    assert code == 2 and "exists" in err and "--overwrite" in err
    (tmp_path / "file").write_text("x")
    code, _, err = bilstm(["--format", "onnx", "--out", tmp_path / "file", "--overwrite"], capsys)
    assert code == 2 and "not a folder" in err
    assert (existing / "keep.txt").read_text() == "mine"


@command_pass
def test_verify_without_the_runtime_installed_is_refused_by_package(tmp_path, monkeypatch, capsys):
    from keras_impl.export import formats
    monkeypatch.setitem(formats.RUNTIME_PACKAGE, "onnx", "no_such_runtime_package")
    code, _, err = bilstm(["--format", "onnx", "--verify", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "no_such_runtime_package" in err and "pip install" in err
    assert not (tmp_path / "o").exists()


@command_pass
def test_a_lambda_layer_is_refused_by_name_before_anything_runs(tmp_path, capsys):
    import keras
    inputs = keras.Input((5, 2))
    h = keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(inputs)
    h = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))(h)
    keras.Model(inputs, h).save(tmp_path / "lambda.keras")
    code, _, err = bilstm([tmp_path / "lambda.keras", "--format", "onnx", "--out", tmp_path / "o"], capsys)
    assert code == 2 and "'doubler'" in err and "Lambda" in err
    assert not (tmp_path / "o").exists()


def test_routes_reload_where_the_source_backend_has_no_exporter():
    from keras_impl.export.routes import routes
    everything = ["tensorflow", "jax", "torch"]
    jax_onnx = routes("jax", "onnx", installed=everything)
    assert (jax_onnx[0].backend, jax_onnx[0].reload) == ("jax", False)  # its own exporter is tried first
    assert [r.backend for r in jax_onnx[1:]] == ["tensorflow", "torch"] and all(r.reload for r in jax_onnx[1:])
    from_tensorflow = routes("tensorflow", "torch_export", installed=everything)
    assert [(r.backend, r.reload) for r in from_tensorflow] == [("torch", True)]
    assert routes("tensorflow", "jax_export", installed=["tensorflow"]) == []  # no backend that can export it
    with pytest.raises(ValueError, match="fmt"):
        routes("jax", "pdf")


# ---------------------------------------------------------------- exported and run in the runtime


@pytest.fixture(scope="module")
def masked_model_file(tmp_path_factory):
    """A .keras file: Masking -> Bidirectional(LSTM, sum) -> Dense (per step), free time axis.

    Random, non-zero, non-symmetric weights, every dimension a different size (features 3, units 4, head 2).
    """
    import keras
    inputs = keras.Input((None, 3), name="x")
    h = keras.layers.Masking(0.0, name="masking")(inputs)
    h = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), merge_mode="sum", name="bi")(h)
    outputs = keras.layers.Dense(2, activation="sigmoid", name="head")(h)  # TimeDistributed: see the slow test
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(12)
    model.set_weights([rng.uniform(-0.8, 0.6, w.shape).astype("float32") for w in model.get_weights()])
    path = tmp_path_factory.mktemp("export") / "masked_bilstm.keras"
    model.save(path)
    return path


def _report(out) -> dict:
    return json.loads((out / "export.json").read_text())


@command_pass
@needs_onnxruntime
def test_onnx_from_tensorflow_verified_on_batches_and_lengths(masked_model_file, tmp_path, capsys):
    out = tmp_path / "onnx"
    code, stdout, err = bilstm([masked_model_file, "--format", "onnx", "--backend", "tensorflow", "--verify",
                                "--out", out], capsys)
    assert code == 0, err
    report = _report(out)
    assert report["route_backend"] == "tensorflow" and not report["reloaded"], report["failed_routes"]
    v = report["verify"]
    assert v["verdict"] == "pass" and v["worst_vs_oracle"] <= v["bounds"]["vs_oracle"]
    shapes = {tuple(r["inputs"][0]) for r in v["sets"]}
    assert {s[0] for s in shapes} >= {1, 3} and len({s[1] for s in shapes}) == 3  # batches and lengths vary
    families = {r["family"] for r in v["sets"]}
    assert {"batch 1", "batch > 1", "shorter than traced", "longer than traced", "left padding",
            "a fully masked row", "large magnitude (saturated gates)"} <= families
    assert "ids at the ends of the vocabulary (no token input)" in " ".join(v["notes"])
    assert "input families: every family passed" in stdout
    assert (out / "model.onnx").is_file() and not list(tmp_path.glob(".onnx.partial-*"))
    assert "exporting to onnx" in err and "worst" in stdout


@command_pass
@needs_onnxruntime
def test_onnx_from_torch_verified_for_a_named_masked_model(tmp_path, capsys):
    """The model named by options (built with random weights on torch), fixed time axis, Masking."""
    out = tmp_path / "onnx"
    code, stdout, err = bilstm(["--format", "onnx", "--backend", "torch", "--merge-mode", "ave", "--units", "4",
                                "--timesteps", "6", "--features", "3", "--mask-value", "0", "--seed", "3",
                                "--verify", "--out", out], capsys)
    assert code == 0, err
    report = _report(out)
    assert report["route_backend"] == "torch" and not report["reloaded"], report["failed_routes"]
    assert report["verify"]["verdict"] == "pass" and report["dynamic_batch"]
    assert {r["inputs"][0][0] for r in report["verify"]["sets"]} == {1, 2, 3}
    assert "shorter than traced, longer than traced (the time axis is static at 6)" in " ".join(
        report["verify"]["notes"])
    assert "padding" in json.dumps(report["verify"]["sets"]) or "masked" in json.dumps(report["verify"]["sets"])


@command_pass
@needs_onnxruntime
def test_onnx_from_jax_takes_the_reload_route(masked_model_file, tmp_path, capsys):
    out = tmp_path / "onnx"
    code, stdout, err = bilstm([masked_model_file, "--format", "onnx", "--backend", "jax", "--verify",
                                "--out", out], capsys)
    assert code == 0, err
    report = _report(out)
    assert report["failed_routes"][0]["route"].endswith("on jax")  # JAX's own exporter tried, and said why not
    assert report["reloaded"] and report["route_backend"] != "jax" and report["verify"]["verdict"] == "pass"
    assert "reload the .keras on" in stdout


@command_pass
@needs_onnxruntime
@pytest.mark.parametrize("reloads", [
    False,
    # every route, the reloads onto torch and JAX included: each exports again and fails too (2 minutes)
    pytest.param(True, marks=pytest.mark.slow),
], ids=["own_backend_routes", "every_route"])
def test_an_altered_artifact_fails_verification(masked_model_file, reloads, tmp_path, monkeypatch, capsys):
    """A weight of the ONNX file changed after the export: the runtime's outputs must fall outside the bound,
    on every route the command tries (the first failed artifact kept as the answer). In the default suite the
    routes on the file's own backend: tf2onnx, the native writer, tf2onnx at a static time axis."""
    import onnx
    from onnx import numpy_helper

    from keras_impl.export import routes, runtimes
    real = runtimes.run_sets_in_subprocess
    if not reloads:
        planned = routes.planned_routes
        monkeypatch.setattr(routes, "planned_routes",
                            lambda *a, **k: planned(*a, **{**k, "installed": ["tensorflow"]}))

    def altered(fmt, artifact_path, input_sets, **kwargs):
        model = onnx.load(str(artifact_path))
        largest = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
        weights = numpy_helper.to_array(largest)
        largest.CopyFrom(numpy_helper.from_array((weights + 0.01).astype(weights.dtype), largest.name))
        onnx.save(model, str(artifact_path))
        return real(fmt, artifact_path, input_sets, **kwargs)

    monkeypatch.setattr(runtimes, "run_sets_in_subprocess", altered)
    code, stdout, err = bilstm([masked_model_file, "--format", "onnx", "--backend", "tensorflow", "--verify",
                                "--out", tmp_path / "onnx"], capsys)
    assert code == 1, err
    report = _report(tmp_path / "onnx")
    v = report["verify"]
    assert v["verdict"] == "FAIL" and v["worst_vs_keras"] > v["bounds"]["vs_keras"]
    assert "FAIL" in stdout
    tried = [report["route"]] + [r["route"] for r in report["failed_routes"]]
    assert len(tried) >= 2 and all("verification failed" in r["error"] for r in report["failed_routes"]), tried
    assert reloads or not report["reloaded"] and all("reload" not in r for r in tried), tried


WIDE = [  # (source backend, format, model options, a note the export must carry, or None)
    ("tensorflow", "litert", ["--merge-mode", "mul"], "Flex"),
    ("torch", "openvino", ["--merge-mode", "sum"], None),  # float32 by default: OpenVINO asked for f32
    ("torch", "torch_export", ["--merge-mode", "concat"], None),
    ("torch", "torch_export", ["--mask-value", "0"], "static batch"),
    ("jax", "jax_export", ["--merge-mode", "ave", "--mask-value", "0"], None),
    ("jax", "tf_saved_model", ["--direction", "backward"], None),
    ("tensorflow", "torch_export", ["--cell", "gru"], None),
    ("torch", "onnx", ["--cell", "simple_rnn", "--units", "4,3"], None),
]


@command_pass
@pytest.mark.slow
@pytest.mark.parametrize("source, fmt, options, note", WIDE, ids=[f"{s}-{f}-{'-'.join(o)}" for s, f, o, _ in WIDE])
def test_every_format_verified_from_its_route(source, fmt, options, note, tmp_path, capsys):
    from keras_impl.export.formats import RUNTIME_PACKAGE
    pytest.importorskip(RUNTIME_PACKAGE[fmt], reason=f"{RUNTIME_PACKAGE[fmt]} not installed (pip install '.[export]')")
    out = tmp_path / fmt
    code, stdout, err = bilstm(["--format", fmt, "--backend", source, "--units", "4", "--timesteps", "6",
                                "--features", "3", *options, "--verify", "--out", out], capsys)
    assert code == 0, err
    report = _report(out)
    assert report["verify"]["verdict"] == "pass" and report["verify"]["ran_precision"] == "float32"
    if note is not None:
        assert any(note in n for n in report["notes"]) and not report["dynamic_batch"], report["notes"]


# ---------------------------------------------------------------- known upstream failures, one exporter each


def _small_model():
    import keras
    inputs = keras.Input((5, 2))
    h = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), merge_mode="concat")(inputs)
    return keras.Model(inputs, keras.layers.TimeDistributed(keras.layers.Dense(1))(h))


KNOWN = [  # (backend, format, what the upstream error says, cause), reproduced with Keras 3.15.1 on the CPU
    ("jax", "onnx", "requires the jax2onnx module",
     "Keras's ONNX exporter on JAX needs jax2onnx (keras/src/export/onnx.py L283-292), not installed by the "
     "export extra"),
    ("tensorflow", "openvino", "No conversion rule found for operations: TensorList",
     "OpenVINO's TensorFlow frontend cannot convert the TensorList ops of TensorFlow's while-loop LSTM"),
    ("jax", "openvino", "XlaCallModule", "OpenVINO cannot convert the XlaCallModule op of a JAX model's SavedModel"),
    ("jax", "litert", "LiteRT export requires TensorFlow or PyTorch backend",
     "Keras's LiteRT export refuses the JAX backend (keras/src/models/model.py L811-817)"),
    ("torch", "tf_saved_model", "mismatch between the structure of `inputs` and `dynamic_shapes`",
     "Keras's torch SavedModel export passes dynamic_shapes in a structure torch.export rejects "
     "(keras/src/backend/torch/export.py L66-85), and needs torch_xla besides"),
    ("torch", "litert", "install the `litert-torch` package",
     "Keras's LiteRT exporter on torch needs litert-torch, which the export extra does not install"),
]


# Converting a JAX model for OpenVINO forks a process while JAX's threads run; JAX warns about it at fork time
# (jax/_src/xla_bridge.py L162-166), outside the test's own code.
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("backend_name, fmt, says, cause", KNOWN, ids=[f"{b}-{f}" for b, f, _, _ in KNOWN])
def test_known_upstream_failure(backend_name, fmt, says, cause, tmp_path, request):
    """Strict xfail: an upstream fix makes the export work, and this test fail, at once."""
    if BACKEND != backend_name:
        pytest.skip(f"an exporter of the {backend_name} backend: runs in the KERAS_BACKEND={backend_name} pass")
    from keras_impl.export.exporters import export_model
    from keras_impl.export.formats import ARTIFACT_NAME, ExportError
    request.applymarker(pytest.mark.xfail(strict=True, raises=ExportError, reason=cause))
    try:
        export_model(_small_model(), fmt, tmp_path / ARTIFACT_NAME[fmt])
    except ExportError as exc:
        if says not in str(exc):  # another failure than the known one: not this xfail (an AssertionError fails it)
            raise AssertionError(f"expected the upstream error to say {says!r}, got: {exc}") from exc
        raise


def test_litert_on_tensorflow_falls_back_to_a_static_batch(tmp_path):
    """A dynamic batch lowers the LSTM loop to Flex (TensorList) ops that ai-edge-litert cannot run."""
    if BACKEND != "tensorflow":
        pytest.skip("Keras's LiteRT exporter on TensorFlow: runs in the KERAS_BACKEND=tensorflow pass")
    from keras_impl.export.exporters import export_model
    info = export_model(_small_model(), "litert", tmp_path / "model.tflite", dynamic_batch=True)
    assert info["dynamic_batch"] is False and any("Flex" in note for note in info["notes"])
    assert b"Flex" not in (tmp_path / "model.tflite").read_bytes()
