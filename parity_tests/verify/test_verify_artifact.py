"""``bilstm verify MODEL --artifact FILE`` (issue 18, item 4): an artifact made outside the tool's own export
run, checked against the oracle, and for ONNX layer by layer, so that a planted fault is named.

The artifacts are made once outside the tool, by Keras's own exporters on TensorFlow in a plain Python
process (ONNX through tf2onnx; LiteRT), and treated as anybody's files: copied, one initializer altered, an
output added; another, traced at one length, by bilstm-lab's ONNX writer with its time axis pinned. What is checked does not
depend on the Keras backend of the process, so it runs in one pass (backend_independent).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from parity_tests.conftest import randomise_weights, run_bilstm

pytestmark = [pytest.mark.backend_independent]
pytest.importorskip("onnxruntime", reason="the export extra's ONNX Runtime runs the artifact")


MAKE_ARTIFACTS = """
import sys
import keras
import numpy as np
model = keras.saving.load_model(sys.argv[1])
model(np.zeros((2, 6, 3), "float32"))  # Keras's ONNX exporter takes a model called at least once
if sys.argv[2].endswith(".onnx"):
    model.export(sys.argv[2], format="onnx", verbose=False)  # Keras on TensorFlow: tf2onnx
else:  # LiteRT: a batch of one (a free batch lowers the recurrent loop to TensorList ops that need Flex)
    model.export(sys.argv[2], format="litert", verbose=False,
                 input_signature=[keras.InputSpec(shape=(1, 6, 3), dtype="float32")])
"""


def _made_outside(model_file, artifact):
    """``artifact`` made from ``model_file`` by Keras's own exporter on TensorFlow, in a plain Python process."""
    import os
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", MAKE_ARTIFACTS, str(model_file), str(artifact)],
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"}, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return artifact


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """``(model file, ONNX artifact)``: a masked BiLSTM tagger, and its ONNX file (tf2onnx) made outside
    bilstm-lab, by Keras's own exporter on TensorFlow in a plain Python process."""
    import keras
    L = keras.layers
    folder = tmp_path_factory.mktemp("artifact")
    model = keras.Sequential([keras.Input((6, 3)), L.Masking(0.0, name="masking"),
                              L.Bidirectional(L.LSTM(4, return_sequences=True), name="bi"),
                              L.TimeDistributed(L.Dense(2, activation="softmax"), name="head")])
    randomise_weights(model, np.random.default_rng(1)).save(folder / "m.keras")
    return folder / "m.keras", _made_outside(folder / "m.keras", folder / "model.onnx")


def _altered(artifact, tmp_path, name_part, rank, where=0):
    """A copy of the artifact with the first initializer of ``rank`` whose name holds ``name_part`` moved (its
    element ``where``, flat)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(artifact))
    for k, init in enumerate(model.graph.initializer):
        if name_part in init.name and len(init.dims) == rank:
            w = numpy_helper.to_array(init).copy()
            w.flat[where] += 0.5
            model.graph.initializer[k].CopyFrom(numpy_helper.from_array(w, init.name))
            break
    else:
        raise AssertionError(f"no initializer of rank {rank} named after {name_part!r}")
    path = tmp_path / "altered.onnx"
    onnx.save(model, str(path))
    return path


def test_an_onnx_artifact_is_checked_and_each_layer_found_inside_it(made, capsys):
    model, artifact = made[:2]
    rc, out, err = run_bilstm(["verify", model, "--artifact", artifact], capsys)
    assert rc == 0, out + err
    assert "set 1 batch > 1: inputs (3, 6, 3) output 0 (3, 6, 2)" in out
    assert "set 3 left padding: inputs (2, 6, 3)" in out and "input families: every family passed" in out
    assert "    head: Identity:0:" in out and "pass" in out.split("    head:")[1].splitlines()[0]
    assert "first layer outside its bound" not in out
    decisions = next(line for line in out.splitlines() if "decisions of output 0" in line)
    agree, total = map(int, decisions.split("): ")[1].split()[0].split("/"))
    assert "(argmax over 2 classes)" in decisions and agree == total > 0


@pytest.mark.parametrize("name_part, rank, layer", [("head", 2, "head"), ("backward_lstm", 2, "bi")],
                         ids=["head_kernel", "backward_lstm_kernel"])
def test_an_altered_initializer_is_named_by_its_layer(made, tmp_path, capsys, name_part, rank, layer):
    """One initializer of the tf2onnx file moved: the layer it belongs to is the first outside its bound inside
    the artifact (ONNX Runtime)."""
    model, artifact = made[:2]
    rc, out, err = run_bilstm(["verify", model, "--artifact", _altered(artifact, tmp_path, name_part, rank),
                               "--inputs", _inputs(tmp_path)], capsys)
    assert rc == 1, out + err
    assert f"first layer outside its bound inside the artifact: {layer}" in out


@pytest.mark.slow  # OpenVINO compiles the graph twice (the run, then every tensor an output)
def test_an_altered_weight_is_named_by_its_layer_in_openvino(traced_at_8, tmp_path, capsys):
    """The backward direction's recurrent weights moved inside an ONNX file OpenVINO reads (bilstm-lab's writer:
    ONNX GRU nodes; OpenVINO's ONNX frontend cannot convert tf2onnx's recurrent Loops), run by OpenVINO itself
    (--format openvino): the Bidirectional is the first layer outside its bound inside the artifact."""
    pytest.importorskip("openvino", reason="the export extra's OpenVINO runs the artifact")
    model, artifact = traced_at_8
    np.save(tmp_path / "x.npy", np.random.default_rng(6).standard_normal((2, 8, 3)).astype("float32"))
    rc, out, err = run_bilstm(["verify", model, "--artifact", _altered(artifact, tmp_path, "bi/", 3, where=-1),
                               "--format", "openvino", "--inputs", tmp_path / "x.npy"], capsys)
    assert rc == 1, out + err
    assert "first layer outside its bound inside the artifact: bi" in out


def _inputs(tmp_path):
    """A small --inputs array for the model of ``made`` (one set instead of the families: the families' own
    test is below)."""
    x = np.random.default_rng(4).standard_normal((3, 6, 3)).astype("float32")
    x[1, 4:] = 0.0  # a padded row
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


@pytest.mark.slow  # one more TensorFlow process, converting to LiteRT
def test_a_litert_artifact_is_checked_layer_by_layer_with_preserved_tensors(made, tmp_path, capsys):
    """LiteRT's Interpreter with experimental_preserve_all_tensors keeps every intermediate tensor: the layers
    whose tensors the converter named after them are found, the others said to have none of their own."""
    pytest.importorskip("ai_edge_litert", reason="the export extra's LiteRT runs the artifact")
    model = made[0]
    tflite = _made_outside(model, tmp_path / "model.tflite")
    rc, out, err = run_bilstm(["verify", model, "--artifact", tflite, "--inputs", _inputs(tmp_path)], capsys)
    assert rc == 0, out + err
    assert "one sequence a call" in out
    inside = out.split("inside the artifact")[1]
    head = inside.split("    head: ")[1].splitlines()[0]
    assert head.endswith("pass") and "no tensor" not in head, inside


def _two_outputs(artifact, tmp_path):
    """A copy of the artifact with one more output (its first node's), and the names of its two outputs."""
    import onnx
    onnx_model = onnx.load(str(artifact))
    onnx_model.graph.output.append(onnx.ValueInfoProto(name=onnx_model.graph.node[0].output[0]))
    onnx.save(onnx_model, str(tmp_path / "two.onnx"))
    return tmp_path / "two.onnx", [o.name for o in onnx_model.graph.output]


def test_an_artifact_of_another_interface_is_one_line(made, tmp_path, capsys):
    model, artifact = made[:2]
    _, (first, extra) = _two_outputs(artifact, tmp_path)
    rc, out, err = run_bilstm(["verify", model, "--artifact", tmp_path / "two.onnx"], capsys)
    assert rc == 2 and err.strip() == (f"bilstm verify: the artifact has 2 outputs ({first}, {extra}), the model 1 "
                                       f"(head): not the same interface; --map names the outputs to compare")


@pytest.mark.slow  # two more runs of the artifact; the pairing rules themselves: test_families.py
def test_map_says_which_output_is_which(made, tmp_path, capsys):
    model, artifact = made[:2]
    np.save(tmp_path / "x.npy", np.random.default_rng(3).standard_normal((2, 6, 3)).astype("float32"))
    _, (first, extra) = _two_outputs(artifact, tmp_path)
    # --map says which output is the model's: the artifact is checked, the extra output left unread
    rc, out, err = run_bilstm(["verify", model, "--artifact", tmp_path / "two.onnx", "--map", f"head={first}",
                               "--inputs", tmp_path / "x.npy"], capsys)
    assert rc == 0 and "outputs by --map" in out, out + err
    rc, out, err = run_bilstm(["verify", model, "--artifact", tmp_path / "two.onnx", "--map", f"head={extra}",
                               "--inputs", tmp_path / "x.npy"], capsys)
    assert rc == 1 and "outputs by --map" in out, out + err  # another tensor read as the head: outside its bound


@pytest.mark.parametrize("argv, message", [
    (["--artifact", "model.bin"], "--artifact model.bin: cannot tell the format from the name; give --format"),
    (["--artifact", "missing.onnx"], "--artifact missing.onnx: no such file or folder"),
    (["--artifact", "model.bin", "--repro", "r"], "--artifact runs the input families (or --inputs) in float32: "
                                                   "leave out --repro"),
])
def test_artifact_refusals_are_one_line(made, argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(made[1], tmp_path / "model.bin")
    rc, out, err = run_bilstm(["verify", made[0], *argv], capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_an_openvino_artifact_shows_its_output_layer_by_place(made, tmp_path, capsys):
    """OpenVINO exposes every operation's output; an artifact made by Keras's torch route names them after
    torch's ops, so the head is found by its place as the artifact's output, and the others have none."""
    pytest.importorskip("openvino", reason="the export extra's OpenVINO runs the artifact")
    from keras_impl.export.pipeline import export
    model = made[0]
    report = export(model, "openvino", out=tmp_path / "ov", backend="torch")
    assert report.exit_status == 0, str(report)
    rc, out, err = run_bilstm(["verify", model, "--artifact", tmp_path / "ov" / "model.xml"], capsys)
    assert rc == 0, out + err
    head = out.split("    head: ")[1].splitlines()[0]
    assert head.endswith("pass") and "no tensor" not in head
    assert "    bi: no tensor of its own" in out


# ---------------------------------------------------------------- the input families an artifact fails on


@pytest.fixture(scope="module")
def traced_at_8(tmp_path_factory):
    """``(model file with a free time axis, an ONNX artifact of it whose time axis is fixed at 8)``: bilstm-lab's
    own ONNX writer (no converter process), its input's time dimension then pinned, as an exporter that traces
    the example length into the graph leaves it."""
    import keras
    from keras_impl.export.native_onnx import write_onnx
    from keras_impl.verify.describe import describe_model
    L = keras.layers
    folder = tmp_path_factory.mktemp("traced")
    model = keras.Sequential([keras.Input((None, 3), name="x"),
                              L.Bidirectional(L.GRU(4, return_sequences=True), name="bi"), L.Dense(2, name="head")])
    randomise_weights(model, np.random.default_rng(2)).save(folder / "free.keras")
    described = describe_model(model)
    proto = write_onnx(described.graph, {n: (described.input_dtypes[n], described.input_shapes[n])
                                         for n in described.graph.inputs})
    time_axis = proto.graph.input[0].type.tensor_type.shape.dim[1]
    time_axis.ClearField("dim_param")
    time_axis.dim_value = 8
    import onnx
    onnx.save(proto, str(folder / "traced8.onnx"))
    return folder / "free.keras", folder / "traced8.onnx"


def test_an_artifact_traced_at_one_length_fails_the_length_families_by_name(traced_at_8, capsys):
    model, artifact = traced_at_8
    rc, out, err = run_bilstm(["verify", model, "--artifact", artifact], capsys)
    assert rc == 1, out + err
    rows = {line.split(":")[0].strip(): line for line in out.splitlines() if line.startswith("  set ")}
    assert rows["set 0 batch 1"].endswith(" pass") and rows["set 1 batch > 1"].endswith(" pass")
    for family in ("shorter than traced", "longer than traced", "a row of length 1"):
        line = next(line for key, line in rows.items() if key.endswith(family))
        assert "the runtime refused it" in line and "static" in line and line.endswith("FAIL"), line
    assert ("input families that failed: shorter than traced (set 2); longer than traced (set 3); "
            "a row of length 1 (set 4)") in out
    assert "right padding, left padding, a fully masked row (the model has no mask" in out  # left out, said


def test_inputs_override_the_families_for_an_artifact(traced_at_8, tmp_path, capsys):
    model, artifact = traced_at_8
    np.save(tmp_path / "x.npy", np.random.default_rng(5).standard_normal((2, 8, 3)).astype("float32"))
    rc, out, err = run_bilstm(["verify", model, "--artifact", artifact, "--inputs", tmp_path / "x.npy"], capsys)
    assert rc == 0, out + err
    sets = [line for line in out.splitlines() if line.startswith("  set ")]
    assert len(sets) == 1 and sets[0].startswith("  set 0 the user's --inputs: inputs (2, 8, 3)"), sets


def test_inside_the_artifact_a_model_output_is_the_one_map_names(made, tmp_path):
    """An artifact whose first output is an extra tensor of the head's shape (the head negated) and whose second
    is the head: read by place, the head would be the extra one; with ``--map head=...`` the per-layer
    comparison reads the head from the output the map names, and it passes."""
    import keras
    import onnx
    from keras_impl.verify.artifact import artifact_layers
    from keras_impl.verify.describe import describe_model
    model_file, artifact = made[:2]
    onnx_model = onnx.load(str(artifact))
    (head,) = [o.name for o in onnx_model.graph.output]
    onnx_model.graph.node.append(onnx.helper.make_node("Neg", [head], ["decoy"]))
    outputs = list(onnx_model.graph.output)
    del onnx_model.graph.output[:]
    onnx_model.graph.output.extend([onnx.ValueInfoProto(name="decoy")] + outputs)
    onnx.save(onnx_model, str(tmp_path / "decoy_first.onnx"))
    described = describe_model(keras.saving.load_model(model_file))
    x = np.random.default_rng(5).standard_normal((2, 6, 3)).astype("float32")
    rows = {r["layer"]: r for r in artifact_layers("onnx", tmp_path / "decoy_first.onnx", described.graph, [x], 1e-5,
                                                    mapping={"head": head})}
    assert rows["head"]["tensor"] == head and rows["head"]["verdict"] == "pass", rows["head"]
