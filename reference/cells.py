"""Every Keras 3.15.1 recurrent cell, one time loop and one BPTT loop for them all (NumPy, float64).

A ``Cell`` names the cell and its options, as Keras's layer takes them:

    Cell("lstm" | "gru" | "simple_rnn", activation="tanh", recurrent_activation="sigmoid",
         use_bias=True, reset_after=True)

Weights in Keras's layout (``layer.get_weights()`` order), G gates of width U:

    cell        G   kernel (D, G U)   recurrent_kernel (U, G U)   bias
    lstm        4   i, f, c, o        i, f, c, o                  (4U,)
    gru         3   z, r, h           z, r, h                     (2, 3U) with reset_after (row 0 input,
                                                                  row 1 recurrent), (3U,) without
    simple_rnn  1                                                 (U,)

with no bias array when ``use_bias=False``. The step equations, as Keras's cells
compute them (``implementation=2``, the default of LSTM and GRU), with
``act`` = activation and ``ract`` = recurrent_activation:

LSTM (keras/src/layers/rnn/lstm.py L277-287 and L221-228)::

    a = x_t W + h R + b;  i, f, o = ract(a_i), ract(a_f), ract(a_o);  g = act(a_g)
    c' = f c + i g;       h' = o act(c')

GRU (keras/src/layers/rnn/gru.py L186-194 split the bias, L257-294 the step)::

    reset_after=True:   xp = x_t W + b_in;   hp = h R + b_rec
                        z = ract(xp_z + hp_z);  r = ract(xp_r + hp_r)
                        hh = act(xp_h + r * hp_h)
    reset_after=False:  xp = x_t W + b;      z = ract(xp_z + h R_z);  r = ract(xp_r + h R_r)
                        hh = act(xp_h + (r * h) R_h)
                        h' = z h + (1 - z) hh        (both forms, L292)

SimpleRNN (keras/src/layers/rnn/simple_rnn.py L154-172)::

    h' = act(x_t W + b + h R)

Activations (``ACTIVATIONS``): tanh; sigmoid, the true logistic; Keras 3's
hard_sigmoid, ``clip(a / 6 + 1/2, 0, 1)`` (keras/src/activations/activations.py
L518-537 -> ops.hard_sigmoid; keras/src/backend/numpy/nn.py L115-122; NOT Keras 2's
``0.2 a + 0.5``); relu, ``max(a, 0)``; linear, ``a``.

Masking, ``go_backwards`` and the previous-output convention (``initial_output``)
are the LSTM's (``reference/lstm.py``): they belong to Keras's RNN loop, not the
cell. Every cell outputs its first state h.

``reference.recurrent.run_cell`` sends the LSTM with its default options (tanh, sigmoid,
a bias) to ``run_lstm``'s fast loop (and ``reference.backward.cell_backward`` to
``lstm_backward``); every other cell goes through ``run_generic`` / ``generic_backward`` below, one step function (and its
derivative) per cell. The generic LSTM step is the same equations, so a test
holds the two paths against each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._checks import as_float64, as_mask, check_choice, check_flag
from ._loop import check_initial_output, check_input, check_states, sigmoid, state_outputs

CELLS = ("lstm", "gru", "simple_rnn")
ACTIVATIONS = ("tanh", "sigmoid", "hard_sigmoid", "relu", "linear")
GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
STATE_NAMES = {"lstm": ("h", "c"), "gru": ("h",), "simple_rnn": ("h",)}
GATE_NAMES = {"lstm": "i, f, c, o", "gru": "z, r, h", "simple_rnn": "one block"}


def activate(name: str, a: np.ndarray) -> np.ndarray:
    """``name``'s activation of the pre-activation ``a`` (module docstring)."""
    if name == "tanh":
        return np.tanh(a)
    if name == "sigmoid":
        return sigmoid(a)
    if name == "hard_sigmoid":
        return np.clip(a / 6.0 + 0.5, 0.0, 1.0)
    if name == "relu":
        return np.maximum(a, 0.0)
    return a.copy()  # linear


def activation_grad(name: str, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d act(a) / d a, from the pre-activation ``a`` and the activation ``y = act(a)``.

    hard_sigmoid and relu take the derivative of their linear piece inside it and 0
    outside (and at the corners a = -3, 3, 0, which random inputs never hit).
    """
    if name == "tanh":
        return 1.0 - y * y
    if name == "sigmoid":
        return y * (1.0 - y)
    if name == "hard_sigmoid":
        return np.where(np.abs(a) < 3.0, 1.0 / 6.0, 0.0)
    if name == "relu":
        return (a > 0.0).astype(a.dtype)
    return np.ones_like(a)  # linear


def _check_activation(name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {ACTIVATIONS} (a name), got {type(value).__name__}")
    check_choice(name, value, ACTIVATIONS)
    return value


@dataclass(frozen=True)
class Cell:
    """A Keras recurrent cell and its options (module docstring); every option checked on creation."""
    kind: str = "lstm"
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    reset_after: bool = True

    def __post_init__(self):
        if not isinstance(self.kind, str):
            raise TypeError(f"cell must be one of {CELLS}, got {type(self.kind).__name__}")
        check_choice("cell", self.kind, CELLS)
        _check_activation("activation", self.activation)
        _check_activation("recurrent_activation", self.recurrent_activation)
        object.__setattr__(self, "use_bias", check_flag("use_bias", self.use_bias))
        object.__setattr__(self, "reset_after", check_flag("reset_after", self.reset_after))
        if self.kind == "simple_rnn" and self.recurrent_activation != "sigmoid":
            raise ValueError(f"recurrent_activation applies to the lstm and gru cells only (SimpleRNN has none), "
                             f"got recurrent_activation={self.recurrent_activation!r} with cell='simple_rnn'")
        if self.kind != "gru" and not self.reset_after:
            raise ValueError(f"reset_after applies to the gru cell only, got reset_after=False with cell={self.kind!r}")

    @property
    def gates(self) -> int:
        return GATES[self.kind]

    @property
    def state_names(self) -> tuple[str, ...]:
        return STATE_NAMES[self.kind]

    @property
    def fast_lstm(self) -> bool:
        """The LSTM with Keras's default options: ``run_lstm``'s fast loop serves it."""
        return (self.kind == "lstm" and self.activation == "tanh" and self.recurrent_activation == "sigmoid"
                and self.use_bias)

    def bias_shape(self, units: int) -> tuple[int, ...]:
        if self.kind == "gru" and self.reset_after:
            return (2, 3 * units)
        return (self.gates * units,)

    def weight_roles(self, features: int, units: int) -> list[tuple[str, tuple[int, ...]]]:
        """``(role, shape)`` of the layer's ``get_weights()``: kernel, recurrent_kernel[, bias]."""
        g = self.gates * units
        roles = [("kernel", (features, g)), ("recurrent_kernel", (units, g))]
        return roles + [("bias", self.bias_shape(units))] if self.use_bias else roles

    @property
    def weight_count(self) -> int:
        return 3 if self.use_bias else 2

    def layer_name(self) -> str:
        """Keras's class name: LSTM, GRU, SimpleRNN."""
        return {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}[self.kind]

    def options(self) -> str:
        """The non-default options, for descriptions ("" for Keras's defaults)."""
        parts = []
        if self.activation != "tanh":
            parts.append(f"activation={self.activation}")
        if self.recurrent_activation != "sigmoid":
            parts.append(f"recurrent_activation={self.recurrent_activation}")
        if not self.use_bias:
            parts.append("use_bias=False")
        if not self.reset_after:
            parts.append("reset_after=False")
        return ",".join(parts)


LSTM = Cell()


def as_cell(cell) -> Cell:
    """A ``Cell``, or a cell name with Keras's default options."""
    if isinstance(cell, Cell):
        return cell
    return Cell(cell)


def check_cell_weights(cell: Cell, kernel, recurrent_kernel, bias, *, features=None, prefix=""):
    """Checked float64 ``(kernel, recurrent_kernel, bias)`` (bias None for ``use_bias=False``); U from the recurrent kernel."""
    G = cell.gates
    recurrent_kernel = as_float64(f"{prefix}recurrent_kernel", recurrent_kernel, ndim=2)
    U = recurrent_kernel.shape[0]
    if U == 0 or recurrent_kernel.shape != (U, G * U):
        raise ValueError(f"{prefix}recurrent_kernel must have shape (units, {G}*units) with units >= 1 for the "
                         f"{cell.kind} cell, got {recurrent_kernel.shape}")
    kernel = as_float64(f"{prefix}kernel", kernel, ndim=2)
    expected = (kernel.shape[0] if features is None else features, G * U)
    if kernel.shape != expected:  # name both sides: the x features and the units it was checked against
        raise ValueError(f"{prefix}kernel must have shape {expected} = (features, {G}*units) for x with "
                         f"{expected[0]} features and units={U}, got {kernel.shape}")
    if not cell.use_bias:
        if bias is not None:
            raise ValueError(f"{prefix}bias must be None for use_bias=False, got {type(bias).__name__} "
                             f"of shape {np.shape(bias)}")
        return kernel, recurrent_kernel, None
    if bias is None:
        raise TypeError(f"{prefix}bias must be an array of shape {cell.bias_shape(U)}, got None "
                        f"(None means use_bias=False, which this call did not ask for)")
    if cell.kind == "gru":
        shape, other = cell.bias_shape(U), Cell("gru", reset_after=not cell.reset_after).bias_shape(U)
        if np.shape(bias) == other:  # the other form: say which option each shape belongs to
            raise ValueError(f"{prefix}bias of shape {other} is the GRU bias for reset_after={not cell.reset_after}, "
                             f"but reset_after={cell.reset_after} needs shape {shape}"
                             + (" (row 0 the input bias, row 1 the recurrent bias)" if cell.reset_after else ""))
    bias = as_float64(f"{prefix}bias", bias, shape=cell.bias_shape(U))
    return kernel, recurrent_kernel, bias


def split_bias(cell: Cell, bias):
    """``(input bias, recurrent bias)``: the GRU with reset_after keeps two (gru.py L186-194), the others one."""
    if bias is None:
        return None, None
    if cell.kind == "gru" and cell.reset_after:
        return bias[0], bias[1]
    return bias, None


# ---------------------------------------------------------------- one step of each cell, and its derivative
# A step takes the input half ``xp = x_t W + b_in`` (B, G U), the states entering the step and the
# recurrent weights; it returns the states leaving it and a record of what its derivative needs.
# A step's derivative takes that record and the gradients of the states it returned (already
# multiplied by the step's mask) and returns (dxp (B, G U), dR (U, G U), d b_rec or None, d states in).

def _lstm_step(cell, xp, states, R, b_rec):
    h, c = states
    U = h.shape[-1]
    a = xp + h @ R  # (B, 4U); the bias is in xp
    i = activate(cell.recurrent_activation, a[:, :U])
    f = activate(cell.recurrent_activation, a[:, U:2 * U])
    g = activate(cell.activation, a[:, 2 * U:3 * U])
    o = activate(cell.recurrent_activation, a[:, 3 * U:])
    c_new = f * c + i * g
    act_c = activate(cell.activation, c_new)
    h_new = o * act_c
    return (h_new, c_new), dict(h=h, c=c, a=a, i=i, f=f, g=g, o=o, c_new=c_new, act_c=act_c)


def _lstm_step_grad(cell, rec, d_states, R):
    dh, dc = d_states
    U = dh.shape[-1]
    a, ra, act = rec["a"], cell.recurrent_activation, cell.activation
    dc = dc + dh * rec["o"] * activation_grad(act, rec["c_new"], rec["act_c"])
    da = np.concatenate([
        dc * rec["g"] * activation_grad(ra, a[:, :U], rec["i"]),                 # i
        dc * rec["c"] * activation_grad(ra, a[:, U:2 * U], rec["f"]),            # f
        dc * rec["i"] * activation_grad(act, a[:, 2 * U:3 * U], rec["g"]),       # g
        dh * rec["act_c"] * activation_grad(ra, a[:, 3 * U:], rec["o"]),         # o
    ], axis=1)
    return da, rec["h"].T @ da, None, (da @ R.T, dc * rec["f"])


def _gru_step(cell, xp, states, R, b_rec):
    (h,) = states
    U = h.shape[-1]
    ra, act = cell.recurrent_activation, cell.activation
    if cell.reset_after:
        hp = h @ R if b_rec is None else h @ R + b_rec  # (B, 3U)
        a_z, a_r = xp[:, :U] + hp[:, :U], xp[:, U:2 * U] + hp[:, U:2 * U]
        z, r = activate(ra, a_z), activate(ra, a_r)
        rh = None
        a_h = xp[:, 2 * U:] + r * hp[:, 2 * U:]
    else:
        hp = h @ R[:, :2 * U]
        a_z, a_r = xp[:, :U] + hp[:, :U], xp[:, U:2 * U] + hp[:, U:]
        z, r = activate(ra, a_z), activate(ra, a_r)
        rh = r * h
        a_h = xp[:, 2 * U:] + rh @ R[:, 2 * U:]
    hh = activate(act, a_h)
    h_new = z * h + (1 - z) * hh
    return (h_new,), dict(h=h, hp=hp, a_z=a_z, a_r=a_r, z=z, r=r, rh=rh, a_h=a_h, hh=hh)


def _gru_step_grad(cell, rec, d_states, R):
    (dh,) = d_states
    U = dh.shape[-1]
    ra, act = cell.recurrent_activation, cell.activation
    h, z, r = rec["h"], rec["z"], rec["r"]
    dz = dh * (h - rec["hh"])
    da_h = dh * (1 - z) * activation_grad(act, rec["a_h"], rec["hh"])
    dh_prev = dh * z
    if cell.reset_after:
        dr = da_h * rec["hp"][:, 2 * U:]
        da_z, da_r = dz * activation_grad(ra, rec["a_z"], z), dr * activation_grad(ra, rec["a_r"], r)
        dhp = np.concatenate([da_z, da_r, da_h * r], axis=1)  # by hp = h R + b_rec
        dR, db_rec = h.T @ dhp, dhp.sum(axis=0)
        dh_prev = dh_prev + dhp @ R.T
    else:
        R_h = R[:, 2 * U:]
        d_rh = da_h @ R_h.T
        dh_prev = dh_prev + d_rh * r
        dr = d_rh * h
        da_z, da_r = dz * activation_grad(ra, rec["a_z"], z), dr * activation_grad(ra, rec["a_r"], r)
        dzr = np.concatenate([da_z, da_r], axis=1)
        dR, db_rec = np.concatenate([h.T @ dzr, rec["rh"].T @ da_h], axis=1), None
        dh_prev = dh_prev + dzr @ R[:, :2 * U].T
    return np.concatenate([da_z, da_r, da_h], axis=1), dR, db_rec, (dh_prev,)


def _simple_rnn_step(cell, xp, states, R, b_rec):
    (h,) = states
    a = xp + h @ R
    h_new = activate(cell.activation, a)
    return (h_new,), dict(h=h, a=a, h_new=h_new)


def _simple_rnn_step_grad(cell, rec, d_states, R):
    (dh,) = d_states
    da = dh * activation_grad(cell.activation, rec["a"], rec["h_new"])
    return da, rec["h"].T @ da, None, (da @ R.T,)


_STEPS = {"lstm": (_lstm_step, _lstm_step_grad), "gru": (_gru_step, _gru_step_grad),
          "simple_rnn": (_simple_rnn_step, _simple_rnn_step_grad)}


def cell_step(cell: Cell, x_t, states, kernel, recurrent_kernel, bias):
    """One step of ``cell`` (no mask): ``states`` in, states out, as a tuple in ``cell.state_names`` order."""
    b_in, b_rec = split_bias(cell, bias)
    xp = x_t @ kernel if b_in is None else x_t @ kernel + b_in
    new_states, _ = _STEPS[cell.kind][0](cell, xp, tuple(states), recurrent_kernel, b_rec)
    return new_states


# ---------------------------------------------------------------- the loops

@dataclass
class CellCache:
    """What the generic loop keeps for BPTT: inputs in processing order and one record a step."""
    cell: Cell
    x: np.ndarray                 # (B, T, D), flipped for go_backwards
    mask: np.ndarray | None       # (B, T), flipped likewise
    go_backwards: bool
    zero_output_for_mask: bool
    initial_output: str
    steps: list = field(default_factory=list)


def run_generic(cell, x, kernel, recurrent_kernel, bias, states, mask, go_backwards, zero_output_for_mask,
                initial_output, keep_cache):
    """The time loop for any cell on checked arrays, one ``cell_step`` a step (``reference.recurrent.run_cell``
    sends the default LSTM to ``run_lstm`` instead). Returns ``(outputs (B, T, U), final states, CellCache)``."""
    if go_backwards:  # the same loop for both directions: flip, run, leave the order to the caller
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    B, T, _ = x.shape
    b_in, b_rec = split_bias(cell, bias)
    xp = x @ kernel if b_in is None else x @ kernel + b_in  # (B, T, G U): the input half of every step at once
    step = _STEPS[cell.kind][0]
    cache = CellCache(cell, x, mask, go_backwards, zero_output_for_mask, initial_output) if keep_cache else None
    carried = np.empty((T,) + states[0].shape)  # h leaving each step (the carried one at masked steps)
    for t in range(T):
        new_states, record = step(cell, xp[:, t], states, recurrent_kernel, b_rec)
        if mask is not None:  # a masked row keeps its states (Keras's RNN loop, not the cell)
            m = mask[:, t, None]
            new_states = tuple(np.where(m, new, old) for new, old in zip(new_states, states))
        if keep_cache:
            cache.steps.append(record)
        states = new_states
        carried[t] = states[0]
    shown = state_outputs(mask, zero_output_for_mask, initial_output)  # (B, T) or None: reference/lstm.py
    outputs = carried if shown is None else np.where(shown.T[..., None], carried, 0.0)
    return outputs.transpose(1, 0, 2), states, cache


def generic_backward(cache: CellCache, kernel, recurrent_kernel, dout):
    """BPTT through one ``run_generic`` call: ``(grads, dx)`` as ``reference.backward.cell_backward``.

    The masked-loop rules of ``reference/backward.py`` around each cell's step derivative:

        d states += (dout_t on h, times the output's 0/1 factor);  d states' = m d states
        d states in = step derivative(d states') + (1 - m) d states
    """
    cell, steps, mask = cache.cell, cache.steps, cache.mask
    T = len(steps)
    dout = dout.transpose(1, 0, 2)  # (T, B, U), processing order
    shown = state_outputs(mask, cache.zero_output_for_mask, cache.initial_output)
    if shown is not None:
        dout = dout * shown.T[..., None]  # no gradient reaches an output that is the constant 0
    m_all = None if mask is None else mask.T[..., None].astype(dout.dtype)  # (T, B, 1)
    step_grad = _STEPS[cell.kind][1]
    d_states = tuple(np.zeros_like(s) for s in (steps[0]["h"], steps[0].get("c")) if s is not None)
    dxp = np.empty((T,) + dout.shape[1:2] + (kernel.shape[1],))  # (T, B, G U)
    d_recurrent = np.zeros_like(recurrent_kernel)
    d_rec_bias = None
    for t in range(T - 1, -1, -1):
        d_states = (d_states[0] + dout[t],) + d_states[1:]
        d_in = d_states if m_all is None else tuple(m_all[t] * d for d in d_states)
        dxp[t], dR, db_rec, d_prev = step_grad(cell, steps[t], d_in, recurrent_kernel)
        d_recurrent += dR
        if db_rec is not None:
            d_rec_bias = db_rec if d_rec_bias is None else d_rec_bias + db_rec
        if m_all is not None:  # a masked row passes its state gradients straight through
            d_prev = tuple(p + (1.0 - m_all[t]) * d for p, d in zip(d_prev, d_states))
        d_states = d_prev
    flat = dxp.reshape(T * dxp.shape[1], -1)
    x = cache.x.transpose(1, 0, 2).reshape(flat.shape[0], -1)  # (T B, D), rows in dxp's order
    grads = [x.T @ flat, d_recurrent]
    if cell.use_bias:
        d_in_bias = flat.sum(axis=0)
        grads.append(np.stack([d_in_bias, d_rec_bias]) if cell.kind == "gru" and cell.reset_after else d_in_bias)
    dx = (dxp @ kernel.T).transpose(1, 0, 2)  # (B, T, D), processing order
    if cache.go_backwards:
        dx = dx[:, ::-1]
    return grads, dx


# ---------------------------------------------------------------- the public layer call, every cell

def layer_forward(cell: Cell, x, kernel, recurrent_kernel, bias, *, initial_state, mask, go_backwards,
                  return_sequences, return_state, zero_output_for_mask, initial_output):
    """Keras's ``<Cell layer>(U, ...)(x, initial_state=..., mask=...)``: checks every argument, then runs.

    Returns the output ((B, T, U) or (B, U)), with ``return_state`` followed by the final states.
    """
    go_backwards, return_sequences, return_state, zero_output_for_mask = (
        check_flag(n, v) for n, v in (("go_backwards", go_backwards), ("return_sequences", return_sequences),
                                      ("return_state", return_state), ("zero_output_for_mask", zero_output_for_mask)))
    check_initial_output(initial_output)
    x = check_input(x)
    B, T, D = x.shape
    weights = check_cell_weights(cell, kernel, recurrent_kernel, bias, features=D)
    states = check_states(initial_state, len(cell.state_names), B, weights[1].shape[0], cell.state_names)
    mask = as_mask(mask, B, T)
    outputs, final, _ = run_generic(cell, x, *weights, tuple(states), mask, go_backwards, zero_output_for_mask,
                                    initial_output, keep_cache=False)  # every call of the default LSTM takes run_lstm
    output = outputs if return_sequences else outputs[:, -1]
    return (output, *final) if return_state else output
