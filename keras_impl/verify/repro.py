"""A reproducer of the first failing layer, to attach to a bug report (``bilstm verify --repro FOLDER``).

The folder holds, each file written atomically:

    layer.keras     a model of that layer alone (its config and weights), one input per inbound tensor
                    and, when the layer is given a mask, a boolean ``mask`` input passed as its mask
    inputs.npz      the inputs that show the fault: Keras's own inputs to the layer (``x0``, ``x1``...,
                    ``mask``)
    expected.npz    ``y``: the oracle's output of the layer on those inputs (float64); ``allowed``: the bound
    repro.py        runs the layer in Keras (safe mode, NumPy and Keras only) and prints the difference;
                    exit 1 when it is outside the bound, as verify said
    README.txt      what was found, in the words of the report
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from reference.layers import layer_forward

SCRIPT = '''"""Reproduces a difference bilstm verify found: Keras's {cls} {name!r} against the equations (the oracle).

Run it where Keras 3 and NumPy are installed: python repro.py   (KERAS_BACKEND picks the backend)
"""
import os
import sys

import numpy as np
import keras

here = os.path.dirname(os.path.abspath(__file__))
model = keras.saving.load_model(os.path.join(here, "layer.keras"), compile=False, safe_mode=True)
data = np.load(os.path.join(here, "inputs.npz"))
expected = np.load(os.path.join(here, "expected.npz"))
inputs = [data[name] for name in {input_names!r}]
y = keras.ops.convert_to_numpy(model(inputs if len(inputs) > 1 else inputs[0], training=False)).astype(np.float64)
error = float(np.abs(y - expected["y"]).max())
allowed = float(expected["allowed"])
print(f"keras {{keras.version()}} on {{keras.backend.backend()}}: {cls} {name!r}, max |keras - oracle| = {{error:.3e}} "
      f"(allowed {{allowed:.1e}}): {{'DIFFERS' if error > allowed else 'within the bound'}}")
sys.exit(1 if error > allowed else 0)
'''


FILES = ("layer.keras", "inputs.npz", "expected.npz", "repro.py", "README.txt")


def check_repro_folder(text) -> Path:
    """``--repro FOLDER`` checked before any work: writable, and holding no reproducer already (never replaced)."""
    from keras_impl.options import UsageError, check_writable_folder
    folder = check_writable_folder(text, "--repro")
    taken = [name for name in FILES if (folder / name).exists() or (folder / name).is_symlink()]
    if taken:
        raise UsageError(f"--repro {folder} already holds {', '.join(taken)}: name a new or empty folder")
    return folder


def _npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _layer_alone(keras_layer, inputs: list, mask):
    """A functional model of a fresh copy of ``keras_layer`` (same config and weights) on inputs like ``inputs``."""
    import keras
    copy = type(keras_layer).from_config(keras_layer.get_config())
    tensors = [keras.Input(x.shape[1:], dtype=str(x.dtype), name=f"x{k}") for k, x in enumerate(inputs)]
    args = tensors if len(tensors) > 1 else tensors[0]
    feeds = list(tensors)
    if mask is not None:
        mask_input = keras.Input(mask.shape[1:], dtype="bool", name="mask")
        feeds.append(mask_input)
        out = copy(args, mask=mask_input)
    else:
        out = copy(args)
    copy.set_weights(keras_layer.get_weights())
    return keras.Model(feeds, out, name=f"repro_{keras_layer.name}")


def write_repro(folder: Path, described, diagnosis: dict, values: dict) -> list[Path]:
    """The reproducer of ``diagnosis``'s layer in ``folder`` (created); the files written, in order."""
    from keras_impl.files import atomic_write_bytes, atomic_write_text
    from reference.layers import layer_of

    from .diagnose import output_of
    ref = diagnosis["layer"]
    name = layer_of(ref)
    layer = next(lay for lay in described.graph.layers if lay.name == name)
    keras_layer = described.keras_layers[name]
    oracle, keras_values = values["oracle"], values["keras"]
    inputs = [np.asarray(keras_values[n]) if n in keras_values else np.asarray(oracle[n][0]) for n in layer.inbound]
    inputs = [x.astype(keras_layer.compute_dtype) if x.dtype.kind == "f" else x for x in inputs]
    masks = [oracle[n][1] for n in layer.inbound]
    mask = next((m for m in masks if m is not None), None)
    expected = output_of(layer_forward(layer, [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs],
                                       masks), ref)
    folder.mkdir(parents=True, exist_ok=True)
    model = _layer_alone(keras_layer, inputs, mask)
    arrays = {f"x{k}": x for k, x in enumerate(inputs)}
    if mask is not None:
        arrays["mask"] = np.asarray(mask, bool)
    written = [folder / name for name in FILES]
    staged = folder / ".layer.keras.partial.keras"
    model.save(staged)
    staged.replace(written[0])
    atomic_write_bytes(written[1], _npz(arrays))
    atomic_write_bytes(written[2], _npz({"y": expected, "allowed": np.float64(diagnosis["allowed"])}))
    atomic_write_text(written[3], SCRIPT.format(cls=diagnosis["class"], name=name, input_names=list(arrays)))
    from .diagnose import format_diagnosis
    atomic_write_text(written[4], "\n".join(format_diagnosis(diagnosis)) + "\n\nRun: python repro.py\n")
    return written
