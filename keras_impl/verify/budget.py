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
GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}
SEQUENCE_KEEPING = ("InputLayer", "Masking", "Dropout", "SpatialDropout1D", "Activation")
CONV_LSTM = ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


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


def _ints(value, rank: int) -> tuple:
    """A config's int-or-list option (kernel_size, strides...) as ``rank`` positive ints (1 where unreadable)."""
    values = value if isinstance(value, list) else [value] * rank
    return tuple(v if isinstance(v, int) and v > 0 else 1 for v in values[:rank]) + (1,) * max(rank - len(values), 0)


def _conv(kind: str, cfg: dict, shape: tuple) -> tuple[int, tuple]:
    """``(weights, output shape)`` of a convolution (any ``filters``/``kernel_size`` config) or a ConvLSTM.

    The spatial size per axis: n / s for "same", n - k_eff + 1 over s for "valid", Keras's own rule for a
    transpose conv, a free size left free; channels become ``filters`` (C M for a depthwise conv).
    """
    steps = shape[:1] if kind in CONV_LSTM else ()
    shape = shape[len(steps):]
    rank = max(len(shape) - 1, 1)
    first = cfg.get("data_format") == "channels_first"
    spatial = shape[1:] if first else shape[:-1]
    channels = (shape[0] if first else shape[-1]) if shape else 1
    channels = channels if isinstance(channels, int) else 1
    kernel = _ints(cfg.get("kernel_size", 1), rank)
    strides, dilation = _ints(cfg.get("strides", 1), rank), _ints(cfg.get("dilation_rate", 1), rank)
    taps = math.prod(kernel)
    multiplier = cfg.get("depth_multiplier", 1) if isinstance(cfg.get("depth_multiplier", 1), int) else 1
    filters = cfg.get("filters") if isinstance(cfg.get("filters"), int) else channels * multiplier
    groups = cfg.get("groups", 1) if isinstance(cfg.get("groups", 1), int) and cfg.get("groups", 1) > 0 else 1
    bias = 0 if cfg.get("use_bias") is False else 1
    if kind in CONV_LSTM:
        weights = 4 * filters * (taps * (channels + filters) + bias)
    elif kind.startswith("Separable"):
        weights = taps * channels * multiplier + channels * multiplier * filters + bias * filters
    elif kind.startswith("Depthwise"):
        weights = (taps + bias) * channels * multiplier
    else:
        weights = (taps * channels // groups + bias) * filters
    given = cfg.get("output_padding")  # None, an int or one per axis (0 allowed)
    given = given if isinstance(given, list) else [given] * rank if isinstance(given, int) else [None] * rank
    out = []
    for n, k, s, d, op in zip(spatial, kernel, strides, dilation, given + [None] * rank):
        k_eff = (k - 1) * d + 1
        if not isinstance(n, int):
            out.append(None)  # a free axis stays free: _size counts the time axis as the timesteps drawn
        elif "Transpose" in kind:  # keras/src/backend/common/backend_utils.py _get_output_shape_given_tf_padding
            op = op if isinstance(op, int) and op >= 0 else None  # a config is a claim: anything else, the default
            if cfg.get("padding") == "valid":
                out.append((n - 1) * s + k_eff + (max(k_eff, s) - k_eff if op is None else op))
            else:
                out.append(n * s if op is None else (n - 1) * s + k_eff % 2 + op)
        else:
            out.append(-(-n // s) if cfg.get("padding") != "valid" else max(-(-(n - k_eff + 1) // s), 1))
    if kind in CONV_LSTM and not cfg.get("return_sequences"):
        steps = ()
    return weights, tuple(steps) + ((filters, *out) if first else (*out, filters))


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
    if kind in CONV_LSTM or "kernel_size" in cfg:
        return _conv(kind, cfg, tuple(shape))
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
    """Every layer's weights and outputs (a config whose structure ``structure.check_structure`` accepted)."""
    free_t = timesteps or DEFAULT_TIMESTEPS
    item = ITEMSIZE.get(dtype, 4)
    shapes: dict[str, tuple] = {}
    previous: tuple | None = None
    sequential = config.get("class_name") == "Sequential"
    needs = []
    for entry in config["config"]["layers"]:
        name = entry["config"].get("name", "?")
        declared = _declared_input(entry)
        if sequential or not entry.get("inbound_nodes"):
            inputs = [declared if declared is not None else previous or ()]
        else:
            inputs = [shapes.get(n, ()) for n in _inbound(entry)] or [()]
        if entry["class_name"] == "InputLayer":
            weights, out = 0, inputs[0]
        else:
            weights, out = _layer(entry, inputs, free_t)
        shapes[name] = previous = out
        outputs = batch * _size(out, free_t)
        needs.append(LayerNeed(name, entry["class_name"], weights, outputs,
                               weights * (2 * item + ORACLE_ITEMSIZE) + outputs * (item + ORACLE_ITEMSIZE)))
    return needs


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
