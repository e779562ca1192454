"""Every weight-layout conversion of bilstm-lab, in one module: Keras <-> PyTorch, Keras <-> ONNX.

Works on NumPy arrays and imports neither Keras nor torch at module level, so
the oracle side, the tests and a user without a deep-learning framework can
all use it. Arrays keep their dtype (float32 from Keras stays float32).

Keras (``LSTM.get_weights()``, one direction), gate order **i, f, c, o**:
    kernel            (D, 4U)
    recurrent_kernel  (U, 4U)
    bias              (4U,)
A stack of recurrent layers lists them in ``model.get_weights()`` order:
``[kernel, recurrent_kernel, bias]`` per LSTM layer, and per Bidirectional layer
the forward triple then the backward triple.

PyTorch ``nn.LSTM`` state dict, same gate order i, f, g(=c), o, layer ``k``:
    weight_ih_l{k}  = kernel.T            (4U, D)
    weight_hh_l{k}  = recurrent_kernel.T  (4U, U)
    bias_ih_l{k} + bias_hh_l{k} = bias    (4U,) each
    ``*_reverse`` keys hold the backward direction (Keras's ``go_backwards`` copy).
torch adds two biases where Keras has one; this module puts the whole Keras
bias in ``bias_ih`` and zeros in ``bias_hh`` (any split computes the same
thing) and, coming back, sums the two.

ONNX ``LSTM`` operator, one operator per layer, gate order **i, o, f, c**:
    W  [dirs, 4U, D]   = kernel.T with the gate blocks reordered
    R  [dirs, 4U, U]   = recurrent_kernel.T, reordered
    B  [dirs, 8U]      = [Wb | Rb]: the Keras bias (reordered) then zeros; back: Wb + Rb

What the layouts do not change: torch's and ONNX's reverse direction returns
outputs in time order, Keras's ``go_backwards`` LSTM in processing order; a
Bidirectional layer flips them back, so ``concat`` merges agree with torch.
torch's ``nn.LSTM`` stacks bidirectional layers with ``concat`` only.
"""
from __future__ import annotations

import numpy as np

# Keras's gate blocks i, f, c, o -> ONNX's i, o, f, c (and back).
KERAS_TO_ONNX_GATES = (0, 3, 1, 2)
ONNX_TO_KERAS_GATES = (0, 2, 3, 1)
_DIRECTION_SUFFIX = ("", "_reverse")
_TORCH_ROLES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# ---------------------------------------------------------------------------------------- checks

def _as_array(name: str, value) -> np.ndarray:
    """A real floating-point array; torch tensors (any device) are accepted and copied to NumPy."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def check_keras_triple(kernel, recurrent_kernel, bias, *, name: str = "", features: int | None = None):
    """Checked ``(kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,))``; U read off the recurrent kernel."""
    prefix = f"{name}: " if name else ""
    kernel, recurrent_kernel, bias = (_as_array(f"{prefix}{n}", v) for n, v in
                                      (("kernel", kernel), ("recurrent_kernel", recurrent_kernel), ("bias", bias)))
    if recurrent_kernel.ndim != 2 or not recurrent_kernel.size or recurrent_kernel.shape[1] != 4 * recurrent_kernel.shape[0]:
        raise ValueError(f"{prefix}recurrent_kernel must have shape (units, 4*units) with units >= 1, "
                         f"got {recurrent_kernel.shape}")
    U = recurrent_kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 4 * U or (features is not None and kernel.shape[0] != features):
        expected = f"({'input_dim' if features is None else features}, {4 * U})"
        raise ValueError(f"{prefix}kernel must have shape {expected} (input_dim, 4*units) for units={U}, got {kernel.shape}")
    if bias.shape != (4 * U,):
        raise ValueError(f"{prefix}bias must have shape ({4 * U},) (4*units,) for units={U}, got {bias.shape}")
    return kernel, recurrent_kernel, bias


def _split_layers(weights, bidirectional: bool, *, torch_stacking: bool = False):
    """Keras's flat get_weights() list -> per layer, per direction, a checked triple.

    ``torch_stacking``: layer k > 0 must take ``dirs * U`` features, the concatenated
    output of the layer below, as ``torch.nn.LSTM`` stacks them.
    """
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"weights must be a list of arrays in Keras get_weights() order, got {type(weights).__name__}")
    if not isinstance(bidirectional, (bool, np.bool_)):
        raise TypeError(f"bidirectional must be True or False, got {bidirectional!r}")
    per_layer = 6 if bidirectional else 3
    if not weights or len(weights) % per_layer:
        what = "[fwd kernel, fwd recurrent_kernel, fwd bias, bwd kernel, bwd recurrent_kernel, bwd bias]" \
            if bidirectional else "[kernel, recurrent_kernel, bias]"
        raise ValueError(f"weights must hold a multiple of {per_layer} arrays ({what} per layer, bidirectional="
                         f"{bidirectional}), got {len(weights)}; drop the Dense head's weights first")
    layers = []
    for k in range(len(weights) // per_layer):
        triples = []
        for d in range(2 if bidirectional else 1):
            start = k * per_layer + 3 * d
            label = f"weights[{start}:{start + 3}] (layer {k}{', backward' if d else ''})"
            triples.append(check_keras_triple(*weights[start:start + 3], name=label))
        if triples[0][0].shape[0] != triples[-1][0].shape[0] or triples[0][1].shape != triples[-1][1].shape:
            raise ValueError(f"layer {k}: the two directions must have the same input size and units, got kernels "
                             f"{triples[0][0].shape} (forward) and {triples[1][0].shape} (backward); if these are "
                             f"stacked LSTM layers, not a Bidirectional layer, pass bidirectional=False")
        if layers:  # a stacked layer reads the layer below: its units (plain), or 1 or 2 times them (merged)
            below = layers[-1][0][1].shape[0]
            allowed = (below, 2 * below) if bidirectional else (below,)
            if triples[0][0].shape[0] not in allowed:
                hint = ("" if bidirectional else "; a Bidirectional layer's weights (forward triple, then backward "
                        "triple) read as two stacked layers look like this: pass bidirectional=True")
                raise ValueError(f"layer {k}: a stacked layer's kernel must take the {' or '.join(map(str, allowed))} "
                                 f"outputs of layer {k - 1} (units {below}), got kernel {triples[0][0].shape}{hint}")
        if torch_stacking and layers and triples[0][1].shape != layers[0][0][1].shape:
            raise ValueError(f"layer {k}: torch.nn.LSTM has one hidden_size for every layer, but layer 0 has units "
                             f"{layers[0][0][1].shape[0]} and layer {k} has {triples[0][1].shape[0]}; use one nn.LSTM per layer")
        if torch_stacking and layers:
            below = len(triples) * layers[-1][0][1].shape[0]  # torch concatenates the directions of the layer below
            if triples[0][0].shape[0] != below:
                raise ValueError(f"layer {k}: torch.nn.LSTM feeds a stacked layer the concatenated output of the layer "
                                 f"below ({below} features), but its kernel has shape {triples[0][0].shape}; a "
                                 f"Bidirectional stack with merge_mode other than 'concat' has no nn.LSTM equivalent")
        layers.append(triples)
    return layers


# ------------------------------------------------------------------------------------- PyTorch

def keras_to_torch(weights, *, bidirectional: bool = True, as_torch: bool = False) -> dict:
    """A ``torch.nn.LSTM`` state dict from Keras recurrent weights (``model.get_weights()`` order).

    Args:
        weights: per layer ``[kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,)]``, twice
            (forward, backward) per layer when ``bidirectional``; no Dense head.
        bidirectional: the weights are ``Bidirectional(LSTM)`` layers (a torch LSTM with
            ``bidirectional=True``); False for plain LSTM layers.
        as_torch: return torch tensors (imports torch) instead of NumPy arrays.
    Returns:
        ``{"weight_ih_l0": (4U, D), "weight_hh_l0": (4U, U), "bias_ih_l0": (4U,),
        "bias_hh_l0": (4U,) zeros, ... "*_reverse" ...}`` for
        ``nn.LSTM(D, U, num_layers=len(layers), bidirectional=..., batch_first=True)``.
    Raises:
        ValueError: a wrong count of arrays, inconsistent shapes, or stacked layers
            whose input size is not the previous layer's concatenated output.
    """
    state = {}
    for k, triples in enumerate(_split_layers(weights, bidirectional, torch_stacking=True)):
        for suffix, (kernel, recurrent_kernel, bias) in zip(_DIRECTION_SUFFIX, triples):
            state[f"weight_ih_l{k}{suffix}"] = np.ascontiguousarray(kernel.T)            # (4U, D)
            state[f"weight_hh_l{k}{suffix}"] = np.ascontiguousarray(recurrent_kernel.T)  # (4U, U)
            state[f"bias_ih_l{k}{suffix}"] = bias.copy()
            state[f"bias_hh_l{k}{suffix}"] = np.zeros_like(bias)  # the whole Keras bias went into bias_ih
    if as_torch:
        import torch
        state = {key: torch.from_numpy(value) for key, value in state.items()}
    return state


def torch_to_keras(state_dict) -> list[np.ndarray]:
    """Keras recurrent weights (``get_weights()`` order) from a ``torch.nn.LSTM`` state dict.

    Direction and layer count are read off the keys: ``*_reverse`` keys mean a
    bidirectional LSTM, whose layers come back as forward triple then backward
    triple (Keras's ``Bidirectional`` order). ``bias = bias_ih + bias_hh``; an LSTM
    built with ``bias=False`` gives zero biases. Values may be NumPy arrays or tensors.
    """
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"state_dict must be a mapping of torch.nn.LSTM parameter names, got {type(state_dict).__name__}")
    keys = set(state_dict)
    if any(key.startswith("weight_hr") for key in keys):
        raise ValueError("state_dict has weight_hr_* keys: an LSTM with proj_size > 0 has no Keras equivalent")
    bidirectional = any(key.endswith("_reverse") for key in keys)
    num_layers = 0
    while f"weight_ih_l{num_layers}" in keys:
        num_layers += 1
    has_bias = "bias_ih_l0" in keys or "bias_hh_l0" in keys
    expected = {f"{role}_l{k}{suffix}" for k in range(num_layers) for suffix in _DIRECTION_SUFFIX[:1 + bidirectional]
                for role in (_TORCH_ROLES if has_bias else _TORCH_ROLES[:2])}
    if num_layers == 0 or keys != expected:
        missing, extra = sorted(expected - keys), sorted(keys - expected)
        raise ValueError(f"state_dict is not a torch.nn.LSTM state dict with {num_layers} layer(s), "
                         f"bidirectional={bidirectional}: missing {missing or 'nothing'}, unexpected {extra or 'nothing'}"
                         + ("" if num_layers else "; expected keys weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..."))
    weights, features = [], None
    for k in range(num_layers):
        for suffix in _DIRECTION_SUFFIX[:1 + bidirectional]:
            w_ih = _as_array(f"weight_ih_l{k}{suffix}", state_dict[f"weight_ih_l{k}{suffix}"])
            w_hh = _as_array(f"weight_hh_l{k}{suffix}", state_dict[f"weight_hh_l{k}{suffix}"])
            if has_bias:
                b_ih = _as_array(f"bias_ih_l{k}{suffix}", state_dict[f"bias_ih_l{k}{suffix}"])
                b_hh = _as_array(f"bias_hh_l{k}{suffix}", state_dict[f"bias_hh_l{k}{suffix}"])
                if b_ih.shape != b_hh.shape:
                    raise ValueError(f"bias_ih_l{k}{suffix} and bias_hh_l{k}{suffix} must have the same shape "
                                     f"(4*hidden_size,), got {b_ih.shape} and {b_hh.shape}")
                bias = b_ih + b_hh
            else:
                bias = np.zeros(w_hh.shape[:1], dtype=w_hh.dtype)
            if w_ih.ndim != 2 or w_hh.ndim != 2:
                raise ValueError(f"weight_ih_l{k}{suffix} and weight_hh_l{k}{suffix} must be matrices "
                                 f"(4*hidden_size, input_size) and (4*hidden_size, hidden_size), got {w_ih.shape} and {w_hh.shape}")
            weights += check_keras_triple(w_ih.T, w_hh.T, bias, name=f"layer {k}{suffix or ' forward'}", features=features)
        features = (1 + bidirectional) * weights[-2].shape[0]
    return [np.ascontiguousarray(w) for w in weights]


def keras_states_to_torch(states, *, bidirectional: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Keras initial states, layer after layer, as torch's ``(h_0, c_0)``, each (layers * dirs, B, U).

    ``states`` is ``[h_f, c_f, h_b, c_b]`` per Bidirectional layer (Keras's
    ``initial_state`` order) or ``[h, c]`` per LSTM layer, concatenated over layers;
    torch indexes its first axis by ``layer * dirs + direction``.
    """
    per_layer = 4 if bidirectional else 2
    if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)) or not states or len(states) % per_layer:
        got = f"{len(states)} arrays" if isinstance(states, (list, tuple)) else type(states).__name__
        order = "[h_f, c_f, h_b, c_b]" if bidirectional else "[h, c]"
        raise ValueError(f"states must be {order} per layer ({per_layer} arrays a layer), got {got}")
    states = [_as_array(f"states[{k}]", s) for k, s in enumerate(states)]
    if any(s.ndim != 2 or s.shape != states[0].shape for s in states):
        raise ValueError(f"every state must have the same shape (batch, units), got {[s.shape for s in states]}")
    h = np.stack(states[0::2])  # h_f, h_b of layer 0, then layer 1 ...: torch's layer * dirs + direction
    c = np.stack(states[1::2])
    return h, c


def torch_states_to_keras(h_n, c_n) -> list[np.ndarray]:
    """torch's ``(h_n, c_n)`` (layers * dirs, B, U) as Keras states, layer after layer.

    Per layer ``[h, c]`` for one direction, ``[h_f, c_f, h_b, c_b]`` for two (Keras's
    ``return_state`` order); the direction count is not in the arrays, so the
    result simply alternates h and c along torch's first axis.
    """
    h_n, c_n = _as_array("h_n", h_n), _as_array("c_n", c_n)
    if h_n.ndim != 3 or h_n.shape != c_n.shape:
        raise ValueError(f"h_n and c_n must have the same shape (num_layers * num_directions, batch, hidden_size), "
                         f"got {h_n.shape} and {c_n.shape}")
    return [a for k in range(h_n.shape[0]) for a in (h_n[k], c_n[k])]


# ----------------------------------------------------------------------------------------- ONNX

def _reorder_gates(matrix: np.ndarray, order, axis: int) -> np.ndarray:
    """Permute the four gate blocks of ``matrix`` along ``axis`` (length 4U)."""
    blocks = np.split(matrix, 4, axis=axis)
    return np.concatenate([blocks[g] for g in order], axis=axis)


def keras_to_onnx(weights, *, bidirectional: bool = True) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """ONNX ``LSTM`` inputs ``(W, R, B)``, one tuple per recurrent layer, from Keras weights.

    Returns, per layer, ``W [dirs, 4U, D]``, ``R [dirs, 4U, U]``, ``B [dirs, 8U]`` with
    gates in ONNX's order i, o, f, c; direction 0 is forward, 1 reverse
    (``direction="bidirectional"``); ``dirs`` is 1 when not ``bidirectional``.

    ``bidirectional`` must say what the weights are: read the wrong way, a
    Bidirectional layer's six arrays look like two stacked LSTM layers (and
    two stacked layers like one Bidirectional layer). Such a list is refused
    where the shapes tell (a stacked layer takes the outputs of the one below;
    both directions of a layer have the same shapes); when a layer's input size
    equals its units the two readings have the same shapes and cannot be told apart.
    """
    layers = []
    for triples in _split_layers(weights, bidirectional):
        W = np.stack([_reorder_gates(k, KERAS_TO_ONNX_GATES, axis=1).T for k, _, _ in triples])   # (dirs, 4U, D)
        R = np.stack([_reorder_gates(r, KERAS_TO_ONNX_GATES, axis=1).T for _, r, _ in triples])   # (dirs, 4U, U)
        B = np.stack([np.concatenate([_reorder_gates(b, KERAS_TO_ONNX_GATES, axis=0), np.zeros_like(b)])
                      for _, _, b in triples])                                                  # (dirs, 8U)
        layers.append((np.ascontiguousarray(W), np.ascontiguousarray(R), B))
    return layers


def onnx_to_keras(W, R, B=None) -> list[np.ndarray]:
    """Keras weights of one ONNX ``LSTM`` operator: a triple per direction, forward first.

    ``W [dirs, 4U, D]``, ``R [dirs, 4U, U]``, optional ``B [dirs, 8U]`` (zeros when
    absent); the Keras bias is ``Wb + Rb`` with the gates reordered to i, f, c, o.
    ONNX's peephole weights ``P`` have no Keras equivalent and are not taken.
    """
    W, R = _as_array("W", W), _as_array("R", R)
    if R.ndim != 3 or R.shape[0] not in (1, 2) or R.shape[1] != 4 * R.shape[2]:
        raise ValueError(f"R must have shape [num_directions (1 or 2), 4*hidden_size, hidden_size], got {R.shape}")
    dirs, U = R.shape[0], R.shape[2]
    if W.ndim != 3 or W.shape[:2] != (dirs, 4 * U):
        raise ValueError(f"W must have shape [{dirs}, {4 * U}, input_size] to match R {R.shape}, got {W.shape}")
    B = np.zeros((dirs, 8 * U), dtype=W.dtype) if B is None else _as_array("B", B)
    if B.shape != (dirs, 8 * U):
        raise ValueError(f"B must have shape [{dirs}, {8 * U}] (num_directions, 8*hidden_size) to match R {R.shape}, got {B.shape}")
    weights = []
    for d in range(dirs):
        weights += [_reorder_gates(W[d].T, ONNX_TO_KERAS_GATES, axis=1),           # (D, 4U)
                    _reorder_gates(R[d].T, ONNX_TO_KERAS_GATES, axis=1),           # (U, 4U)
                    _reorder_gates(B[d, :4 * U] + B[d, 4 * U:], ONNX_TO_KERAS_GATES, axis=0)]  # (4U,)
    return [np.ascontiguousarray(w) for w in weights]


# ------------------------------------------------------------------------------- whole models

def spec_recurrent_weights(spec, weights) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split a ``model.get_weights()`` list of ``spec`` into (recurrent weights, Dense head weights).

    The recurrent part is what ``keras_to_torch`` / ``keras_to_onnx`` take; the head is
    ``[dense_kernel (F, 1), dense_bias (1,)]``.
    """
    shapes = spec.weight_shapes()
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)) or len(weights) != len(shapes):
        got = f"{len(weights)} arrays" if isinstance(weights, (list, tuple)) else type(weights).__name__
        raise ValueError(f"weights must be the {len(shapes)} arrays of model.get_weights() for {spec.describe()}, got {got}")
    for k, (w, (role, shape)) in enumerate(zip(weights, spec.weight_roles())):
        if np.shape(w) != shape:
            raise ValueError(f"weights[{k}] ({role}) must have shape {shape} for {spec.describe()}, got {np.shape(w)}")
    return list(weights[:-2]), list(weights[-2:])
