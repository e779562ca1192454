"""A user's model file, through Keras's own loaders, with nothing unsafe enabled.

``bilstm verify`` and ``bilstm export`` both read models here (``read_config``, ``scan_config``,
``load_model``), so every check below holds for both. The file's config is read bounded in size,
compression ratio and depth (``config_file.py``), checked for its structure, each wrong part named by
its path (``structure.py``), and its claimed sizes held to the memory available (``budget.py``).

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
temporary copy of the file (nested models' layers included), which Keras then loads; ``time_major=True`` is
refused. Attention's ``score_mode="dot"``, which Keras 3's .h5 loader would turn into a function, is kept a
string (``H5_STRINGS_KEPT``); a nested model's calls are renumbered as Keras 3 counts them
(``_renumber_keras2_nested_nodes``), and a MultiHeadAttention's config and call read as Keras 3 writes them
(``_keras2_attention``).
A file is taken for Keras 2 by its ``keras_version`` or, without it, by
its config's Keras-2-only keys (``KERAS2_CONFIG_KEYS``). Reduced precision and quantization are found by
``reduced_precision`` (verify checks them in their own precision, ``precision.py``); a nested Sequential or
functional model of Keras's own is scanned layer by layer (``describe.py`` flattens it), an RNN's cells likewise (``CELL_KINDS``, StackedRNNCells). A Keras 2 file's
``hard_sigmoid`` is refused too: Keras 3 loads the name as its own, another function (``_refuse_keras2_hard_sigmoid``). A Keras 3 ``.h5`` of a functional
model whose layers pass masks is refused with the reason (``MASK_OP_CLASSES``): Keras
3.15.1 cannot read that file back itself.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from reference.layers import CELL_KINDS, KINDS, RECURRENT_KINDS
from reference.layers.conv_lstm import FORWARD as CONV_LSTM_FORWARD

from .budget import DEFAULT_BATCH, check_memory
from .config_file import one_line, read_config_text
from .errors import VerifyRefusal
from .structure import check_structure

BIDIRECTIONAL_KINDS = (*RECURRENT_KINDS, "RNN", *CONV_LSTM_FORWARD)  # the copies a Bidirectional may hold

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
CONTAINERS = ("Sequential", "Functional", "Model")
SUPPORTED = KINDS  # the layer classes the oracle implements (reference/layers/)
# Keras 3.15.1 keras/src/layers/layer.py L1038-1044: a layer without masking support that receives a mask.
MASK_DROPPED_WARNING = ".*does not support masking and will therefore destroy the mask information.*"
# The op nodes (keras.src.ops.numpy) by which Keras 3 functional models record the masks their layers pass.
# Keras 3.15.1's legacy .h5 writer stores them without a module, and its .h5 reader cannot rebuild them
# ("Unknown layer: 'NotEqual'", keras/src/legacy/saving/serialization.py L353): such a file cannot be loaded.
MASK_OP_CLASSES = ("NotEqual", "Any", "All", "ExpandDims", "LogicalOr", "OnesLike", "ZerosLike")
# Keras's own model classes: a layer of one of these inside a model is a nested model, not a custom class.
KERAS_MODEL_MODULES = ("keras", "keras.models", "keras.src.models.sequential", "keras.src.models.functional",
                       "keras.src.models.model")
# dtype policies whose layers compute in 16-bit floats: verified in their own precision (precision.py), refused by
# the commands that take float32 models only (``refuse_reduced_precision``).
REDUCED_PRECISION = ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
# Config keys only Keras 2 (tf.keras 2.x) writes: tf.keras's RNN layers' `time_major` (Keras 3 removed it),
# `batch_input_shape` (Keras 3 writes `batch_shape`), the Embedding's `input_length` (removed in Keras 3).
KERAS2_CONFIG_KEYS = ("time_major", "batch_input_shape", "input_length")


def supported_list() -> str:
    """The layer classes the oracle runs, read from its one registry (``reference/layers/registry.py``)."""
    return ", ".join(SUPPORTED) + f" (RNN of {', '.join(CELL_KINDS)} or StackedRNNCells of them)"


def refuse_layer(name: str, class_name: str, why: str = "") -> VerifyRefusal:
    reason = f" ({why})" if why else ""
    return VerifyRefusal(f"layer {name!r} of class {class_name} is not supported{reason}; "
                         f"supported: {supported_list()}")


def read_config(path: Path) -> dict:
    """The model config stored in ``path``, bounded in size and depth and checked for its structure, without
    deserializing anything (``config_file.py``, ``structure.py``)."""
    config = read_config_text(Path(path))
    class_name = config.get("class_name") if isinstance(config, dict) else None
    if isinstance(class_name, str) and class_name not in CONTAINERS:
        raise VerifyRefusal(f"the file's model is a {config['class_name']}, not a Sequential or functional model")
    check_structure(config)
    return config


def _is_keras_class(entry: dict) -> bool:
    module = entry.get("module")
    registered = entry.get("registered_name")
    return (module is None or module == "keras.layers" or module.startswith("keras.src.layers")) and \
        registered in (None, entry.get("class_name"))


def _layer_name(entry: dict) -> str:
    return (entry.get("config") or {}).get("name", "?")


def scan_config(config: dict, batch: int | None = None, timesteps: int | None = None, dtype: str = "float32") -> None:
    """Refuse the first layer (in the config's order, nested layers included) that is not supported, then a model
    whose claimed sizes would not fit in memory (``budget.py``; with the batch and timesteps that will be run)."""
    if config.get("registered_name") not in (None, config["class_name"]):
        raise refuse_layer(_layer_name(config), config.get("registered_name") or config["class_name"],
                           "a custom model class")
    for entry in config["config"]["layers"]:
        scan_layer(entry)
    check_memory(config, batch or DEFAULT_BATCH, timesteps, dtype)


def _policy_name(dtype) -> str | None:
    """The dtype policy's name in a layer config: ``"float32"``, or ``{"class_name": "DTypePolicy" | "Policy",
    "config": {"name": "mixed_float16"}}`` (Keras 3 / Keras 2)."""
    if isinstance(dtype, str):
        return dtype
    name = (dtype.get("config") or {}).get("name") if isinstance(dtype, dict) else None
    if isinstance(name, str):
        return name
    return None


def reduced_precision(config: dict) -> str | None:
    """The first layer of a file's config (nested models' and wrapped layers included) that computes in 16-bit
    floats or is quantized, said in a few words (``layer 'head' (Dense) is quantized (int8)``), or None."""
    def policy_of(entry):
        dtype = (entry.get("config") or {}).get("dtype")
        if isinstance(dtype, dict) and isinstance(dtype.get("config"), dict) and dtype["config"].get("mode"):
            return f"is quantized ({dtype['config']['mode']})"  # QuantizedDTypePolicy, Int4..., QuantizedFloat8...
        policy = _policy_name(dtype)
        return f"computes in {policy}" if policy in REDUCED_PRECISION else None

    entries = [config]
    while entries:
        entry = entries.pop(0)
        if not isinstance(entry, dict):
            continue
        found = policy_of(entry)
        if found:
            what = "model" if entry.get("class_name") in CONTAINERS else "layer"
            return f"{what} {_layer_name(entry)!r} ({entry.get('class_name', '?')}) {found}"
        cfg = entry.get("config") or {}
        entries += [cfg[k] for k in ("layer", "backward_layer", "cell") if isinstance(cfg.get(k), dict)]
        entries += [x for k in ("layers", "cells") if isinstance(cfg.get(k), list) for x in cfg[k]]
    return None


def refuse_reduced_precision(config: dict, why: str) -> None:
    """The one guard for a command that handles float32 models only (``bilstm export``): a reduced-precision or
    quantized model refused with one line, ``why`` saying what the command would do wrong."""
    found = reduced_precision(config)
    if found:
        raise VerifyRefusal(f"{found}: {why}")


def scan_layer(entry: dict, wrapper: str | None = None) -> None:
    class_name, name = entry.get("class_name", "?"), _layer_name(entry)
    if (entry.get("module") or "").startswith("keras.src.ops.") and entry.get("registered_name") in (None, class_name):
        return  # a Keras op node that computes a mask in a functional graph: describe.py allows it on masks only
    if "module" not in entry and class_name in MASK_OP_CLASSES:
        raise VerifyRefusal(f"node {name!r} ({class_name}) is a mask op of a Keras 3 functional model saved as .h5, "
                            "which Keras 3's own .h5 loader cannot rebuild ('Unknown layer'): save the model as "
                            ".keras (model.save('model.keras'))")
    if class_name in CONTAINERS and entry.get("module") in (None, *KERAS_MODEL_MODULES) \
            and entry.get("registered_name") in (None, class_name):
        layers = (entry.get("config") or {}).get("layers")
        if not isinstance(layers, list):
            raise refuse_layer(name, class_name, "a nested model without a list of layers (a subclassed model)")
        for inner in layers:  # describe.py flattens it into the one list of layers
            scan_layer(inner)
        return
    if not _is_keras_class(entry):
        raise refuse_layer(name, entry.get("registered_name") or class_name, "a custom class, not Keras's own")
    if wrapper == "Bidirectional" and class_name not in BIDIRECTIONAL_KINDS:
        raise refuse_layer(name, class_name, f"Bidirectional of {', '.join(BIDIRECTIONAL_KINDS)} only")
    if wrapper == "TimeDistributed" and class_name == "InputLayer":
        raise refuse_layer(name, class_name, "TimeDistributed of an InputLayer")
    if wrapper == "RNN" or wrapper == "StackedRNNCells":
        if class_name == "StackedRNNCells" and wrapper == "RNN":
            for cell in (entry.get("config") or {}).get("cells") or []:
                if not isinstance(cell, dict):
                    raise refuse_layer(name, class_name, "a cell that is not a Keras object's config")
                scan_layer(cell, wrapper=class_name)
            return
        if class_name not in CELL_KINDS:
            raise refuse_layer(name, class_name, f"RNN of {', '.join(CELL_KINDS)} or StackedRNNCells of them")
        return
    if class_name not in SUPPORTED:
        raise refuse_layer(name, class_name)
    cfg = entry.get("config") or {}
    if class_name == "RNN":
        if not isinstance(cfg.get("cell"), dict):
            raise refuse_layer(name, class_name, "a cell that is not a Keras object's config")
        scan_layer(cfg["cell"], wrapper=class_name)
    for key in ("layer", "backward_layer"):
        if isinstance(cfg.get(key), dict):
            scan_layer(cfg[key], wrapper=class_name)


def keras2_markers(config) -> list[str]:
    """The Keras-2-only keys found in a config (``KERAS2_CONFIG_KEYS``), and Keras 2's form of functional
    inbound nodes (``[["layer", 0, 0, {}]]``, where Keras 3 writes ``{"args": [...]}``)."""
    found = set()
    for entry in _walk_layers(config["config"]["layers"]):
        found.update(k for k in KERAS2_CONFIG_KEYS if k in entry["config"])
        nodes = entry.get("inbound_nodes")
        if nodes and isinstance(nodes[0], list):
            found.add("inbound_nodes as lists")
    return sorted(found)


def _walk_layers(entries):
    """Every layer entry, those inside wrappers and nested models included."""
    for entry in entries:
        yield entry
        for key in ("layer", "backward_layer"):
            if isinstance(entry["config"].get(key), dict):
                yield from _walk_layers([entry["config"][key]])
        if entry.get("class_name") in CONTAINERS and isinstance(entry["config"].get("layers"), list):
            yield from _walk_layers(entry["config"]["layers"])


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


def _renumber_keras2_nested_nodes(config: dict) -> None:
    """Point a Keras 2 file's references to a nested model's calls at the nodes Keras 3 makes of them.

    Keras 2 gives a nested Sequential or functional model a node of its own when it is built (node 0), so
    its calls are nodes 1, 2...; Keras 3 makes none (its calls are 0, 1...). Its legacy loader reads the
    indices as they are (keras/src/models/functional.py, ``deserialize_node``): the first call would read the
    second's output, and the last index none ("disconnected nodes"). One less, in the inbound nodes and the
    outputs that name such a model.
    """
    layers = config["config"]["layers"]
    nested = {e["config"]["name"] for e in layers if e.get("class_name") in CONTAINERS}
    if not nested:
        return
    refs = [ref for e in layers for node in e.get("inbound_nodes") or [] if isinstance(node, list) for ref in node]
    outputs = config["config"].get("output_layers") or []
    refs += [outputs] if outputs and isinstance(outputs[0], str) else list(outputs)
    for ref in refs:
        if isinstance(ref, list) and len(ref) >= 3 and ref[0] in nested and isinstance(ref[1], int) and ref[1] > 0:
            ref[1] -= 1


# Keras 2's MultiHeadAttention config keys that Keras 3.15.1's constructor rejects ("Unrecognized keyword
# arguments"): the build shapes (Keras 3 builds the layer when the loader calls it) and the masking switch.
KERAS2_ATTENTION_KEYS = ("query_shape", "key_shape", "value_shape", "softmax_robust_masking")


def _keras2_attention(config: dict) -> None:
    """A Keras 2 MultiHeadAttention as Keras 3 reads it: its config without ``KERAS2_ATTENTION_KEYS``, and its
    call's tensor keyword arguments (``value=``, ``key=``) in Keras 3's node form.

    Keras 2 writes those arguments in a legacy node as ``[layer, node, tensor]`` lists, which Keras 3.15.1's
    loader passes on as lists (keras/src/models/functional.py, ``deserialize_node``), so MultiHeadAttention
    is built without a value ("build() missing ... 'value_shape'"); in Keras 3's form ({"args", "kwargs"},
    tensors named by their history) the loader finds the tensors. ``softmax_robust_masking=False``
    (tf_keras's default) adds a large negative number to masked scores before the softmax, as Keras 3 does
    (keras/src/layers/activations/softmax.py); True is refused rather than silently replaced.
    """
    def is_tensor(value) -> bool:
        return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str) and \
            all(isinstance(i, int) for i in value[1:])

    def tensor(history) -> dict:  # shape and dtype are placeholders: the loader takes the tensor the history names
        return {"class_name": "__keras_tensor__", "config": {"shape": [], "dtype": "float32",
                                                             "keras_history": list(history)}}

    for entry in config["config"]["layers"]:
        if entry.get("class_name") != "MultiHeadAttention":
            continue
        cfg = entry["config"]
        if cfg.get("softmax_robust_masking"):
            raise refuse_layer(cfg.get("name", "?"), "MultiHeadAttention", "softmax_robust_masking=True in a "
                               "Keras 2 file: Keras 3 masks the scores with a large negative number only")
        for key in KERAS2_ATTENTION_KEYS:
            cfg.pop(key, None)
        nodes = entry.get("inbound_nodes") or []
        for k, node in enumerate(nodes):
            if isinstance(node, list) and len(node) == 1 and len(node[0]) == 4 and isinstance(node[0][3], dict):
                *query, kwargs = node[0]
                nodes[k] = {"args": [tensor(query)],
                            "kwargs": {key: tensor(v) if is_tensor(v) else v for key, v in kwargs.items()}}


# Keras 3.15.1's legacy .h5 loader turns a config string that names a function of keras.layers into that
# function (keras/src/legacy/saving/serialization.py L387-402): Attention's score_mode="dot" becomes the
# function keras.layers.dot, which Attention then refuses ("Invalid value for argument score_mode"). Naming
# "dot" as itself among the loader's custom objects keeps the string (looked up first, not a function).
H5_STRINGS_KEPT = {"dot": "dot"}


def _reserve_concatenate_names(config: dict) -> None:
    """Keep Keras 3's mask op of a Keras 2 Concatenate from taking that layer's own name.

    Rebuilding a Keras 2 functional graph, Keras 3.15.1 runs Concatenate's ``compute_mask``,
    whose ``ops.concatenate`` is auto-named ``concatenate`` (then ``concatenate_1`` ...), the
    names Keras 2 gave its Concatenate layers; the loader then raises 'The name "concatenate"
    is used 2 times in the model' (keras/src/models/functional.py), in a fresh process only.
    Keras names ``concatenate_{n}`` from a counter per prefix (keras/src/utils/naming.py,
    ``uniquify``); setting that counter past the file's largest suffix takes one step whatever
    the number (creating a throwaway layer per number took years for ``concatenate_1000000000000``).
    The model itself is untouched.
    """
    import collections
    import re

    from keras.src.backend.common import global_state
    suffixes = [int(m.group(1) or 0) for entry in _walk_layers(config["config"]["layers"])
                if (m := re.fullmatch(r"concatenate(?:_(\d+))?", entry["config"].get("name", "")))]
    if suffixes:
        uids = global_state.get_global_attribute("object_name_uids", default=collections.defaultdict(int),
                                                 set_to_default=True)
        uids["concatenate"] = max(uids["concatenate"], max(suffixes) + 1)


@contextlib.contextmanager
def _quiet_keras_loader():
    """Keras's loader without the log lines it would add to a one-line refusal.

    Keras's legacy .h5 reader asks whether TensorFlow is installed (``json_utils._decode_helper``: ``tf.available``
    imports it), so a JAX or torch process imports TensorFlow, which prints its absl and oneDNN lines on stderr
    (``TF_CPP_MIN_LOG_LEVEL`` does not silence "All log messages before absl::InitializeLog()"). Outside the
    TensorFlow backend, TensorFlow is kept out of the process for the load (an entry of None in ``sys.modules``
    makes its import fail, and Keras then treats it as absent, as on a machine without it). The reader's absl
    warning ("No training configuration found", ``legacy_h5_format.py``) is news for training, not here.
    """
    import keras
    block_tensorflow = keras.backend.backend() != "tensorflow" and "tensorflow" not in sys.modules
    if block_tensorflow:
        sys.modules["tensorflow"] = None
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)
        if block_tensorflow:
            if sys.modules.get("tensorflow", 0) is None:
                del sys.modules["tensorflow"]
            _forget_tensorflow_absent()


def _forget_tensorflow_absent() -> None:
    """Let Keras ask again whether TensorFlow is installed: it caches the answer (``LazyModule._available``), and
    code run after the load (an export to a TensorFlow format from JAX) may need TensorFlow."""
    from keras.src.utils import module_utils
    for lazy in vars(module_utils).values():
        if isinstance(lazy, module_utils.LazyModule) and lazy.name.startswith("tensorflow") and lazy.module is None:
            lazy._available = None


def saved_by_keras(path: Path, config: dict) -> tuple[str, bool]:
    """``(what saved the file, for the report; whether it is a Keras 2 file)``: its ``keras_version`` attribute,
    and, where that is missing or says otherwise, its config's Keras-2-only keys (``keras2_markers``)."""
    import keras
    if path.suffix not in (".h5", ".hdf5"):
        return f"keras {keras.version()} (.keras)", False
    import h5py
    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version", b"?")
    version = version.decode() if hasattr(version, "decode") else str(version)
    markers = keras2_markers(config)
    if version.startswith("2"):
        return f"keras {version} (.h5, Keras 2 file)", True
    if markers:
        return f"keras {version} (.h5, Keras 2 file by its config: {', '.join(markers)})", True
    return f"keras {version} (.h5)", False


def load_model(path: Path):
    """``(model, config, saved_by)``: the Keras model in ``path``, after the scan; ``saved_by`` names the Keras."""
    path = Path(path)
    config = read_config(path)
    scan_config(config)
    import keras
    saved_by, keras2 = saved_by_keras(path, config)
    tmpdir = None
    try:
        target = path
        if keras2:
            _refuse_keras2_hard_sigmoid(config)
            _reserve_concatenate_names(config)
        nested_keras2 = keras2 and any(e.get("class_name") in CONTAINERS for e in config["config"]["layers"])
        if nested_keras2:
            _renumber_keras2_nested_nodes(config)
        attention_keras2 = keras2 and any(e.get("class_name") == "MultiHeadAttention"
                                          for e in config["config"]["layers"])
        if attention_keras2:
            _keras2_attention(config)
        if path.suffix in (".h5", ".hdf5") and (nested_keras2 or attention_keras2 or any(
                "time_major" in e["config"] for e in _walk_layers(config["config"]["layers"]))):
            import h5py
            tmpdir = tempfile.mkdtemp(prefix="bilstm-verify-")
            target = Path(tmpdir) / path.name
            shutil.copyfile(path, target)
            _drop_time_major(config)
            with h5py.File(target, "r+") as f:
                f.attrs["model_config"] = json.dumps(config)
        try:
            with warnings.catch_warnings(), _quiet_keras_loader():  # advice about how the file's model was written:
                warnings.simplefilter("ignore", UserWarning)  # not news here (a dropped mask, Keras 2's input_shape)
                strings = H5_STRINGS_KEPT if path.suffix in (".h5", ".hdf5") else None
                model = keras.saving.load_model(target, compile=False, safe_mode=True, custom_objects=strings)
        except Exception as exc:  # Keras's own refusal, kept verbatim (all of it, on one line): what it could not read
            raise VerifyRefusal(f"Keras {keras.version()} cannot load {path}: {type(exc).__name__}: "
                                f"{one_line(exc)}") from None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return model, config, saved_by


def check_model_path(value: str) -> Path:
    """The MODEL_FILE argument, checked before Keras is imported."""
    from keras_impl.options import UsageError
    path = Path(value)
    if path.suffix not in MODEL_SUFFIXES:
        raise UsageError(f"MODEL_FILE must end in {', '.join(MODEL_SUFFIXES)}, got {value!r}")
    if not path.is_file():
        raise UsageError(f"MODEL_FILE {value!r} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise UsageError(f"MODEL_FILE {value!r} is not readable")
    return path
