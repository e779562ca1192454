"""Every weight-layout conversion of bilstm-lab, in one module: Keras <-> PyTorch, Keras <-> ONNX,
for each Keras recurrent cell (``cell="lstm" | "gru" | "simple_rnn"``).

Works on NumPy arrays and imports neither Keras nor torch at module level, so
the oracle side, the tests and a user without a deep-learning framework can
all use it. Arrays keep their dtype (float32 from Keras stays float32).

Keras (``get_weights()`` of one layer, one direction), G gate blocks of width U in columns:
    kernel            (D, G U)
    recurrent_kernel  (U, G U)
    bias              (G U,); a GRU with ``reset_after=True`` (its default): (2, 3U),
                      row 0 the input bias, row 1 the recurrent bias
    LSTM: G = 4, gates i, f, c, o.   GRU: G = 3, gates z, r, h.   SimpleRNN: G = 1.
A stack of recurrent layers lists them in ``model.get_weights()`` order:
``[kernel, recurrent_kernel, bias]`` per layer, and per Bidirectional layer
the forward triple then the backward triple. Layers without a bias
(``use_bias=False``) are not taken: give them zero biases.

PyTorch state dicts (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``), layer ``k``:
    weight_ih_l{k}  = kernel.T,           gate blocks in torch's order   (G U, D)
    weight_hh_l{k}  = recurrent_kernel.T, gate blocks in torch's order   (G U, U)
    bias_ih_l{k}, bias_hh_l{k}                                           (G U,) each
    ``*_reverse`` keys hold the backward direction (Keras's ``go_backwards`` copy).
  LSTM -> ``nn.LSTM``: Keras's gate order (torch's i, f, g, o).
  SimpleRNN -> ``nn.RNN``: one block; ``nonlinearity`` is the Keras activation
    (torch has "tanh" and "relu" only).
  LSTM and SimpleRNN have one bias where torch adds two: the whole Keras bias goes
    in ``bias_ih`` and zeros in ``bias_hh`` (any split computes the same thing);
    coming back the two are summed.
  GRU -> ``nn.GRU``: torch's gates are r, z, n (Keras's z, r, h with the first two
    swapped), and torch computes ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``:
    Keras's ``reset_after=True``, whose two bias rows are torch's two biases
    (``bias_ih = bias[0]``, ``bias_hh = bias[1]``, reordered), exact both ways.
    ``reset_after=False`` applies the reset gate before the recurrent matmul,
    ``(r * h) R_h``, which no ``nn.GRU`` computes: it is refused.

ONNX, one operator per layer (``LSTM``, ``GRU``, ``RNN``), inputs
    W  [dirs, G U, D]    = kernel.T, gate blocks in ONNX's order
    R  [dirs, G U, U]    = recurrent_kernel.T, reordered
    B  [dirs, 2 G U]     = [Wb | Rb], the input bias then the recurrent bias
  LSTM: gate order i, o, f, c; B = [Keras bias | zeros], back: Wb + Rb.
  GRU: gate order z, r, h (Keras's). ``linear_before_reset=1`` is Keras's
    ``reset_after=True``: B = [bias[0] | bias[1]], exact both ways;
    ``linear_before_reset=0`` (ONNX's default) is ``reset_after=False``:
    ``h = g(x W_h + (r * H) R_h + Wb_h + Rb_h)``, B = [bias | zeros], back: Wb + Rb.
  RNN: B = [bias | zeros], back: Wb + Rb; ``activations`` is the Keras activation
    (``["Tanh"]``, ONNX's default, or ``["Relu"]``; one per direction when bidirectional).

What the layouts do not change: torch's and ONNX's reverse direction returns
outputs in time order, Keras's ``go_backwards`` layer in processing order; a
Bidirectional layer flips them back, so ``concat`` merges agree with torch.
torch stacks bidirectional layers with ``concat`` only, one ``hidden_size`` for all.
"""
from __future__ import annotations

import numpy as np

from reference.vocabulary import CELLS

GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
TORCH_MODULES = {"lstm": "torch.nn.LSTM", "gru": "torch.nn.GRU", "simple_rnn": "torch.nn.RNN"}
ONNX_OPERATORS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
_KERAS_LAYERS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}

# Keras's gate blocks in each layout: block k of the converted matrix is Keras's block order[k].
KERAS_TO_ONNX_GATES = (0, 3, 1, 2)  # LSTM: Keras's i, f, c, o -> ONNX's i, o, f, c
ONNX_TO_KERAS_GATES = (0, 2, 3, 1)
_TORCH_ORDER = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "simple_rnn": (0,)}  # GRU: Keras z, r, h -> torch r, z, n
_ONNX_ORDER = {"lstm": KERAS_TO_ONNX_GATES, "gru": (0, 1, 2), "simple_rnn": (0,)}
_DIRECTION_SUFFIX = ("", "_reverse")
_TORCH_ROLES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# ---------------------------------------------------------------------------------------- checks

def _check_cell(cell, reset_after) -> str:
    """The cell's name, checked, and ``reset_after`` checked against it (the GRU's option only)."""
    if not isinstance(cell, str) or cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    if not isinstance(reset_after, (bool, np.bool_)):
        raise TypeError(f"reset_after must be True or False, got {reset_after!r}")
    if cell != "gru" and not reset_after:
        raise ValueError(f"reset_after applies to the gru cell only, got reset_after=False with cell={cell!r}")
    return cell


def _bias_shape(cell: str, units: int, reset_after: bool) -> tuple[int, ...]:
    return (2, 3 * units) if cell == "gru" and reset_after else (GATES[cell] * units,)


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


def check_keras_triple(kernel, recurrent_kernel, bias, *, name: str = "", features: int | None = None,
                       cell: str = "lstm", reset_after: bool = True):
    """Checked ``(kernel (D, G U), recurrent_kernel (U, G U), bias)`` of ``cell``; U read off the recurrent kernel."""
    cell = _check_cell(cell, reset_after)
    prefix = f"{name}: " if name else ""
    G = GATES[cell]
    kernel, recurrent_kernel, bias = (_as_array(f"{prefix}{n}", v) for n, v in
                                      (("kernel", kernel), ("recurrent_kernel", recurrent_kernel), ("bias", bias)))
    if recurrent_kernel.ndim != 2 or not recurrent_kernel.size or recurrent_kernel.shape[1] != G * recurrent_kernel.shape[0]:
        raise ValueError(f"{prefix}recurrent_kernel must have shape (units, {G}*units) with units >= 1, "
                         f"got {recurrent_kernel.shape} for cell={cell!r}{_other_cell_hint(recurrent_kernel.shape, cell)}")
    U = recurrent_kernel.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != G * U or (features is not None and kernel.shape[0] != features):
        expected = f"({'input_dim' if features is None else features}, {G * U})"
        raise ValueError(f"{prefix}kernel must have shape {expected} (input_dim, {G}*units) for units={U}, got {kernel.shape}")
    shape = _bias_shape(cell, U, reset_after)
    if bias.shape != shape:
        if cell == "gru" and bias.shape == _bias_shape(cell, U, not reset_after):  # the other form: name both
            raise ValueError(f"{prefix}bias of shape {bias.shape} is the GRU bias for reset_after={not reset_after}, "
                             f"but reset_after={reset_after} needs shape {shape}; pass the layer's reset_after")
        what = "(2, 3*units): input bias, recurrent bias" if len(shape) == 2 else f"({G}*units,)"
        raise ValueError(f"{prefix}bias must have shape {shape} {what} for units={U}, got {bias.shape}")
    return kernel, recurrent_kernel, bias


def _other_cell_hint(shape, cell: str) -> str:
    """'; ... is the recurrent kernel of a GRU: pass cell="gru"' where the shape fits another cell."""
    if len(shape) != 2 or not shape[0]:
        return ""
    for other, G in GATES.items():
        if other != cell and shape[1] == G * shape[0]:
            article = "an" if other == "lstm" else "a"
            return f"; (units, {G}*units) is the shape of {article} {_KERAS_LAYERS[other]}: pass cell={other!r}"
    return ""


def _split_layers(weights, bidirectional: bool, cell: str, reset_after: bool, *, torch_stacking: bool = False):
    """Keras's flat get_weights() list -> per layer, per direction, a checked triple.

    ``torch_stacking``: layer k > 0 must take ``dirs * U`` features, the concatenated
    output of the layer below, as torch's recurrent modules stack them.
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
    layer_name, module = _KERAS_LAYERS[cell], TORCH_MODULES[cell]
    layers = []
    for k in range(len(weights) // per_layer):
        triples = []
        for d in range(2 if bidirectional else 1):
            start = k * per_layer + 3 * d
            label = f"weights[{start}:{start + 3}] (layer {k}{', backward' if d else ''})"
            triples.append(check_keras_triple(*weights[start:start + 3], name=label, cell=cell, reset_after=reset_after))
        if triples[0][0].shape[0] != triples[-1][0].shape[0] or triples[0][1].shape != triples[-1][1].shape:
            raise ValueError(f"layer {k}: the two directions must have the same input size and units, got kernels "
                             f"{triples[0][0].shape} (forward) and {triples[1][0].shape} (backward); if these are "
                             f"stacked {layer_name} layers, not a Bidirectional layer, pass bidirectional=False")
        if layers:  # a stacked layer reads the layer below: its units (plain), or 1 or 2 times them (merged)
            below = layers[-1][0][1].shape[0]
            allowed = (below, 2 * below) if bidirectional else (below,)
            if triples[0][0].shape[0] not in allowed:
                hint = ("" if bidirectional else "; a Bidirectional layer's weights (forward triple, then backward "
                        "triple) read as two stacked layers look like this: pass bidirectional=True")
                raise ValueError(f"layer {k}: a stacked layer's kernel must take the {' or '.join(map(str, allowed))} "
                                 f"outputs of layer {k - 1} (units {below}), got kernel {triples[0][0].shape}{hint}")
        if torch_stacking and layers and triples[0][1].shape != layers[0][0][1].shape:
            raise ValueError(f"layer {k}: {module} has one hidden_size for every layer, but layer 0 has units "
                             f"{layers[0][0][1].shape[0]} and layer {k} has {triples[0][1].shape[0]}; use one "
                             f"{module} per layer")
        if torch_stacking and layers:
            below = len(triples) * layers[-1][0][1].shape[0]  # torch concatenates the directions of the layer below
            if triples[0][0].shape[0] != below:
                raise ValueError(f"layer {k}: {module} feeds a stacked layer the concatenated output of the layer "
                                 f"below ({below} features), but its kernel has shape {triples[0][0].shape}; a "
                                 f"Bidirectional stack with merge_mode other than 'concat' has no {module} equivalent")
        layers.append(triples)
    return layers


def _reorder_gates(array: np.ndarray, order, axis: int) -> np.ndarray:
    """Permute the ``len(order)`` gate blocks of ``array`` along ``axis``: block k of the result is block order[k]."""
    blocks = np.split(array, len(order), axis=axis)
    return np.concatenate([blocks[g] for g in order], axis=axis)


def _inverse(order) -> tuple[int, ...]:
    return tuple(int(k) for k in np.argsort(order))


def _bias_halves(cell: str, bias: np.ndarray, reset_after: bool) -> tuple[np.ndarray, np.ndarray]:
    """(input bias, recurrent bias), each (G U,): a GRU with reset_after keeps two, the others put zeros second."""
    if cell == "gru" and reset_after:
        return bias[0], bias[1]
    return bias, np.zeros_like(bias)


# ------------------------------------------------------------------------------------- PyTorch

def _refuse_gru_before_reset(cell: str, reset_after: bool) -> None:
    if cell == "gru" and not reset_after:
        raise ValueError("reset_after=False has no torch.nn.GRU equivalent: torch.nn.GRU applies the reset gate "
                         "after the recurrent matmul, r * (h W_hn + b_hn), which is Keras's reset_after=True; a "
                         "reset_after=False GRU applies it before, (r * h) R_h. Convert it to ONNX instead "
                         "(keras_to_onnx: a GRU operator with linear_before_reset=0)")


def keras_to_torch(weights, *, bidirectional: bool = True, cell: str = "lstm", reset_after: bool = True,
                   as_torch: bool = False) -> dict:
    """A ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` state dict from Keras recurrent weights (``model.get_weights()`` order).

    Args:
        weights: per layer ``[kernel (D, G U), recurrent_kernel (U, G U), bias]``, twice
            (forward, backward) per layer when ``bidirectional``; no Dense head.
        bidirectional: the weights are ``Bidirectional(<cell>)`` layers (a torch module with
            ``bidirectional=True``); False for plain layers.
        cell: "lstm" (``nn.LSTM``), "gru" (``nn.GRU``) or "simple_rnn" (``nn.RNN``, whose
            ``nonlinearity`` must be the layer's activation: "tanh" or "relu").
        reset_after: the GRU's option; False is refused (no ``nn.GRU`` computes it).
        as_torch: return torch tensors (imports torch) instead of NumPy arrays.
    Returns:
        ``{"weight_ih_l0": (G U, D), "weight_hh_l0": (G U, U), "bias_ih_l0": (G U,),
        "bias_hh_l0": (G U,), ... "*_reverse" ...}`` for
        ``nn.LSTM(D, U, num_layers=len(layers), bidirectional=..., batch_first=True)`` (or GRU, RNN);
        ``bias_hh`` is zeros but for the GRU, whose recurrent bias row it holds.
    Raises:
        ValueError: a GRU with reset_after=False, a wrong count of arrays, shapes that do not fit
            the cell, or stacked layers whose input size is not the previous layer's concatenated output.
    """
    cell = _check_cell(cell, reset_after)
    _refuse_gru_before_reset(cell, reset_after)
    order = _TORCH_ORDER[cell]
    state = {}
    for k, triples in enumerate(_split_layers(weights, bidirectional, cell, reset_after, torch_stacking=True)):
        for suffix, (kernel, recurrent_kernel, bias) in zip(_DIRECTION_SUFFIX, triples):
            input_bias, recurrent_bias = _bias_halves(cell, bias, reset_after)
            state[f"weight_ih_l{k}{suffix}"] = np.ascontiguousarray(_reorder_gates(kernel, order, axis=1).T)
            state[f"weight_hh_l{k}{suffix}"] = np.ascontiguousarray(_reorder_gates(recurrent_kernel, order, axis=1).T)
            state[f"bias_ih_l{k}{suffix}"] = _reorder_gates(input_bias, order, axis=0)
            state[f"bias_hh_l{k}{suffix}"] = _reorder_gates(recurrent_bias, order, axis=0)
    if as_torch:
        import torch
        state = {key: torch.from_numpy(value) for key, value in state.items()}
    return state


def torch_to_keras(state_dict, *, cell: str = "lstm") -> list[np.ndarray]:
    """Keras recurrent weights (``get_weights()`` order) from a ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` state dict.

    ``cell`` names the module ("lstm", "gru" for ``nn.GRU``, "simple_rnn" for ``nn.RNN``); a
    state dict whose shapes fit another cell is refused naming it. Direction and layer
    count are read off the keys: ``*_reverse`` keys mean a bidirectional module, whose
    layers come back as forward triple then backward triple (Keras's ``Bidirectional``
    order). LSTM and SimpleRNN: ``bias = bias_ih + bias_hh``; GRU: ``bias = [bias_ih,
    bias_hh]`` (reset_after=True's (2, 3U)). A module built with ``bias=False`` gives
    zero biases. Values may be NumPy arrays or tensors.
    """
    cell = _check_cell(cell, True)
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"state_dict must be a mapping of {TORCH_MODULES[cell]} parameter names, "
                        f"got {type(state_dict).__name__}")
    module, G, back = TORCH_MODULES[cell], GATES[cell], _inverse(_TORCH_ORDER[cell])
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
        raise ValueError(f"state_dict is not a {module} state dict with {num_layers} layer(s), "
                         f"bidirectional={bidirectional}: missing {missing or 'nothing'}, unexpected {extra or 'nothing'}"
                         + ("" if num_layers else "; expected keys weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..."))
    weights, features = [], None
    for k in range(num_layers):
        for suffix in _DIRECTION_SUFFIX[:1 + bidirectional]:
            w_ih = _as_array(f"weight_ih_l{k}{suffix}", state_dict[f"weight_ih_l{k}{suffix}"])
            w_hh = _as_array(f"weight_hh_l{k}{suffix}", state_dict[f"weight_hh_l{k}{suffix}"])
            if w_ih.ndim != 2 or w_hh.ndim != 2:
                raise ValueError(f"weight_ih_l{k}{suffix} and weight_hh_l{k}{suffix} must be matrices "
                                 f"({G}*hidden_size, input_size) and ({G}*hidden_size, hidden_size), "
                                 f"got {w_ih.shape} and {w_hh.shape}")
            if w_ih.shape[0] != w_hh.shape[0]:
                raise ValueError(f"weight_ih_l{k}{suffix} and weight_hh_l{k}{suffix} must have the same number of rows "
                                 f"({G}*hidden_size), got {w_ih.shape} and {w_hh.shape}")
            if not w_hh.size or w_hh.shape[0] != G * w_hh.shape[1]:
                raise ValueError(f"weight_hh_l{k}{suffix} must have shape ({G}*hidden_size, hidden_size) for a "
                                 f"{module}, got {w_hh.shape}{_other_cell_hint(w_hh.shape[::-1], cell)}")
            if has_bias:
                b_ih = _as_array(f"bias_ih_l{k}{suffix}", state_dict[f"bias_ih_l{k}{suffix}"])
                b_hh = _as_array(f"bias_hh_l{k}{suffix}", state_dict[f"bias_hh_l{k}{suffix}"])
                if b_ih.shape != b_hh.shape or b_ih.shape != w_hh.shape[:1]:
                    raise ValueError(f"bias_ih_l{k}{suffix} and bias_hh_l{k}{suffix} must both have shape "
                                     f"({G}*hidden_size,) = {w_hh.shape[:1]}, got {b_ih.shape} and {b_hh.shape}")
            else:
                b_ih = b_hh = np.zeros(w_hh.shape[:1], dtype=w_hh.dtype)
            b_ih, b_hh = _reorder_gates(b_ih, back, axis=0), _reorder_gates(b_hh, back, axis=0)
            bias = np.stack([b_ih, b_hh]) if cell == "gru" else b_ih + b_hh
            weights += check_keras_triple(_reorder_gates(w_ih.T, back, axis=1), _reorder_gates(w_hh.T, back, axis=1),
                                          bias, name=f"layer {k}{suffix or ' forward'}", features=features, cell=cell)
        features = (1 + bidirectional) * weights[-2].shape[0]
    return [np.ascontiguousarray(w) for w in weights]


def keras_states_to_torch(states, *, bidirectional: bool = True, cell: str = "lstm"):
    """Keras initial states, layer after layer, as torch's ``h_0`` (GRU, RNN) or ``(h_0, c_0)`` (LSTM).

    ``states`` is Keras's ``initial_state`` order, concatenated over layers: per
    Bidirectional layer ``[h_f, c_f, h_b, c_b]`` (LSTM) or ``[h_f, h_b]`` (GRU, SimpleRNN),
    per plain layer ``[h, c]`` or ``[h]``. Each result is (layers * dirs, B, U): torch
    indexes its first axis by ``layer * dirs + direction``.
    """
    cell = _check_cell(cell, True)
    if not isinstance(bidirectional, (bool, np.bool_)):
        raise TypeError(f"bidirectional must be True or False, got {bidirectional!r}")
    carried = 2 if cell == "lstm" else 1
    per_layer = carried * (2 if bidirectional else 1)
    if isinstance(states, np.ndarray) or not isinstance(states, (list, tuple)) or not states or len(states) % per_layer:
        got = f"{len(states)} arrays" if isinstance(states, (list, tuple)) else type(states).__name__
        names = ("h", "c")[:carried]
        order = [f"{n}_{d}" for d in "fb" for n in names] if bidirectional else list(names)
        raise ValueError(f"states must be [{', '.join(order)}] per layer ({per_layer} array{'s' * (per_layer > 1)} "
                         f"a layer), got {got} (cell={cell!r})")
    states = [_as_array(f"states[{k}]", s) for k, s in enumerate(states)]
    if any(s.ndim != 2 or s.shape != states[0].shape for s in states):
        raise ValueError(f"every state must have the same shape (batch, units), got {[s.shape for s in states]}")
    if cell != "lstm":
        return np.stack(states)
    h = np.stack(states[0::2])  # h_f, h_b of layer 0, then layer 1 ...: torch's layer * dirs + direction
    c = np.stack(states[1::2])
    return h, c


def torch_states_to_keras(h_n, c_n=None) -> list[np.ndarray]:
    """torch's final states (layers * dirs, B, U) as Keras states, layer after layer.

    LSTM (``h_n, c_n``): per layer ``[h, c]`` for one direction, ``[h_f, c_f, h_b, c_b]``
    for two (Keras's ``return_state`` order). GRU and RNN (``h_n`` alone, ``c_n=None``):
    ``[h]`` or ``[h_f, h_b]``. The direction count is not in the arrays, so the result
    simply follows torch's first axis.
    """
    h_n = _as_array("h_n", h_n)
    if c_n is None:
        if h_n.ndim != 3:
            raise ValueError(f"h_n must have shape (num_layers * num_directions, batch, hidden_size), got {h_n.shape}")
        return list(h_n)
    c_n = _as_array("c_n", c_n)
    if h_n.ndim != 3 or h_n.shape != c_n.shape:
        raise ValueError(f"h_n and c_n must have the same shape (num_layers * num_directions, batch, hidden_size), "
                         f"got {h_n.shape} and {c_n.shape}")
    return [a for k in range(h_n.shape[0]) for a in (h_n[k], c_n[k])]


# ----------------------------------------------------------------------------------------- ONNX

def keras_to_onnx(weights, *, bidirectional: bool = True, cell: str = "lstm",
                  reset_after: bool = True) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """ONNX ``LSTM`` / ``GRU`` / ``RNN`` inputs ``(W, R, B)``, one tuple per recurrent layer, from Keras weights.

    Returns, per layer, ``W [dirs, G U, D]``, ``R [dirs, G U, U]``, ``B [dirs, 2 G U]`` with
    gates in ONNX's order; direction 0 is forward, 1 reverse (``direction="bidirectional"``);
    ``dirs`` is 1 when not ``bidirectional``. For ``cell="gru"`` the node must have
    ``linear_before_reset=int(reset_after)``; for ``"simple_rnn"``, ``activations`` the
    layer's activation (``"Tanh"``, the default, or ``"Relu"``...).

    ``bidirectional`` must say what the weights are: read the wrong way, a
    Bidirectional layer's six arrays look like two stacked layers (and
    two stacked layers like one Bidirectional layer). Such a list is refused
    where the shapes tell (a stacked layer takes the outputs of the one below;
    both directions of a layer have the same shapes); when a layer's input size
    equals its units the two readings have the same shapes and cannot be told apart.
    """
    cell = _check_cell(cell, reset_after)
    order = _ONNX_ORDER[cell]
    layers = []
    for triples in _split_layers(weights, bidirectional, cell, reset_after):
        W = np.stack([_reorder_gates(k, order, axis=1).T for k, _, _ in triples])   # (dirs, G U, D)
        R = np.stack([_reorder_gates(r, order, axis=1).T for _, r, _ in triples])   # (dirs, G U, U)
        B = np.stack([np.concatenate([_reorder_gates(half, order, axis=0) for half in _bias_halves(cell, b, reset_after)])
                      for _, _, b in triples])                                      # (dirs, 2 G U)
        layers.append((np.ascontiguousarray(W), np.ascontiguousarray(R), B))
    return layers


def onnx_to_keras(W, R, B=None, *, cell: str = "lstm", linear_before_reset: int | None = None) -> list[np.ndarray]:
    """Keras weights of one ONNX ``LSTM`` / ``GRU`` / ``RNN`` operator: a triple per direction, forward first.

    ``W [dirs, G U, D]``, ``R [dirs, G U, U]``, optional ``B [dirs, 2 G U]`` (zeros when
    absent). ``cell="gru"`` needs the node's ``linear_before_reset`` (ONNX's default is 0):
    1 gives Keras's ``reset_after=True`` bias ``[Wb, Rb]`` (2, 3U), 0 gives ``reset_after=False``'s
    ``Wb + Rb`` (3U,); LSTM and RNN take none and give ``Wb + Rb``, gates reordered to Keras's.
    ONNX's LSTM peephole weights ``P`` have no Keras equivalent and are not taken.
    """
    cell = _check_cell(cell, True)
    if cell == "gru":
        if linear_before_reset is None:
            raise ValueError("linear_before_reset must be given for cell='gru': the GRU node's attribute, 0 when "
                             "the node has none (ONNX's default, Keras's reset_after=False) or 1 (Keras's reset_after=True)")
        if isinstance(linear_before_reset, (bool, np.bool_)) or linear_before_reset not in (0, 1):
            raise ValueError(f"linear_before_reset must be 0 or 1, got {linear_before_reset!r}")
    elif linear_before_reset is not None:
        raise ValueError(f"linear_before_reset is an attribute of the ONNX GRU only, got "
                         f"linear_before_reset={linear_before_reset!r} with cell={cell!r}")
    G, back = GATES[cell], _inverse(_ONNX_ORDER[cell])
    W, R = _as_array("W", W), _as_array("R", R)
    if R.ndim != 3 or R.shape[0] not in (1, 2) or not R.size or R.shape[1] != G * R.shape[2]:
        raise ValueError(f"R must have shape [num_directions (1 or 2), {G}*hidden_size, hidden_size], got {R.shape} "
                         f"for the ONNX {ONNX_OPERATORS[cell]} (cell={cell!r})")
    dirs, U = R.shape[0], R.shape[2]
    if W.ndim != 3 or W.shape[:2] != (dirs, G * U):
        raise ValueError(f"W must have shape [{dirs}, {G * U}, input_size] to match R {R.shape}, got {W.shape}")
    B = np.zeros((dirs, 2 * G * U), dtype=W.dtype) if B is None else _as_array("B", B)
    if B.shape != (dirs, 2 * G * U):
        raise ValueError(f"B must have shape [{dirs}, {2 * G * U}] (num_directions, {2 * G}*hidden_size) to match "
                         f"R {R.shape}, got {B.shape}")
    weights = []
    for d in range(dirs):
        input_bias, recurrent_bias = (_reorder_gates(half, back, axis=0) for half in np.split(B[d], 2))
        weights += [_reorder_gates(W[d].T, back, axis=1),           # (D, G U)
                    _reorder_gates(R[d].T, back, axis=1),           # (U, G U)
                    np.stack([input_bias, recurrent_bias]) if linear_before_reset else input_bias + recurrent_bias]
    return [np.ascontiguousarray(w) for w in weights]


# ------------------------------------------------------------------------------- whole models

def spec_recurrent_weights(spec, weights) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split a ``model.get_weights()`` list of ``spec`` into (recurrent weights, Dense head weights).

    The recurrent part is what ``keras_to_torch`` / ``keras_to_onnx`` take (with
    ``bidirectional=spec.bidirectional, cell=spec.cell, reset_after=spec.reset_after``); the
    head is ``[dense_kernel (F, 1), dense_bias (1,)]``.
    """
    shapes = spec.weight_shapes()
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)) or len(weights) != len(shapes):
        got = f"{len(weights)} arrays" if isinstance(weights, (list, tuple)) else type(weights).__name__
        raise ValueError(f"weights must be the {len(shapes)} arrays of model.get_weights() for {spec.describe()}, got {got}")
    for k, (w, (role, shape)) in enumerate(zip(weights, spec.weight_roles())):
        if np.shape(w) != shape:
            raise ValueError(f"weights[{k}] ({role}) must have shape {shape} for {spec.describe()}, got {np.shape(w)}")
    return list(weights[:-2]), list(weights[-2:])
