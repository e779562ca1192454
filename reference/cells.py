"""A Keras recurrent cell's options and weights: what a cell IS, not how it steps.

A ``Cell`` names the cell and its options, as Keras's layer takes them:

    Cell("lstm" | "gru" | "simple_rnn", activation="tanh", recurrent_activation="sigmoid",
         use_bias=True, reset_after=True)

Weights in Keras's layout (``layer.get_weights()`` order), G gates of width U, one
``CellWeights(kernel, recurrent_kernel, bias)`` a direction:

    cell        G   kernel (D, G U)   recurrent_kernel (U, G U)   bias
    lstm        4   i, f, c, o        i, f, c, o                  (4U,)
    gru         3   z, r, h           z, r, h                     (2, 3U) with reset_after (row 0 input,
                                                                  row 1 recurrent), (3U,) without
    simple_rnn  1                                                 (U,)

with ``bias`` None when ``use_bias=False``. Each cell's equations, ``step`` and
``step_grad`` are in its own module (``reference/lstm.py``, ``gru.py``, ``simple_rnn.py``);
the time loop and BPTT every cell shares in ``reference/rnn.py``. Activations by name:
``reference/activations.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._checks import as_float64, check_choice, check_flag
from .activations import CELL_ACTIVATIONS as ACTIVATIONS
from .vocabulary import CELLS

GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1}
STATE_NAMES = {"lstm": ("h", "c"), "gru": ("h",), "simple_rnn": ("h",)}
GATE_NAMES = {"lstm": "i, f, c, o", "gru": "z, r, h", "simple_rnn": "one block"}


class CellWeights(NamedTuple):
    """One direction's weights in Keras's layout; ``bias`` None for ``use_bias=False``."""
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None

    @classmethod
    def of(cls, weights) -> "CellWeights":
        """A layer's ``get_weights()`` (two arrays without a bias, three with one) as a triple."""
        return cls(*weights) if len(weights) == 3 else cls(*weights, None)


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
        """The LSTM with Keras's default options (tanh, sigmoid, a bias): the one ``reference/lstm_fused.py``
        serves (``reference.rnn.run`` chooses it), and the one Keras may hand to cuDNN."""
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


def check_cell_weights(cell: Cell, kernel, recurrent_kernel, bias, *, features=None, prefix="") -> CellWeights:
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
        return CellWeights(kernel, recurrent_kernel, None)
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
    return CellWeights(kernel, recurrent_kernel, bias)


def split_bias(cell: Cell, bias):
    """``(input bias, recurrent bias)``: the GRU with reset_after keeps two (gru.py L186-194), the others one."""
    if bias is None:
        return None, None
    if cell.kind == "gru" and cell.reset_after:
        return bias[0], bias[1]
    return bias, None
