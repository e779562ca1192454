"""The memory a model will take, estimated from its config before anything is built; refused above what is available.

A config is a claim: ``"units": 1000000000`` is a few bytes of JSON and 4e18 weights. Given such a file, JAX
aborts the whole process (SIGABRT, "overflow in static extent product"), NumPy ends in MemoryError after
minutes, and the machine swaps. So every layer's weights and outputs are counted from the config (with the
batch and timesteps that will be drawn, or the ``--inputs`` array's shape), and the model is refused in one
line when the total exceeds the memory this machine has available, naming the largest layer and both figures.

The count is a lower bound of what verify holds at once: each weight three times (Keras's variable, the copy
``get_weights`` returns, the oracle's float64 copy), each layer's output twice (Keras's and the oracle's,
both kept for the table), nothing for Keras's and the oracle's temporaries.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from keras_impl.memory import available_bytes, format_bytes

from .errors import VerifyRefusal

DEFAULT_BATCH = 4       # sequences drawn when --batch is not given
DEFAULT_TIMESTEPS = 8   # sequence length drawn when the model's input leaves it free and --timesteps is not given
ITEMSIZE = {"float32": 4, "float64": 8}
ORACLE_ITEMSIZE = 8     # the oracle computes in float64
GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1, "LSTMCell": 4, "GRUCell": 3, "SimpleRNNCell": 1}
CONTAINERS = ("Sequential", "Functional", "Model")  # a nested model: its layers are counted
SEQUENCE_KEEPING = ("InputLayer", "Masking", "Dropout", "SpatialDropout1D", "Activation")


@dataclass(frozen=True)
class LayerNeed:
    name: str
    class_name: str
    weights: int   # numbers
    outputs: int   # numbers, the whole batch
    bytes: int


def _size(dims, timesteps: int) -> int:
    """Numbers in one sample of a shape without the batch: a free time axis (first) is ``timesteps``, others 1."""
    dims = list(dims)
    if dims and dims[0] is None:
        dims[0] = timesteps
    return math.prod(1 if d is None else d for d in dims)


def _inbound(entry: dict) -> list[str]:
    """The names of the layers feeding a functional layer (Keras 3 tensors' history, or Keras 2 node lists)."""
    nodes = entry.get("inbound_nodes") or []
    first = nodes[0] if nodes else []
    names, stack = [], [first.get("args") if isinstance(first, dict) else first]  # Keras 3: masks are in kwargs
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            history = (node.get("config") or {}).get("keras_history") if isinstance(node.get("config"), dict) else None
            if node.get("class_name") == "__keras_tensor__" and isinstance(history, list) and history \
                    and isinstance(history[0], str):
                names.append(history[0])
            else:
                stack.extend(node.values())
        elif isinstance(node, list):
            if len(node) >= 3 and isinstance(node[0], str) and all(isinstance(v, int) for v in node[1:3]):
                names.append(node[0])  # Keras 2: [layer name, node index, tensor index, kwargs]
            else:
                stack.extend(reversed(node))
    return names


def _layer(entry: dict, inputs: list[tuple], timesteps: int) -> tuple[int, tuple]:
    """``(weights, output shape without the batch)`` of one layer entry given its input shapes."""
    kind, cfg = entry["class_name"], entry["config"]
    shape = inputs[0] if inputs else ()
    features = shape[-1] if shape and shape[-1] is not None else 1
    if kind in GATES:
        units = cfg.get("units", 1)
        weights = GATES[kind] * units * (features + units + 2)
        return weights, ((shape[0] if shape else None), units) if cfg.get("return_sequences") else (units,)
    if kind == "RNN":  # its cell, or a StackedRNNCells' cells each reading the one before
        cell = cfg.get("cell") if isinstance(cfg.get("cell"), dict) else {}
        cells = (cell.get("config") or {}).get("cells") if cell.get("class_name") == "StackedRNNCells" else [cell]
        weights, step = 0, (features,)
        for c in (c for c in (cells if isinstance(cells, list) else []) if isinstance(c, dict)):
            w, step = _layer({"class_name": c.get("class_name"), "config": c.get("config") or {}}, [step], timesteps)
            weights += w
        units = step[-1] if step else 1
        return weights, ((shape[0] if shape else None), units) if cfg.get("return_sequences") else (units,)
    if kind in ("LSTMCell", "GRUCell", "SimpleRNNCell"):  # one step: (features,) -> (units,)
        units = cfg.get("units", 1)
        return GATES[kind] * units * (features + units + 2), (units,)
    if kind == "Bidirectional":
        forward = cfg.get("layer") or {}
        backward = cfg.get("backward_layer") or forward
        parts = [_layer(copy, [shape], timesteps) for copy in (forward, backward)]
        units = [p[1][-1] for p in parts]
        merged = sum(units) if cfg.get("merge_mode", "concat") == "concat" else max(units)
        return parts[0][0] + parts[1][0], parts[0][1][:-1] + (merged,)
    if kind == "Embedding":
        return cfg.get("input_dim", 1) * cfg.get("output_dim", 1), tuple(shape) + (cfg.get("output_dim", 1),)
    if kind == "Dense":
        units = cfg.get("units", 1)
        return (features + 1) * units, tuple(shape[:-1]) + (units,)
    if kind == "TimeDistributed":
        inner = cfg.get("layer") or {}
        weights, out = _layer(inner, [tuple(shape[1:])], timesteps)
        return weights, tuple(shape[:1]) + out
    if kind == "Concatenate":
        return 0, tuple(shape[:-1]) + (sum((s[-1] or 1) if s else 1 for s in inputs),)
    if kind in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        return 0, tuple(shape[-1:])
    if kind == "Flatten":
        return 0, (_size(shape, timesteps),)
    return 0, tuple(shape)


def _declared_input(entry: dict):
    cfg = entry["config"]
    for key in ("batch_shape", "batch_input_shape"):
        if isinstance(cfg.get(key), list):
            return tuple(cfg[key][1:])
    return None


def estimate(config: dict, batch: int = DEFAULT_BATCH, timesteps: int | None = None,
             dtype: str = "float32") -> list[LayerNeed]:
    """Every layer's weights and outputs (a config whose structure ``structure.check_structure`` accepted), a
    nested model's layers included."""
    return _estimate(config, batch, timesteps or DEFAULT_TIMESTEPS, ITEMSIZE.get(dtype, 4))[0]


def _estimate(config: dict, batch: int, free_t: int, item: int, given: tuple | None = None):
    """``(needs, output shape)`` of a model config; ``given``: the shape its call receives (a nested model)."""
    shapes: dict[str, tuple] = {}
    previous: tuple | None = None
    sequential = config.get("class_name") == "Sequential"
    needs = []
    for entry in config["config"]["layers"]:
        name = entry["config"].get("name", "?")
        declared = _declared_input(entry)
        if sequential or not entry.get("inbound_nodes"):
            inputs = [declared if declared is not None else previous or given or ()]
        else:
            inputs = [shapes.get(n, ()) for n in _inbound(entry)] or [()]
        if entry["class_name"] == "InputLayer":
            weights, out = 0, inputs[0]
        elif entry["class_name"] in CONTAINERS and isinstance((entry.get("config") or {}).get("layers"), list):
            inner, out = _estimate(entry, batch, free_t, item, inputs[0])
            needs.extend(inner)
            shapes[name] = previous = out
            continue
        else:
            weights, out = _layer(entry, inputs, free_t)
        shapes[name] = previous = out
        outputs = batch * _size(out, free_t)
        needs.append(LayerNeed(name, entry["class_name"], weights, outputs,
                               weights * (2 * item + ORACLE_ITEMSIZE) + outputs * (item + ORACLE_ITEMSIZE)))
    output_layers = config["config"].get("output_layers")
    first = output_layers[0] if isinstance(output_layers, list) and output_layers else None
    first = first[0] if isinstance(first, list) and first else first
    return needs, shapes.get(first, previous) if isinstance(first, str) else previous


def check_memory(config: dict, batch: int = DEFAULT_BATCH, timesteps: int | None = None, dtype: str = "float32",
                 available: int | None = None) -> None:
    """Refuse (one line) a model whose estimated memory exceeds what is available."""
    needs = estimate(config, batch, timesteps, dtype)
    total = sum(n.bytes for n in needs)
    available = available_bytes() if available is None else available
    if available is None or total <= available or not needs:
        return
    worst = max(needs, key=lambda n: n.bytes)
    raise VerifyRefusal(
        f"layer {worst.name!r} ({worst.class_name}) would take at least {format_bytes(worst.bytes)} "
        f"({worst.weights:.3g} weights, {worst.outputs:.3g} output numbers at batch {batch}), the model "
        f"{format_bytes(total)} in all, more than the {format_bytes(available)} of memory available here "
        "(estimated from the file's config, before anything is built)")


def check_array_memory(what: str, numbers: int, itemsize: int, available: int | None = None) -> None:
    """Refuse an array (an ``--inputs`` file's claimed shape) larger than the memory available."""
    need = numbers * itemsize
    available = available_bytes() if available is None else available
    if available is not None and need > available:
        raise VerifyRefusal(f"{what} would take {format_bytes(need)}, more than the {format_bytes(available)} "
                            "of memory available here")
