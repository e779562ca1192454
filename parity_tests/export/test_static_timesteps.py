"""``bilstm export --static-timesteps N``: a time axis fixed at N in the exported signature, and the automatic
fallback to it where no route with a free time axis works (keras_impl/export/time_axis.py).

The default suite holds the choice of the length and the routes (no Keras), the report of an automatic fallback
(the pipeline with its workers stood in for), and one real export a backend, in process, of a model whose free
time axis no upstream exporter of that backend handles: TimeDistributed over time (JAX's jax.export cannot trace
it over a symbolic time axis; TensorFlow's SavedModel traces it with the batch size in its place). The command
end to end (the tagger out to every format that needs the static axis) is ``slow``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from keras_impl.backend import configured_backend
from parity_tests.conftest import nonblank_lines, run_bilstm

BACKEND = configured_backend()
STATIC = 9   # not DEFAULT_STATIC_TIMESTEPS, not any length verify draws by default: the asked length is the one used


# ---------------------------------------------------------------- the length and the routes, no Keras

@pytest.mark.backend_independent
def test_the_length_is_asked_for_taken_from_the_model_or_the_default():
    from keras_impl.export.time_axis import DEFAULT_STATIC_TIMESTEPS, choose
    assert choose(STATIC, [None]) == (STATIC, None)             # asked for: every route, no fallback
    assert choose(None, [None]) == (None, DEFAULT_STATIC_TIMESTEPS)  # free: the fallback at the default
    assert choose(None, [None, 5]) == (None, 5)                  # another input's own length where one fixes it
    assert choose(None, [6]) == (None, None)                     # static already: nothing to fall back to
    assert choose(6, [6]) == (6, None)
    with pytest.raises(ValueError, match="fixes its time axis at 6 steps.*or give 6"):
        choose(8, [6])
    with pytest.raises(ValueError, match="at least 1"):
        choose(0, [None])


@pytest.mark.backend_independent
def test_declared_lengths_are_read_from_keras_3_and_keras_2_configs():
    from keras_impl.export.time_axis import declared_time_lengths
    keras3 = {"config": {"layers": [{"class_name": "InputLayer", "config": {"batch_shape": [None, None]}},
                                    {"class_name": "InputLayer", "config": {"batch_shape": [None, 7, 3]}},
                                    {"class_name": "Dense", "config": {"units": 2}}]}}
    keras2 = {"config": {"layers": [{"class_name": "LSTM", "config": {"batch_input_shape": [None, 11, 2]}}]}}
    assert declared_time_lengths(keras3) == [None, 7] and declared_time_lengths(keras2) == [11]


@pytest.mark.backend_independent
def test_static_routes_come_after_every_free_one_and_the_native_writer():
    from keras_impl.export.routes import planned_routes
    everything = ["tensorflow", "jax", "torch"]
    free = planned_routes("tensorflow", "onnx", installed=everything)
    auto = planned_routes("tensorflow", "onnx", installed=everything, fallback_timesteps=STATIC)
    assert auto[:len(free)] == free and free[-1].method == "native"
    fallback = auto[len(free):]
    assert [(r.backend, r.method) for r in fallback] == [(r.backend, r.method) for r in free[:-1]]
    assert all(r.static_timesteps == STATIC and r.automatic for r in fallback)
    assert "time axis static at 9" in fallback[0].describe()
    asked = planned_routes("jax", "jax_export", installed=everything, static_timesteps=STATIC)
    assert [(r.method, r.static_timesteps, r.automatic) for r in asked] == [("jax_export", STATIC, False)]
    assert planned_routes("jax", "jax_export", "native", installed=everything, fallback_timesteps=STATIC) == []


@pytest.mark.backend_independent
@pytest.mark.parametrize("argv, says", [
    (["--timesteps", "6", "--static-timesteps", "8"], "--static-timesteps 8: the model's input fixes its time axis "
                                                      "at 6 steps"),
    (["--static-timesteps", "0"], "--static-timesteps must be between"),
    (["--static-timesteps", "x"], "--static-timesteps"),
])
def test_a_length_the_model_cannot_take_is_refused_in_one_line(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_bilstm(["export", "--format", "onnx", "--out", tmp_path / "o", *argv], capsys)
    assert code == 2 and len(nonblank_lines(err)) == 1 and says in err, err
    assert list(tmp_path.iterdir()) == []  # refused before any work


@pytest.mark.backend_independent
def test_an_automatic_static_axis_is_said_in_the_report(tmp_path, monkeypatch):
    """The free-time route fails, the static one works: the report names the length and says why it was taken."""
    from keras_impl.export import pipeline
    from keras_impl.export.routes import Route
    jobs = []

    def worker(job, backend, scratch, name):
        jobs.append(job)
        if job["static_timesteps"] is None:
            return {"ok": False, "error": "refused: TimeDistributed over a free time axis"}
        return {"ok": True, "export": {"dynamic_batch": True, "static_timesteps": job["static_timesteps"],
                                       "notes": []}}

    monkeypatch.setattr(pipeline, "spawn_worker", worker)
    plan = {"format": "tf_saved_model", "source": "tensorflow", "model": {"file": str(tmp_path / "m.keras")},
            "routes": [Route("tf_saved_model", "tensorflow", "keras", False),
                       Route("tf_saved_model", "tensorflow", "keras", False, STATIC, True)],
            "dynamic_batch": True, "verify": False, "precision": "native"}
    code, report = pipeline._export(plan, tmp_path, tmp_path, lambda line: None)
    assert code == 0 and [job["static_timesteps"] for job in jobs] == [None, STATIC]
    assert report["static_timesteps"] == STATIC and report["static_time_automatic"]
    assert report["notes"][0].startswith(f"static time axis of {STATIC} chosen automatically: no route with a free")
    text = str(pipeline.ExportReport(report, exit_status=0))
    assert f"time: static at {STATIC} (chosen automatically)" in text and "route failed" in text


# ---------------------------------------------------------------- a real export, in this backend's process

def _time_distributed_model():
    """Masking -> Bidirectional(GRU(4), concat) -> TimeDistributed(Dense(2)), free batch and time, random weights."""
    import keras

    from reference import random_arrays
    x = keras.Input((None, 3), name="x")
    h = keras.layers.Masking(0.0, name="masking")(x)
    h = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True), merge_mode="concat", name="bigru")(h)
    model = keras.Model(x, keras.layers.TimeDistributed(keras.layers.Dense(2), name="head")(h))
    model.set_weights([w.astype("float32") for w in random_arrays([w.shape for w in model.get_weights()],
                                                                   np.random.default_rng(5))])
    return model


FAST_FORMAT = {"jax": ("jax_export", "jax_export"), "tensorflow": ("tf_saved_model", "keras")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The model, its export at STATIC steps on this backend's fast format, and the verify sets drawn for it."""
    if BACKEND not in FAST_FORMAT:
        pytest.skip(f"an exporter of the jax or tensorflow backend; {BACKEND}'s torch.export of a masked RNN takes "
                    f"minutes (the slow tests export it)")
    from keras_impl.export.exporters import export_model
    from keras_impl.export.formats import ARTIFACT_NAME
    from keras_impl.export.verify import input_sets
    from keras_impl.verify.describe import describe_model
    fmt, method = FAST_FORMAT[BACKEND]
    model = _time_distributed_model()
    artifact = tmp_path_factory.mktemp("static") / ARTIFACT_NAME[fmt]
    info = export_model(model, fmt, artifact, method=method, static_timesteps=STATIC)
    sets = input_sets(describe_model(model), dynamic_batch=True, static_timesteps=STATIC)
    return model, fmt, artifact, info, sets


def _load(fmt, artifact):
    """(the artifact's input shape, a function running it), in this process."""
    if fmt == "jax_export":
        from jax import export
        loaded = export.deserialize(bytearray(artifact.read_bytes()))
        return tuple(str(d) for d in loaded.in_avals[0].shape), lambda x: np.asarray(loaded.call(x))
    import tensorflow as tf
    serve = tf.saved_model.load(str(artifact)).signatures["serving_default"]
    spec = next(iter(serve.structured_input_signature[1].values()))
    return tuple(str(d) for d in spec.shape), lambda x: next(iter(serve(tf.constant(x)).values())).numpy()


def test_the_artifact_is_static_at_n_and_matches_keras(exported):
    """Every verify set is drawn at N; the largest (batch 7, padded rows) runs in the artifact and in Keras (the
    whole verification of every set, in its own runtime, is the slow command tests')."""
    from keras_impl.parity.tolerances import bound
    model, fmt, artifact, info, sets = exported
    assert info["static_timesteps"] == STATIC and any(f"static time axis of {STATIC}" in n for n in info["notes"])
    shape, run = _load(fmt, artifact)
    assert shape[1:] == (str(STATIC), "3") and shape[0] in ("b", "None")  # time fixed, batch free
    assert {s["inputs"][0].shape[1] for s in sets} == {STATIC} and len({s["inputs"][0].shape[0] for s in sets}) == 3
    x = max((s["inputs"][0] for s in sets), key=len)                     # (7, STATIC, 3)
    assert (x == 0).all(axis=-1).any() and not (x == 0).all(axis=-1).all()  # padded steps, which the mask skips
    expected = np.asarray(model(x, training=False))
    limit = bound("artifact", "float32", BACKEND).value
    assert np.abs(run(x) - expected).max() <= limit * max(1.0, np.abs(expected).max())


# ---------------------------------------------------------------- the command, end to end (slow)

command_pass = pytest.mark.skipif(BACKEND != "torch", reason="bilstm export spawns its own backend processes: "
                                  "run once, in the KERAS_BACKEND=torch pass")


@pytest.fixture(scope="module")
def tagger_file(tmp_path_factory):
    from keras_impl.export.matrix_models import tagger
    path = tmp_path_factory.mktemp("static_cli") / "tagger.keras"
    tagger(3).save(path)
    return path


@pytest.mark.slow
@command_pass
@pytest.mark.parametrize("fmt, source", [("tf_saved_model", "tensorflow"), ("litert", "tensorflow"),
                                         ("jax_export", "jax"), ("torch_export", "torch")])
def test_the_tagger_gets_a_static_time_route_automatically(tagger_file, tmp_path, capsys, fmt, source):
    from keras_impl.export.formats import RUNTIME_PACKAGE
    from keras_impl.export.time_axis import DEFAULT_STATIC_TIMESTEPS
    pytest.importorskip(RUNTIME_PACKAGE[fmt], reason=f"{RUNTIME_PACKAGE[fmt]} not installed (pip install '.[export]')")
    out = tmp_path / fmt
    code, stdout, err = run_bilstm(["export", tagger_file, "--format", fmt, "--backend", source, "--verify",
                                    "--out", out], capsys)
    assert code == 0, err
    report = json.loads((out / "export.json").read_text())
    assert report["static_time_automatic"] and report["static_timesteps"] == DEFAULT_STATIC_TIMESTEPS
    assert report["failed_routes"] and "chosen automatically" in stdout
    assert {tuple(r["inputs"][0])[1] for r in report["verify"]["sets"]} == {DEFAULT_STATIC_TIMESTEPS}
    assert report["verify"]["verdict"] == "pass"


@pytest.mark.slow
@command_pass
def test_an_asked_length_verifies_at_that_length(tagger_file, tmp_path, capsys):
    out = tmp_path / "sm"
    code, stdout, err = run_bilstm(["export", tagger_file, "--format", "tf_saved_model", "--backend", "tensorflow",
                                    "--static-timesteps", str(STATIC), "--verify", "--out", out], capsys)
    assert code == 0, err
    report = json.loads((out / "export.json").read_text())
    assert report["static_timesteps"] == STATIC and not report["static_time_automatic"]
    assert report["failed_routes"] == [] and f"time: static at {STATIC}\n" in stdout + "\n"
    assert {tuple(r["inputs"][0])[1] for r in report["verify"]["sets"]} == {STATIC}
