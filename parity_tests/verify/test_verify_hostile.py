"""``bilstm verify`` on hostile and malformed model files (issue 20): bounded memory and time, one line per refusal.

Each case is a file a stranger could send: a zip bomb inside a ``.keras``, a Keras 2 ``.h5`` whose layer name
asks for unbounded work, configs claiming sizes no machine has, configs of the wrong shape, reduced precision,
a Keras 2 file without its version, a nested model hiding a Lambda or a huge size. Every refusal is exit
status 2 and exactly one line on stderr, said before anything is built. Cases that used to abort or exhaust the process run in a subprocess.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from keras_impl.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras2"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base(tmp_path_factory, backend) -> Path:
    """A small Sequential model saved as .keras: Masking, LSTM, Dense (its config is what the cases edit)."""
    import keras
    L = keras.layers
    path = tmp_path_factory.mktemp("hostile") / "base.keras"
    keras.Sequential([keras.Input((5, 2), name="x"), L.Masking(0.0), L.LSTM(3, name="lstm"),
                      L.Dense(1, name="head")]).save(path)
    return path


def _rewritten(base: Path, target: Path, mutate=None, text: str | bytes | None = None) -> Path:
    """``base`` with its config.json replaced: ``mutate(config)`` edits it in place, or ``text`` is the new one."""
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "config.json":
                if mutate is not None:
                    config = json.loads(data)
                    mutate(config)
                    data = json.dumps(config)
                else:
                    data = text
            out.writestr(info.filename, data)
    return target


def _verify(capsys, *argv):
    rc = main(["verify", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _refused(rc, out, err, *expected):
    assert rc == 2, out + err
    assert out == "" and err.count("\n") == 1 and err.endswith("\n"), err
    for text in expected:
        assert text in err, err


def _cli(*argv, timeout=300, code=None):
    """The real command in a new process (``python -m keras_impl.cli``, or ``code`` that calls ``main``)."""
    command = [sys.executable, "-m", "keras_impl.cli"] if code is None else [sys.executable, "-c", code]
    return subprocess.run([*command, "verify", *map(str, argv)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


# 1. A zip bomb: config.json is a valid config followed by spaces.

def test_zip_bomb_config_is_refused_without_inflating_it(base, tmp_path, capsys):
    from keras_impl.verify.config_file import MAX_COMPRESSION_RATIO, MAX_CONFIG_BYTES
    with zipfile.ZipFile(base) as z:
        config = z.read("config.json")
    bomb = _rewritten(base, tmp_path / "bomb.keras", text=config + b" " * (MAX_CONFIG_BYTES + 2 ** 20))
    assert bomb.stat().st_size < MAX_CONFIG_BYTES / MAX_COMPRESSION_RATIO  # the file is small, its member is not
    _refused(*_verify(capsys, bomb), "zip member config.json declares", "compression ratio", "not read")


def test_zip_bomb_in_another_member_is_refused_before_keras_reads_it(base, tmp_path, capsys):
    bomb = tmp_path / "weights_bomb.keras"
    shutil.copyfile(base, bomb)
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("assets/padding.bin", b"\0" * 40 * 2 ** 20)
    _refused(*_verify(capsys, bomb), "zip member assets/padding.bin declares", "compression ratio")


def test_zip_bomb_of_one_gib_stays_under_1_gb_of_memory(base, tmp_path):
    """The issue's file: 1 GiB of spaces after the config (2.3 GB peak when the member was read whole)."""
    with zipfile.ZipFile(base) as z:
        config = z.read("config.json")
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in source.infolist():
            if info.filename != "config.json":
                out.writestr(info.filename, source.read(info.filename))
        with out.open("config.json", "w", force_zip64=True) as member:
            member.write(config)
            chunk = b" " * 2 ** 26
            for _ in range(16):
                member.write(chunk)
    assert bomb.stat().st_size < 10 * 2 ** 20
    # The peak of this process's own memory (VmHWM): getrusage's ru_maxrss survives exec, so it would report
    # the pytest process that forked the command once that has grown past 1 GB.
    code = ("import sys; from keras_impl.cli import main; rc = main(sys.argv[1:]); "
            "print(next(int(line.split()[1]) * 1024 for line in open('/proc/self/status') if line.startswith('VmHWM:'))); "
            "sys.exit(rc)")
    proc = _cli(bomb, code=code)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "compression ratio" in proc.stderr, proc.stderr
    assert int(proc.stdout) < 2 ** 30


# 2. A Keras 2 .h5 whose Concatenate is renamed with a huge number: the work must not grow with it.

def test_concatenate_name_number_does_not_set_the_work(fresh_concat_verifies):
    """In a fresh interpreter, as for a user (conftest.py: the renamed copy is its second call)."""
    from parity_tests.verify.conftest import FRESH_TIMEOUT_S, HUGE_CONCATENATE
    if fresh_concat_verifies.get("timed_out"):
        pytest.fail(f"verify of a layer named {HUGE_CONCATENATE} (after the plain file) ran past {FRESH_TIMEOUT_S} s: "
                    "the work depends on the number")
    run = fresh_concat_verifies["renamed"]
    assert run["code"] == 0, run["stdout"] + run["stderr"]
    assert HUGE_CONCATENATE in run["stdout"] and "5/5 layers within bounds" in run["stdout"]


# 3. Sizes claimed by a config, by --batch / --timesteps, and by an --inputs header.

def _set(path: str, value):
    def mutate(config):
        node = config
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[keys[-1]] = value
    return mutate


def _layer(config, name):
    return next(e for e in config["config"]["layers"] if e["config"].get("name") == name)


@pytest.mark.parametrize("case", ["lstm_units", "embedding_input_dim", "input_features"])
def test_sizes_claimed_by_a_config_are_refused_before_anything_is_built(case, base, tmp_path, backend):
    """JAX aborted the process (SIGABRT) on the first two; the third ended in MemoryError after loading."""
    import keras
    L = keras.layers
    if case == "lstm_units":
        path = _rewritten(base, tmp_path / "units.keras", lambda c: _layer(c, "lstm")["config"].update(units=10 ** 9))
        named = "'lstm' (LSTM)"
    elif case == "embedding_input_dim":
        source = tmp_path / "embedding_src.keras"
        keras.Sequential([keras.Input((6,), dtype="int32"), L.Embedding(11, 4, name="embedding"),
                          L.LSTM(3)]).save(source)
        path = _rewritten(source, tmp_path / "vocab.keras",
                          lambda c: _layer(c, "embedding")["config"].update(input_dim=10 ** 9, output_dim=10 ** 5))
        named = "'embedding' (Embedding)"
    else:
        def wide(config):
            config["config"]["layers"][0]["config"]["batch_shape"] = [None, 1000, 10 ** 9]
        path = _rewritten(base, tmp_path / "features.keras", wide)
        named = "'x' (InputLayer)"  # 4 x 1000 x 10^9 numbers drawn: the model's largest layer
    proc = _cli(path, "--backend", backend)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert named in proc.stderr and "of memory available here" in proc.stderr


def test_batch_and_timesteps_beyond_memory_are_refused(tmp_path, capsys, backend):
    """A free time axis with --batch 4096 --timesteps 100000 (the issue's run passed 7 GB before it was stopped)."""
    import keras

    from keras_impl.verify.budget import available_bytes, estimate
    from keras_impl.verify.load import read_config
    L = keras.layers
    path = tmp_path / "free_time.keras"
    keras.Sequential([keras.Input((None, 16)), L.Bidirectional(L.LSTM(256, return_sequences=True)),
                      L.TimeDistributed(L.Dense(64))]).save(path)
    need = sum(n.bytes for n in estimate(read_config(path), 4096, 100_000))
    if need <= available_bytes():
        pytest.skip(f"this machine has {available_bytes()} bytes available, more than the {need} asked for")
    _refused(*_verify(capsys, path, "--batch", 4096, "--timesteps", 100_000), "of memory available here",
             "at batch 4096")
    assert _verify(capsys, path, "--batch", 2, "--timesteps", 3)[0] == 0  # the same model, sizes that fit


def test_inputs_header_claiming_a_huge_array_is_refused_unread(base, tmp_path, capsys):
    """192 bytes whose header claims 3.6 TiB: refused from the header alone, nothing allocated."""
    from numpy.lib import format as npy
    path = tmp_path / "claims.npy"
    with open(path, "wb") as f:
        npy.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (4096, 100_000, 1200)})
    assert path.stat().st_size < 200
    _refused(*_verify(capsys, base, "--inputs", path), "header claims shape (4096, 100000, 1200)", "holds 0 bytes")


# 4. Configs that are valid JSON of the wrong shape: the path that is wrong is named.

@pytest.mark.parametrize("case, expected", [
    ("layers_a_number", "config.layers is 5, expected a list of layers"),
    ("layer_not_an_object", "config.layers[1] is 7, expected an object (a layer)"),
    ("layer_config_a_string", "config.layers[2].config is a string, expected an object"),
    ("nested_brackets", "nests deeper than"),
    ("units_a_float", "config.layers[2].config.units is 100000.0, expected a whole number from 1"),
])
def test_malformed_configs_name_the_wrong_path(case, expected, base, tmp_path, capsys):
    def mutate(config):
        layers = config["config"]["layers"]
        if case == "layers_a_number":
            config["config"]["layers"] = 5
        elif case == "layer_not_an_object":
            layers[1] = 7
        elif case == "layer_config_a_string":
            layers[2]["config"] = "lstm"
        else:  # units 1e5: Keras's own error ended, cut off, "Example error message for object <LSTMCell ...>:"
            layers[2]["config"]["units"] = 1e5
    if case == "nested_brackets":  # Python's JSON reader: RecursionError
        path = _rewritten(base, tmp_path / f"{case}.keras",
                          text='{"class_name": "Sequential", "config": {"layers": ' + "[" * 200_000
                          + "]" * 200_000 + "}}")
    else:
        path = _rewritten(base, tmp_path / f"{case}.keras", mutate)
    rc, out, err = _verify(capsys, path)
    _refused(rc, out, err, expected)
    assert not err.rstrip().endswith(":")  # a cause is never cut off


@pytest.mark.parametrize("stored, expected", [(5, "model_config attribute is a int64, not JSON text"),
                                              ("5", "the whole config is 5, expected an object")])
def test_keras2_h5_whose_model_config_is_a_number_is_refused(stored, expected, tmp_path, capsys):
    path = tmp_path / "number.h5"
    shutil.copyfile(FIXTURES / "lstm.h5", path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = stored
    _refused(*_verify(capsys, path), expected)


# 5. Reduced precision: found by name in the file's config (verify checks it in its own precision,
# test_precision.py; a command that takes float32 models only refuses it with that name).

@pytest.mark.parametrize("policy, layer_dtype", [("mixed_float16", None), ("mixed_bfloat16", None),
                                                 (None, "bfloat16"), (None, "float16")])
def test_reduced_precision_is_found_by_name(policy, layer_dtype, tmp_path):
    import keras

    from keras_impl.verify import VerifyRefusal
    from keras_impl.verify.load import read_config, reduced_precision, refuse_reduced_precision
    L = keras.layers
    previous = keras.config.dtype_policy()
    try:
        if policy:
            keras.config.set_dtype_policy(policy)
        model = keras.Sequential([keras.Input((5, 2)), L.LSTM(3, name="rnn"), L.Dense(1, name="low", dtype=layer_dtype)],
                                 name="reduced")
    finally:
        keras.config.set_dtype_policy(previous)
    path = tmp_path / "reduced.keras"
    model.save(path)
    config = read_config(path)
    where = "model 'reduced' (Sequential)" if policy else "layer 'low' (Dense)"  # the first that holds the policy
    assert reduced_precision(config) == f"{where} computes in {policy or layer_dtype}"
    with pytest.raises(VerifyRefusal, match=f"computes in {policy or layer_dtype}: float32 only"):
        refuse_reduced_precision(config, "float32 only")


# 6. A Keras 2 file without its keras_version attribute: recognised by its config.

def test_keras2_file_without_its_version_is_recognised_by_its_config(tmp_path, capsys):
    path = tmp_path / "no_version.h5"
    shutil.copyfile(FIXTURES / "lstm_hard_sigmoid.h5", path)
    with h5py.File(path, "r+") as f:
        del f.attrs["keras_version"]
        assert "time_major" in str(f.attrs["model_config"])
    _refused(*_verify(capsys, path), "recurrent_activation='hard_sigmoid' in a Keras 2 file")
    plain = tmp_path / "lstm_no_version.h5"
    shutil.copyfile(FIXTURES / "lstm.h5", plain)
    with h5py.File(plain, "r+") as f:
        del f.attrs["keras_version"]
    rc, out, err = _verify(capsys, plain)
    assert rc == 0, out + err
    assert "Keras 2 file by its config: batch_input_shape, time_major" in out


# 7. A nested model's layers are scanned and counted like the outer ones (verify flattens it): a Lambda inside is
# refused by name, a size claimed inside is refused by the memory budget, both before anything is built.

def _nested(tmp_path, inner_layer):
    import keras
    L = keras.layers
    inner = keras.Sequential([keras.Input((4, 3)), inner_layer], name="inner")
    x = keras.Input((4, 2))
    path = tmp_path / "nested.keras"
    keras.Model(x, inner(L.LSTM(3, return_sequences=True, name="lstm")(x))).save(path)
    return path


def test_a_lambda_inside_a_nested_model_is_refused_by_name(tmp_path, capsys):
    import keras
    rc, out, err = _verify(capsys, _nested(tmp_path, keras.layers.Lambda(lambda t: t * 2.0, name="doubling")))
    _refused(rc, out, err, "'doubling' of class Lambda")


def test_a_size_claimed_inside_a_nested_model_is_refused_before_anything_is_built(tmp_path, backend):
    import keras
    source = _nested(tmp_path, keras.layers.Dense(2, name="inner_dense"))

    def huge(config):
        inner = _layer(config, "inner")
        next(e for e in inner["config"]["layers"] if e["config"].get("name") == "inner_dense")["config"].update(
            units=10 ** 12)
    proc = _cli(_rewritten(source, tmp_path / "huge.keras", huge), "--backend", backend)
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
    assert "'inner_dense' (Dense)" in proc.stderr and "of memory available here" in proc.stderr


# 8. On JAX, a refusal is one line: no TensorFlow or absl lines, TensorFlow not even imported.

def test_refusal_on_jax_is_one_line_and_imports_no_tensorflow(tmp_path):
    """Keras's .h5 reader imported TensorFlow into the JAX process (``tf.available``), which printed its absl and
    oneDNN lines; its own absl warning ('No training configuration found') came on top. Here the refusal comes
    after the whole load: a stateful LSTM, refused once the model is built."""
    path = tmp_path / "stateful.h5"
    shutil.copyfile(FIXTURES / "lstm.h5", path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = str(f.attrs["model_config"]).replace('"stateful": false', '"stateful": true')
    code = ("import sys; from keras_impl.cli import main; rc = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules and sys.modules['tensorflow'] is not None); sys.exit(rc)")
    proc = _cli(path, "--backend", "jax", code=code)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("bilstm verify: "), proc.stderr
    assert proc.stdout == "False\n"
