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
    # Keras 3: masks are in kwargs, and so is MultiHeadAttention's key (read after the positional inputs)
    kwargs = first.get("kwargs") if isinstance(first, dict) else None
    key = kwargs.get("key") if isinstance(kwargs, dict) else None
    names, stack = [], [[first.get("args"), key] if isinstance(first, dict) else first]
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


def _count(value, default: int = 1) -> int:
    """A size the config claims: a whole number from 1, else ``default`` (Keras refuses the config itself)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else default


def _attention(kind: str, cfg: dict, inputs: list[tuple]) -> tuple[int, tuple]:
    """Attention layers: query, value[, key] shapes -> (weights, output shape)."""
    query = inputs[0] if inputs else ()
    value = inputs[1] if len(inputs) > 1 else query
    last = [(s[-1] if s and s[-1] is not None else 1) for s in (query, value, inputs[2] if len(inputs) > 2 else value)]
    if kind != "MultiHeadAttention":
        return last[0] + 1, tuple(query[:-1]) + (last[1],)
    heads, key_dim = _count(cfg.get("num_heads")), _count(cfg.get("key_dim"))
    value_dim = _count(cfg.get("value_dim"), key_dim)
    out = cfg.get("output_shape")
    out = [out] if isinstance(out, int) else out if isinstance(out, list) and out else [last[0]]
    out = [_count(d) for d in out]
    gate = (last[0] + 1) * value_dim if cfg.get("use_gate") else 0
    projections = heads * ((last[0] + 1) * key_dim + (last[2] + 1) * key_dim + (last[1] + 1) * value_dim + gate)
    return projections + (heads * value_dim + 1) * math.prod(out), tuple(query[:-1]) + tuple(out)


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
    if kind in CONV_LSTM or "kernel_size" in cfg:
        return _conv(kind, cfg, tuple(shape))
    if kind == "TimeDistributed":
        inner = cfg.get("layer") or {}
        weights, out = _layer(inner, [tuple(shape[1:])], timesteps)
        return weights, tuple(shape[:1]) + out
    if kind.startswith("Global") and kind.endswith(("Pooling1D", "Pooling2D", "Pooling3D")):
        return 0, tuple(shape[:1] if cfg.get("data_format") == "channels_first" else shape[-1:])
    if kind.endswith(("Pooling1D", "Pooling2D", "Pooling3D")):
        return 0, _pooled(shape, cfg)
    if kind in RESHAPING or kind in MERGING:
        return 0, (RESHAPING.get(kind) or MERGING.get(kind))(cfg, shape, inputs, timesteps)
    if kind in ("Attention", "AdditiveAttention", "MultiHeadAttention"):
        return _attention(kind, cfg, inputs)
    return 0, tuple(shape)


def _pooled(shape: tuple, cfg: dict) -> tuple:
    """A pooling layer's output shape: each spatial axis divided by its stride (rounded up: "same"'s size, an
    upper bound of "valid"'s); axes the config leaves unknown stay so."""
    spatial = range(1, len(shape)) if cfg.get("data_format") == "channels_first" else range(len(shape) - 1)
    strides = cfg.get("strides") or cfg.get("pool_size") or ()
    strides = [strides] * len(spatial) if isinstance(strides, int) else list(strides)
    out = list(shape)
    for axis, stride in zip(spatial, strides):
        if isinstance(out[axis], int) and isinstance(stride, int) and stride >= 1:
            out[axis] = -(-out[axis] // stride)
    return tuple(out)


def _numbers(value) -> list[int]:
    """The whole numbers in a size option (an int, or lists of them: (a, b), ((t, b), (l, r))); 1 for anything
    else, which Keras's own loader refuses later."""
    if isinstance(value, bool):
        return [1]
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [1]


def _times(dim, factor: int):
    return None if dim is None else dim * factor


def _reshape(cfg, shape, inputs, timesteps):
    target = _numbers(cfg.get("target_shape"))
    if -1 in target:  # the free size: all the input's numbers over the others
        known = math.prod(d for d in target if d != -1) or 1
        target = [(_size(shape, timesteps) // known) if d == -1 else d for d in target]
    return tuple(target)


def _padded(cfg, shape, sign: int, key: str):
    """ZeroPadding (sign 1) / Cropping (-1): the spatial axes after the batch, or after the channels."""
    amounts = _numbers(cfg.get(key, 0))
    rank = len(shape) - 1
    amounts = amounts * 2 * rank if len(amounts) == 1 else amounts
    first = 1 if cfg.get("data_format") == "channels_first" else 0
    out = list(shape)
    for k in range(min(rank, len(amounts) // 2)):
        if first + k < len(out) and out[first + k] is not None:
            out[first + k] = max(0, out[first + k] + sign * (amounts[2 * k] + amounts[2 * k + 1]))
    return tuple(out)


def _upsampled(cfg, shape):
    sizes = _numbers(cfg.get("size", 2))
    rank = len(shape) - 1
    sizes = sizes * rank if len(sizes) == 1 else sizes
    first = 1 if cfg.get("data_format") == "channels_first" else 0
    out = list(shape)
    for k, factor in enumerate(sizes[:rank]):
        if first + k < len(out):
            out[first + k] = _times(out[first + k], factor)
    return tuple(out)


def _broadcast(inputs):
    """Merge layers: the inputs' shapes, ranks aligned as Keras does (axes inserted after the batch), largest."""
    rank = max((len(s) for s in inputs), default=0)
    aligned = [(1,) * (rank - len(s)) + tuple(s) for s in inputs]
    return tuple(None if None in dims else max(dims) for dims in zip(*aligned))


def _concatenated(cfg, inputs):
    out = list(inputs[0]) if inputs and inputs[0] else [1]
    axis = _numbers(cfg.get("axis", -1))[0]
    axis = axis - 1 if axis > 0 else axis  # shapes here leave out the batch
    if -len(out) <= axis < len(out):
        out[axis] = sum((s[axis] or 1) if s and -len(s) <= axis < len(s) else 1 for s in inputs)
    return tuple(out)


def _dotted(cfg, inputs):
    """Dot: each input less its summed axis, the second's after the first's (at least one number)."""
    left, right = (list(s) for s in (inputs + [(), ()])[:2])
    axes = _numbers(cfg.get("axes", -1))
    axes = axes * 2 if len(axes) == 1 else axes
    for dims, axis in ((left, axes[0]), (right, axes[1])):
        index = axis - 1 if axis > 0 else len(dims) + axis
        if 0 <= index < len(dims):
            del dims[index]
    return tuple(left + right) or (1,)


RESHAPING = {
    "Reshape": _reshape,
    "Permute": lambda cfg, shape, inputs, t: tuple(shape[d - 1] if 1 <= d <= len(shape) else 1
                                                   for d in _numbers(cfg.get("dims"))),
    "RepeatVector": lambda cfg, shape, inputs, t: (_numbers(cfg.get("n", 1))[0],) + tuple(shape),
    "Flatten": lambda cfg, shape, inputs, t: (_size(shape, t),),
    "ZeroPadding1D": lambda cfg, shape, inputs, t: _padded(cfg, shape, 1, "padding"),
    "ZeroPadding2D": lambda cfg, shape, inputs, t: _padded(cfg, shape, 1, "padding"),
    "ZeroPadding3D": lambda cfg, shape, inputs, t: _padded(cfg, shape, 1, "padding"),
    "Cropping1D": lambda cfg, shape, inputs, t: _padded(cfg, shape, -1, "cropping"),
    "Cropping2D": lambda cfg, shape, inputs, t: _padded(cfg, shape, -1, "cropping"),
    "Cropping3D": lambda cfg, shape, inputs, t: _padded(cfg, shape, -1, "cropping"),
    "UpSampling1D": lambda cfg, shape, inputs, t: _upsampled(cfg, shape),
    "UpSampling2D": lambda cfg, shape, inputs, t: _upsampled(cfg, shape),
    "UpSampling3D": lambda cfg, shape, inputs, t: _upsampled(cfg, shape),
}
MERGING = {
    **{kind: lambda cfg, shape, inputs, t: _broadcast(inputs)
       for kind in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")},
    "Concatenate": lambda cfg, shape, inputs, t: _concatenated(cfg, inputs),
    "Dot": lambda cfg, shape, inputs, t: _dotted(cfg, inputs),
}


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
