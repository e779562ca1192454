"""Inputs for ``bilstm verify``: drawn to fit the model, or the user's ``--inputs``, checked.

Drawn, per model input, by what reads it first:
    Embedding(mask_zero=True)   ids in [1, vocab) then trailing 0 padding (masked)
    Embedding(mask_zero=False)  ids in [0, vocab), no padding
    Masking(v)                  standard normal rows, then trailing rows equal to v (masked)
    a boolean input             True with probability 0.7 (an attention_mask: some rows all False)
    anything else               standard normal rows
Sequence lengths vary over the batch between 1 and T: the first row is full, the
last (with batch >= 2) has one valid step, so a mask's every regime is exercised.

``draw_inputs``'s keywords let ``families.py`` draw the inputs that break deployments: given ``lengths``
(0 for a fully masked row), ``padding="left"`` (the masked steps first), ``scale`` (standard normal values
times it: gates pushed into saturation) and ``ids="ends"`` (token ids at both ends of the vocabulary only).
"""
from __future__ import annotations

import math
import os

import numpy as np

from .budget import DEFAULT_TIMESTEPS
from .config_file import one_line
from .errors import VerifyRefusal


def consumers(graph, name: str) -> list:
    return [layer for layer in graph.layers if name in layer.inbound]


def draw_lengths(rng: np.random.Generator, batch: int, timesteps: int) -> np.ndarray:
    lengths = rng.integers(1, timesteps + 1, size=batch)
    lengths[0] = timesteps
    if batch >= 2:
        lengths[-1] = 1
    return lengths


def resolve_shape(described, name: str, timesteps: int | None) -> tuple:
    shape = described.input_shapes[name]
    if not shape:
        raise VerifyRefusal(f"model input {name!r} has no time axis (shape {shape}): not a sequence model")
    fixed = shape[0]
    if fixed is not None and timesteps is not None and timesteps != fixed:
        raise VerifyRefusal(f"--timesteps {timesteps} does not match model input {name!r}, whose shape fixes "
                            f"T={fixed}")
    t = fixed if fixed is not None else (timesteps or DEFAULT_TIMESTEPS)
    if any(d is None for d in shape[1:]):
        raise VerifyRefusal(f"model input {name!r} has an unknown feature size (shape {shape})")
    return (t,) + tuple(shape[1:])


def mask_sources(described) -> list:
    """The layers that read a model input and make a mask from it: Masking, Embedding(mask_zero=True)."""
    graph = described.graph
    return [r for name in graph.inputs for r in consumers(graph, name)
            if r.kind == "Masking" or (r.kind == "Embedding" and r.options.get("mask_zero"))]


def token_inputs(described) -> list:
    """The Embedding layers that read a model input (token ids)."""
    graph = described.graph
    return [r for name in graph.inputs for r in consumers(graph, name) if r.kind == "Embedding"]


def _valid_steps(lengths: np.ndarray, T: int, padding: str) -> np.ndarray:
    """(B, T) booleans: each row's ``lengths`` valid steps, first (right padding) or last (left padding)."""
    steps = np.arange(T)[None, :]
    if padding == "left":
        return steps >= (T - lengths)[:, None]
    return steps < lengths[:, None]


def _ids(rng, size, low: int, vocab: int, ids: str | None):
    """Token ids in [low, vocab): uniform, or with ``ids="ends"`` only the two lowest and two highest."""
    if ids == "ends":
        ends = np.unique(np.clip([low, low + 1, vocab - 2, vocab - 1], low, vocab - 1))
        return rng.choice(ends, size=size)
    return rng.integers(low, vocab, size=size)


def draw_inputs(described, keras_layers, batch: int, timesteps: int | None, seed: int, *, lengths=None,
                padding: str = "right", scale: float = 1.0, ids: str | None = None):
    """``(arrays in graph.inputs order, description for the report)``; the keywords: the module's docstring."""
    rng = np.random.default_rng(seed)
    graph = described.graph
    arrays, about = [], []
    for name in graph.inputs:
        shape = resolve_shape(described, name, timesteps)
        readers = consumers(graph, name)
        T = shape[0]
        row_lengths = draw_lengths(rng, batch, T) if lengths is None else np.minimum(np.asarray(lengths), T)
        valid = _valid_steps(row_lengths, T, padding)  # (B, T)
        lengths_said = f"lengths {row_lengths.tolist()}"
        pad = "leading" if padding == "left" else "trailing"
        dtype = described.input_dtypes[name]
        embedding = next((r for r in readers if r.kind == "Embedding"), None)
        masking = next((r for r in readers if r.kind == "Masking"), None)
        if embedding is not None:
            vocab = keras_layers[embedding.name].input_dim
            which = " (only the two lowest and two highest)" if ids == "ends" else ""
            if embedding.options["mask_zero"]:
                if vocab < 2:
                    raise VerifyRefusal(f"Embedding {embedding.name!r} has input_dim={vocab}: no id besides padding")
                x = np.where(valid, _ids(rng, (batch,) + shape, 1, vocab, ids), 0)
                how = f"ids in [1, {vocab}){which} with {pad} 0 padding, {lengths_said}"
            else:
                x = _ids(rng, (batch,) + shape, 0, vocab, ids)
                how = f"ids in [0, {vocab}){which}, no padding"
            x = x.astype(dtype if "int" in dtype else np.float32 if dtype == "float32" else dtype)
        elif dtype == "bool":
            x = rng.random((batch,) + shape) < 0.7
            how = "True with probability 0.7"
        else:
            x = rng.standard_normal((batch,) + shape) * scale
            drawn = "standard normal" if scale == 1.0 else f"standard normal x {scale:g}"
            if masking is not None:
                value = masking.options["mask_value"]
                x = np.where(valid.reshape(valid.shape + (1,) * (len(shape) - 1)), x, value)
                how = f"{drawn}, {pad} rows = {value:g} (masked), {lengths_said}"
            else:
                how = f"{drawn}, no padding"
            x = x.astype(dtype if dtype.startswith("float") else np.float32)
        arrays.append(x)
        about.append({"input": name, "shape": list(x.shape), "dtype": str(x.dtype), "drawn": how})
    return arrays, about


def read_inputs_header(path) -> tuple[tuple, np.dtype]:
    """The shape and dtype an ``--inputs`` .npy file declares, read from its header alone (nothing loaded), and
    refused when the file does not hold what it claims or the array would not fit in memory."""
    from numpy.lib import format as npy

    from keras_impl.options import UsageError

    from .budget import check_array_memory
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            if version not in readers:
                raise UsageError(f"--inputs {path}: .npy format version {version[0]}.{version[1]} is not read here "
                                 "(1.0 and 2.0 are)")
            shape, _, dtype = readers[version](f)
            stored = os.fstat(f.fileno()).st_size - f.tell()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs {path}: cannot read a .npy array: {one_line(exc)}") from None
    if dtype.hasobject:
        raise UsageError(f"--inputs {path}: holds Python objects (a pickle), which are never loaded")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > stored:
        raise UsageError(f"--inputs {path}: its header claims shape {shape} of {dtype} ({claimed} bytes), "
                         f"but the file holds {stored} bytes of data")
    check_array_memory(f"--inputs {path} (shape {shape}, {dtype}, read then converted to float64)",
                       math.prod(shape), dtype.itemsize + 8)
    return shape, dtype


def load_inputs_file(path) -> np.ndarray:
    """The ``--inputs`` array: a .npy file holding one finite numeric array (no pickles), its header checked first."""
    from keras_impl.options import UsageError
    shape, dtype = read_inputs_header(path)
    _check_kind(f"--inputs {path}", shape, dtype)
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs {path}: cannot read a .npy array: {one_line(exc)}") from None
    return check_inputs_array(x, f"--inputs {path}")


def _check_kind(what: str, shape: tuple, dtype: np.dtype) -> None:
    from keras_impl.options import UsageError
    if dtype == bool or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise UsageError(f"{what}: must hold real numbers, got dtype {dtype}")
    if len(shape) < 2 or 0 in shape:
        raise UsageError(f"{what}: must be a non-empty (batch, time, ...) array, got shape {tuple(shape)}")


def check_inputs_array(x, what: str = "inputs") -> np.ndarray:
    """A user's input array: real numbers, (batch, time, ...), finite."""
    from keras_impl.options import UsageError
    if not isinstance(x, np.ndarray):
        raise UsageError(f"{what}: must be a NumPy array, got {type(x).__name__}")
    _check_kind(what, x.shape, x.dtype)
    if not np.all(np.isfinite(x)):
        raise UsageError(f"{what}: must be finite (found NaN or inf)")
    return x


def check_user_inputs(described, keras_layers, x: np.ndarray):
    """The user's array against the model's (single) input: shape, dtype, id range."""
    graph = described.graph
    if len(graph.inputs) != 1:
        raise VerifyRefusal(f"--inputs takes one array, but the model has {len(graph.inputs)} inputs "
                            f"{list(graph.inputs)}; leave --inputs out to draw them")
    name = graph.inputs[0]
    expected = described.input_shapes[name]
    if x.ndim != len(expected) + 1 or any(e is not None and e != a for e, a in zip(expected, x.shape[1:])):
        raise VerifyRefusal(f"--inputs has shape {x.shape}; model input {name!r} takes (batch, "
                            f"{', '.join('any' if e is None else str(e) for e in expected)})")
    dtype = described.input_dtypes[name]
    embedding = next((r for r in consumers(graph, name) if r.kind == "Embedding"), None)
    if embedding is not None:
        vocab = keras_layers[embedding.name].input_dim
        if not np.all(x == np.round(x)) or x.min() < 0 or x.max() >= vocab:
            raise VerifyRefusal(f"--inputs feeds Embedding {embedding.name!r}: ids must be integers in [0, {vocab}), "
                                f"got values in [{x.min()}, {x.max()}]")
        x = x.astype(dtype if "int" in dtype else np.float32)
    else:
        x = x.astype(dtype if dtype.startswith("float") else np.float32)
    return [x], [{"input": name, "shape": list(x.shape), "dtype": str(x.dtype), "drawn": "the user's --inputs"}]
