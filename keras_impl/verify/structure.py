"""The shape of a model config, checked before any of it is used: each refusal names the path that is wrong.

A config is valid JSON of any shape (``"layers": 5``, a layer that is a string, ``"units": 1e5``); the
scans of ``load.py``, the memory estimate of ``budget.py`` and Keras itself read it as Keras writes it.
Here every part they read is checked for its type, and the sizes they multiply for being whole numbers:
``config.layers[2].config is a string, expected an object`` (paths from the root of the stored JSON).
"""
from __future__ import annotations

from .errors import VerifyRefusal

# Options read as sizes (budget.py multiplies them; Keras allocates them): whole numbers from 1.
SIZE_OPTIONS = ("units", "input_dim", "output_dim")
# Options read as shapes, with the batch first: lists of whole numbers (or null, a free axis).
SHAPE_OPTIONS = ("batch_shape", "batch_input_shape")


def _type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _wrong(path: str, value, expected: str) -> VerifyRefusal:
    shown = repr(value) if isinstance(value, (int, float, bool)) or value is None else _type(value)
    return VerifyRefusal(f"the model config is malformed: {path} is {shown}, expected {expected}")


def _expect(value, kind: type, path: str, expected: str):
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise _wrong(path, value, expected)
    return value


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_shape(value, path: str) -> None:
    _expect(value, list, path, "a list of sizes")
    for k, dim in enumerate(value):
        if dim is not None and not (_whole(dim) and dim >= 0):
            raise _wrong(f"{path}[{k}]", dim, "a whole number or null")


def check_layer(entry, path: str) -> None:
    """One layer entry ``{"class_name": ..., "config": {...}}``, and the layers it wraps."""
    _expect(entry, dict, path, "an object (a layer)")
    _expect(entry.get("class_name"), str, f"{path}.class_name", "a string")
    cfg = _expect(entry.get("config"), dict, f"{path}.config", "an object")
    if "name" in cfg:
        _expect(cfg["name"], str, f"{path}.config.name", "a string")
    for key in ("module", "registered_name"):
        if entry.get(key) is not None:
            _expect(entry[key], str, f"{path}.{key}", "a string or null")
    for key in SIZE_OPTIONS:
        if key in cfg and not (_whole(cfg[key]) and cfg[key] >= 1):
            raise _wrong(f"{path}.config.{key}", cfg[key], "a whole number from 1")
    for key in SHAPE_OPTIONS:
        if cfg.get(key) is not None:
            check_shape(cfg[key], f"{path}.config.{key}")
    build = entry.get("build_config")
    if build is not None:
        _expect(build, dict, f"{path}.build_config", "an object")
    if "inbound_nodes" in entry:
        _expect(entry["inbound_nodes"], list, f"{path}.inbound_nodes", "a list")
    for key in ("layer", "backward_layer"):
        if cfg.get(key) is not None:
            check_layer(cfg[key], f"{path}.config.{key}")


def check_structure(config) -> None:
    """The whole model config: a model object whose ``config.layers`` is a list of layer objects."""
    _expect(config, dict, "the whole config", "an object (a model)")
    _expect(config.get("class_name"), str, "class_name", "a string")
    body = _expect(config.get("config"), dict, "config", "an object")
    layers = _expect(body.get("layers"), list, "config.layers", "a list of layers")
    for i, entry in enumerate(layers):
        check_layer(entry, f"config.layers[{i}]")
