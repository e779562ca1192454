"""One frozen description of a model, read by the oracle and the Keras builder alike.

The defaults are the tutorial's Bidirectional model:

    Input (10, 1) -> Bidirectional(LSTM(20, return_sequences=True), "concat")
                  -> TimeDistributed(Dense(1, sigmoid))

Every recurrent layer returns sequences (the head predicts at every timestep);
``units=(20, 20)`` stacks two recurrent layers of the same direction and merge
mode. ``mask_value`` puts a ``Masking(mask_value)`` layer in front, for
zero-padded variable-length sequences.

``cell`` picks the recurrent layer: "lstm" (the default), "gru" or
"simple_rnn", with Keras's options ``activation``, ``recurrent_activation``
(lstm and gru), ``use_bias`` and ``reset_after`` (gru) (``reference/cells.py``).
Options left at their defaults stay out of ``repr``, so an LSTM spec reads (and
compares in saved results) as it did before the other cells existed.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from ._checks import check_choice, check_positive_int
from .cells import Cell
from .vocabulary import DIRECTIONS, MERGE_MODES

# A model's merge modes: Bidirectional's without ``None`` (a pair of tensors, which a Dense head cannot
# take), which reference.vocabulary.MERGE_MODES already leaves out. The name is kept for its callers.
MODEL_MERGE_MODES = MERGE_MODES


_CELL_DEFAULTS = {"cell": "lstm", "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                  "reset_after": True}


@dataclass(frozen=True, repr=False)
class ModelSpec:
    timesteps: int = 10
    features: int = 1
    units: int | tuple[int, ...] = 20
    direction: str = "bidirectional"
    merge_mode: str = "concat"
    mask_value: float | None = None
    cell: str = "lstm"
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    reset_after: bool = True
    cell_config: Cell = field(init=False, repr=False, compare=False)
    layer_units: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        check_positive_int("timesteps", self.timesteps)
        check_positive_int("features", self.features)
        units = (self.units,) if isinstance(self.units, (int, np.integer)) and not isinstance(self.units, bool) else self.units
        if not isinstance(units, tuple) or not units:
            raise ValueError(f"units must be a positive integer or a non-empty tuple of them, got {self.units!r}")
        for k, u in enumerate(units):
            check_positive_int(f"units[{k}]", u)
        object.__setattr__(self, "units", units[0] if len(units) == 1 else tuple(int(u) for u in units))
        object.__setattr__(self, "layer_units", tuple(int(u) for u in units))
        check_choice("direction", self.direction, DIRECTIONS)
        if self.direction == "bidirectional":
            check_choice("merge_mode", self.merge_mode, MODEL_MERGE_MODES)
        if self.mask_value is not None:
            if isinstance(self.mask_value, (bool, np.bool_)) or not isinstance(self.mask_value, numbers.Real):
                raise TypeError(f"mask_value must be a finite number or None, got {self.mask_value!r}")
            if not np.isfinite(self.mask_value):  # x != nan is always True: a NaN mask value would mask nothing
                raise ValueError(f"mask_value must be a finite number or None, got {self.mask_value!r}")
            if not isinstance(self.mask_value, (int, float)):  # a NumPy scalar: a plain float for Keras configs
                object.__setattr__(self, "mask_value", float(self.mask_value))
        cell = Cell(self.cell, activation=self.activation, recurrent_activation=self.recurrent_activation,
                    use_bias=self.use_bias, reset_after=self.reset_after)  # checks every cell option
        object.__setattr__(self, "cell_config", cell)
        object.__setattr__(self, "use_bias", cell.use_bias)
        object.__setattr__(self, "reset_after", cell.reset_after)

    def __repr__(self) -> str:
        fields = [f"{name}={getattr(self, name)!r}" for name in
                  ("timesteps", "features", "units", "direction", "merge_mode", "mask_value")]
        fields += [f"{name}={getattr(self, name)!r}" for name, default in _CELL_DEFAULTS.items()
                   if getattr(self, name) != default]
        return f"ModelSpec({', '.join(fields)})"

    @property
    def bidirectional(self) -> bool:
        return self.direction == "bidirectional"

    @property
    def num_layers(self) -> int:
        return len(self.layer_units)

    def layer_output_features(self, units: int) -> int:
        """Features a recurrent layer of ``units`` hands to the next layer."""
        return 2 * units if self.bidirectional and self.merge_mode == "concat" else units

    def weight_roles(self) -> list[tuple[str, tuple[int, ...]]]:
        """``(role, shape)`` for each array, in Keras's ``model.get_weights()`` order.

        Per recurrent layer: ``kernel`` (D, G U), ``recurrent_kernel`` (U, G U),
        ``bias`` ((G U,); (2, 3U) for a GRU with reset_after; none without use_bias),
        G = 4, 3, 1 for lstm, gru, simple_rnn, twice (forward, then backward) for a
        Bidirectional layer; then the head's ``dense_kernel`` (F, 1) and ``dense_bias`` (1,).
        """
        roles, d = [], self.features
        for u in self.layer_units:
            for _ in range(2 if self.bidirectional else 1):
                roles += self.cell_config.weight_roles(d, u)
            d = self.layer_output_features(u)
        return roles + [("dense_kernel", (d, 1)), ("dense_bias", (1,))]

    def weight_shapes(self) -> list[tuple[int, ...]]:
        return [shape for _, shape in self.weight_roles()]

    def describe(self) -> str:
        name = self.cell_config.layer_name()
        kind = {"forward": name, "backward": f"{name}(go_backwards)", "bidirectional": f"Bi{name}[{self.merge_mode}]"}[self.direction]
        units = "x".join(str(u) for u in self.layer_units)
        mask = "" if self.mask_value is None else f" mask={self.mask_value}"
        options = self.cell_config.options()
        return f"{kind} T={self.timesteps} D={self.features} U={units}{mask}" + (f" {options}" if options else "")


def random_arrays(shapes, rng: np.random.Generator, scale: float = 0.5) -> list[np.ndarray]:
    """The project's one recipe for test weights: random, non-zero, non-symmetric, one array per shape.

    Uniform in [-scale, scale) shifted 0.05 away from zero, so no unit or gate is a copy
    of another and a wrong gate order, a dropped bias or a transposed kernel shows.
    """
    out = []
    for shape in shapes:
        w = rng.uniform(-scale, scale, size=shape)
        w += np.where(w >= 0, 0.05, -0.05)  # keep every entry away from exactly zero
        out.append(w)
    return out


def random_weights(spec: ModelSpec, rng: np.random.Generator, scale: float = 0.5) -> list[np.ndarray]:
    """``random_arrays`` for ``spec``'s weights, in Keras's ``get_weights()`` order (tests, parity)."""
    return random_arrays(spec.weight_shapes(), rng, scale)


def keras_init_weights(spec: ModelSpec, rng: np.random.Generator) -> list[np.ndarray]:
    """Weights drawn as Keras initialises this model (same distributions, not the same numbers).

    kernel and Dense kernel: glorot_uniform over the whole matrix; recurrent_kernel:
    orthogonal over the whole (U, G U) matrix; biases zero, but an LSTM's forget
    block set to 1.0 (``unit_forget_bias``); Dense bias zero.
    """
    out = []
    for role, shape in spec.weight_roles():
        if role in ("kernel", "dense_kernel"):
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            out.append(rng.uniform(-limit, limit, size=shape))
        elif role == "recurrent_kernel":
            q, r = np.linalg.qr(rng.normal(size=(shape[1], shape[0])))  # (4U, U), orthonormal columns
            out.append((q * np.sign(np.diag(r))).T)  # (U, 4U), orthonormal rows
        else:
            bias = np.zeros(shape)
            if role == "bias" and spec.cell == "lstm":
                u = shape[0] // 4
                bias[u:2 * u] = 1.0  # gate order i, f, c, o: the second block is the forget gate
            out.append(bias)
    return out
