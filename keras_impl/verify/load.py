"""A user's model file, through Keras's own loaders, with nothing unsafe enabled.

Before Keras deserializes anything, the file's config (``config.json`` inside a
``.keras`` zip; the ``model_config`` attribute of a ``.h5``) is scanned: the
first layer whose class is not one the oracle implements, or that is a custom
class (a ``registered_name`` or a module outside Keras), is refused by name. A
Lambda is thus refused before its code is even looked at; ``safe_mode=True``
stays on besides. After loading, ``describe.py`` checks the exact class of every
layer again (``type(layer) is keras.layers.LSTM``), so that a registered
subclass cannot pass as the layer it extends.

Keras 2 (tf.keras, Keras 2.x) ``.h5`` files: Keras 3's legacy loader reads them,
except that tf.keras's LSTM config carries ``time_major`` (removed from Keras 3,
which raises "Unrecognized keyword arguments passed to LSTM: {'time_major':
False}"). ``time_major=False`` is Keras 3's only behaviour, so it is dropped from a
temporary copy of the file, which Keras then loads; ``time_major=True`` is refused.
A Keras 2 file's ``hard_sigmoid`` is refused too: Keras 3 loads the name as its own,
another function (``_refuse_keras2_hard_sigmoid``). A Keras 3 ``.h5`` of a functional
model whose layers pass masks is refused with the reason (``MASK_OP_CLASSES``): Keras
3.15.1 cannot read that file back itself.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

from reference.layers import KINDS, RECURRENT_KINDS

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
CONTAINERS = ("Sequential", "Functional", "Model")
SUPPORTED = KINDS  # the layer classes the oracle implements (reference/layers.py)
# Keras 3.15.1 keras/src/layers/layer.py L1038-1044: a layer without masking support that receives a mask.
MASK_DROPPED_WARNING = ".*does not support masking and will therefore destroy the mask information.*"
# The op nodes (keras.src.ops.numpy) by which Keras 3 functional models record the masks their layers pass.
# Keras 3.15.1's legacy .h5 writer stores them without a module, and its .h5 reader cannot rebuild them
# ("Unknown layer: 'NotEqual'", keras/src/legacy/saving/serialization.py L353): such a file cannot be loaded.
MASK_OP_CLASSES = ("NotEqual", "Any", "All", "ExpandDims", "LogicalOr", "OnesLike", "ZerosLike")


class VerifyRefusal(Exception):
    """The model cannot be verified: one line that says why (exit status 2)."""


def supported_list() -> str:
    return ", ".join(SUPPORTED) + " (TimeDistributed of Dense only)"


def refuse_layer(name: str, class_name: str, why: str = "") -> VerifyRefusal:
    reason = f" ({why})" if why else ""
    return VerifyRefusal(f"layer {name!r} of class {class_name} is not supported{reason}; "
                         f"supported: {supported_list()}")


def read_config(path: Path) -> dict:
    """The model config stored in ``path``, as JSON, without deserializing anything."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as z:
                return json.loads(z.read("config.json"))
        import h5py
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            if raw is None:
                raise VerifyRefusal(f"{path} holds no model config (a weights-only file?): save the whole model")
            return json.loads(raw.decode("utf-8") if hasattr(raw, "decode") else raw)
    except VerifyRefusal:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise VerifyRefusal(f"cannot read a model config from {path}: {exc}") from None


def _is_keras_class(entry: dict) -> bool:
    module = entry.get("module")
    registered = entry.get("registered_name")
    return (module is None or module == "keras.layers" or module.startswith("keras.src.layers")) and \
        registered in (None, entry.get("class_name"))


def _layer_name(entry: dict) -> str:
    return (entry.get("config") or {}).get("name", "?")


def scan_config(config: dict) -> None:
    """Refuse the first layer (in the config's order, nested layers included) that is not supported."""
    if not isinstance(config, dict) or config.get("class_name") not in CONTAINERS:
        raise VerifyRefusal(f"the file's model is a {config.get('class_name') if isinstance(config, dict) else config!r},"
                            f" not a Sequential or functional model")
    if config.get("registered_name") not in (None, config["class_name"]):
        raise refuse_layer(_layer_name(config), config.get("registered_name") or config["class_name"],
                           "a custom model class")
    for entry in (config.get("config") or {}).get("layers", []):
        scan_layer(entry)


def scan_layer(entry: dict, wrapper: str | None = None) -> None:
    class_name, name = entry.get("class_name", "?"), _layer_name(entry)
    if (entry.get("module") or "").startswith("keras.src.ops.") and entry.get("registered_name") in (None, class_name):
        return  # a Keras op node that computes a mask in a functional graph: describe.py allows it on masks only
    if "module" not in entry and class_name in MASK_OP_CLASSES:
        raise VerifyRefusal(f"node {name!r} ({class_name}) is a mask op of a Keras 3 functional model saved as .h5, "
                            "which Keras 3's own .h5 loader cannot rebuild ('Unknown layer'): save the model as "
                            ".keras (model.save('model.keras'))")
    if not _is_keras_class(entry):
        raise refuse_layer(name, entry.get("registered_name") or class_name, "a custom class, not Keras's own")
    if wrapper == "Bidirectional" and class_name not in RECURRENT_KINDS:
        raise refuse_layer(name, class_name, f"Bidirectional of {', '.join(RECURRENT_KINDS)} only")
    if wrapper == "TimeDistributed" and class_name != "Dense":
        raise refuse_layer(name, class_name, "TimeDistributed of Dense only")
    if class_name in CONTAINERS:
        raise refuse_layer(name, class_name, "a nested model")
    if class_name not in SUPPORTED:
        raise refuse_layer(name, class_name)
    cfg = entry.get("config") or {}
    for key in ("layer", "backward_layer"):
        if isinstance(cfg.get(key), dict):
            scan_layer(cfg[key], wrapper=class_name)


def _refuse_keras2_hard_sigmoid(node) -> None:
    """A Keras 2 file's ``hard_sigmoid`` is not the function Keras 3 runs: refuse it by name.

    Keras 2 (tf.keras 2.x) defined hard_sigmoid as ``clip(0.2 a + 0.5, 0, 1)``; Keras 3
    as ``clip(a / 6 + 0.5, 0, 1)`` (keras/src/activations/activations.py L518-537), and
    its loader maps the name to its own function. Keras 3 and the oracle would agree,
    and both would differ from the model that was trained: verify refuses rather than
    pass a model that no longer computes what its file meant.
    """
    if isinstance(node, dict):
        cfg = node.get("config")
        if isinstance(cfg, dict) and "class_name" in node:
            for key in ("activation", "recurrent_activation"):
                if cfg.get(key) == "hard_sigmoid":
                    raise refuse_layer(cfg.get("name", "?"), node.get("class_name", "?"),
                                       f"{key}='hard_sigmoid' in a Keras 2 file: Keras 2's hard_sigmoid is "
                                       "clip(0.2 a + 0.5, 0, 1), Keras 3's clip(a / 6 + 0.5, 0, 1), "
                                       "so Keras 3 would not compute the model that was saved")
        for value in node.values():
            _refuse_keras2_hard_sigmoid(value)
    elif isinstance(node, list):
        for value in node:
            _refuse_keras2_hard_sigmoid(value)


def _drop_time_major(node) -> None:
    """Remove ``time_major: False`` (Keras 2 only) everywhere; refuse ``time_major: True``."""
    if isinstance(node, dict):
        cfg = node.get("config")
        if isinstance(cfg, dict) and "time_major" in cfg:
            if cfg["time_major"]:
                raise refuse_layer(cfg.get("name", "?"), node.get("class_name", "?"),
                                   "time_major=True, which Keras 3 does not implement")
            del cfg["time_major"]
        for value in node.values():
            _drop_time_major(value)
    elif isinstance(node, list):
        for value in node:
            _drop_time_major(value)


def _layer_names(node, out: list) -> list:
    if isinstance(node, dict):
        if isinstance(node.get("config"), dict) and "class_name" in node and isinstance(node["config"].get("name"), str):
            out.append(node["config"]["name"])
        for value in node.values():
            _layer_names(value, out)
    elif isinstance(node, list):
        for value in node:
            _layer_names(value, out)
    return out


def _reserve_concatenate_names(config: dict) -> None:
    """Keep Keras 3's mask op of a Keras 2 Concatenate from taking that layer's own name.

    Rebuilding a Keras 2 functional graph, Keras 3.15.1 runs Concatenate's ``compute_mask``,
    whose ``ops.concatenate`` is auto-named ``concatenate`` (then ``concatenate_1`` ...), the
    names Keras 2 gave its Concatenate layers; the loader then raises 'The name "concatenate"
    is used 2 times in the model' (keras/src/models/functional.py), in a fresh process only.
    Creating as many throwaway Concatenate layers first moves Keras's name counter past the
    file's names; the model itself is untouched.
    """
    import re

    import keras
    taken = [n for n in _layer_names(config, []) if re.fullmatch(r"concatenate(_\d+)?", n)]
    for _ in range(len(taken) and 1 + max(int(n.rpartition("_")[2]) if n != "concatenate" else 0 for n in taken)):
        keras.layers.Concatenate()


def load_model(path: Path):
    """``(model, config, saved_by)``: the Keras model in ``path``, after the scan; ``saved_by`` names the Keras."""
    path = Path(path)
    config = read_config(path)
    scan_config(config)
    import keras
    saved_by = f"keras {keras.version()} (.keras)"
    tmpdir = None
    try:
        target = path
        if path.suffix in (".h5", ".hdf5"):
            import h5py
            with h5py.File(path, "r") as f:
                version = f.attrs.get("keras_version", b"?")
            version = version.decode() if hasattr(version, "decode") else str(version)
            saved_by = f"keras {version} (.h5{', Keras 2 file' if version.startswith('2') else ''})"
            if version.startswith("2"):
                _refuse_keras2_hard_sigmoid(config)
                _reserve_concatenate_names(config)
            if '"time_major"' in json.dumps(config):
                tmpdir = tempfile.mkdtemp(prefix="bilstm-verify-")
                target = Path(tmpdir) / path.name
                shutil.copyfile(path, target)
                _drop_time_major(config)
                with h5py.File(target, "r+") as f:
                    f.attrs["model_config"] = json.dumps(config)
        try:
            with warnings.catch_warnings():  # advice about how the file's model was written: not news here
                warnings.simplefilter("ignore", UserWarning)  # (a dropped mask, Keras 2's input_shape)
                model = keras.saving.load_model(target, compile=False, safe_mode=True)
        except Exception as exc:  # Keras's own refusal, kept verbatim: what it could not read
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise VerifyRefusal(f"Keras {keras.version()} cannot load {path}: {type(exc).__name__}: {first}") from None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return model, config, saved_by


def check_model_path(value: str) -> Path:
    """The MODEL_FILE argument, checked before Keras is imported."""
    path = Path(value)
    if path.suffix not in MODEL_SUFFIXES:
        raise ValueError(f"MODEL_FILE must end in {', '.join(MODEL_SUFFIXES)}, got {value!r}")
    if not path.is_file():
        raise ValueError(f"MODEL_FILE {value!r} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise ValueError(f"MODEL_FILE {value!r} is not readable")
    return path
