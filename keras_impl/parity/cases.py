"""The configurations the parity suites run: the product of every option, with readable ids.

Layer level (``LayerCase``), Keras layers called directly with ``mask=`` and
``initial_state=``::

    layer        LSTM | LSTM(go_backwards=True) | Bidirectional(LSTM, merge_mode) for sum, mul, concat, ave, None
  x return_sequences x return_state x initial_state (none | random non-zero)
  x mask (none | right padding | left padding | holes | a fully masked row)
  x layers (1 | 2 stacked)

Two corners are not in the product, because Keras itself has no such model:

* ``Bidirectional(LSTM(go_backwards=True))``: Keras 3.15.1 rejects it with a
  ``ValueError`` (``keras/src/layers/rnn/bidirectional.py`` L122 sets the
  backward copy's ``go_backwards`` to True whatever the wrapped layer's value,
  and ``_verify_layer_config`` then refuses two copies that read the same way;
  ``test_layer_parity.py`` proves it). ``go_backwards`` in the product therefore
  means the plain LSTM's option; the Bidirectional's backward copy always has it.
* Two stacked layers with ``merge_mode=None``: that layer returns a pair of
  tensors, which the next layer cannot take.

Model level (``ModelCase``), ``keras_impl.build_model(spec)`` against
``reference.model_forward``: direction (forward, backward, bidirectional with
each merge mode but None: a Dense head cannot take the pair) x mask (none = no
Masking layer; otherwise ``Masking(0.0)`` over zero-padded inputs) x layers.

Every case has a cell (``cell`` = "lstm", "gru" or "simple_rnn", with Keras's
options ``activation``, ``recurrent_activation``, ``reset_after``; ``reference/cells.py``);
an LSTM case with the default options keeps the id it always had, any other
case's id starts with the cell and its options (``gru[reset_after=False]-bidi-sum-...``).
``cell_layer_cases(cell)`` and ``cell_model_cases(cell)`` give the other cells'
products; ``CELL_VARIANTS`` the option sets the suites run for each cell.

Every dimension has its own size (``DIMS``), so a transposed kernel or a
swapped axis cannot line up by accident.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from reference.vocabulary import MERGE_MODES as MERGE_MODES_OF_A_MODEL

MODEL_MERGE_MODES = MERGE_MODES_OF_A_MODEL  # a model's head takes one tensor

MERGE_MODES = (*MODEL_MERGE_MODES, None)  # a layer may also return the pair of directions unmerged
MASK_KINDS = ("none", "right", "left", "holes", "fullrow")


@dataclass(frozen=True)
class Dims:
    """Batch, time, features and the units of each stacked layer: all different."""
    batch: int = 3
    time: int = 7
    features: int = 5
    units: tuple[int, ...] = (4, 6)


DIMS = Dims()

# The masks, (B=3, T=7), True where a step is valid. Row 0 is always fully valid.
_MASK_ROWS = {
    "right": ["1111111", "1111000", "1100000"],    # lengths 7, 4, 2, padded at the end
    "left": ["1111111", "0001111", "0000011"],     # the same lengths padded at the front
    "holes": ["1011011", "1100101", "1000001"],    # gaps inside, first and last steps valid
    "fullrow": ["1111111", "0000000", "1111111"],  # row 1 has no valid step at all
}


def mask_array(kind: str, batch: int = DIMS.batch, time: int = DIMS.time) -> np.ndarray | None:
    """The (B, T) boolean mask of ``kind`` ("none" gives None)."""
    if kind == "none":
        return None
    rows = _MASK_ROWS[kind]
    if (len(rows), len(rows[0])) != (batch, time):
        raise ValueError(f"mask {kind!r} is written for (batch, time) = ({len(rows)}, {len(rows[0])}), got ({batch}, {time})")
    return np.array([[c == "1" for c in row] for row in rows])


@dataclass(frozen=True)
class LayerCase:
    bidirectional: bool
    go_backwards: bool            # the plain LSTM's option (always False for Bidirectional: see the module docstring)
    merge_mode: str | None        # Bidirectional only
    return_sequences: bool
    return_state: bool
    initial_state: bool           # random non-zero initial states for every state of every layer
    mask: str                     # one of MASK_KINDS
    layers: int                   # 1 or 2 stacked; every layer but the last returns sequences
    cell: str = "lstm"            # lstm | gru | simple_rnn, with Keras's options below
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True
    use_bias: bool = True

    @property
    def cell_config(self):
        from reference import Cell
        return Cell(self.cell, activation=self.activation, recurrent_activation=self.recurrent_activation,
                    reset_after=self.reset_after, use_bias=self.use_bias)

    @property
    def id(self) -> str:
        kind = f"bidi-{self.merge_mode}" if self.bidirectional else ("lstm-backwards" if self.go_backwards else "lstm")
        if self.cell != "lstm" or self.cell_config.options():
            kind = cell_prefix(self) + "-" + (kind if self.bidirectional else kind.replace("lstm", "layer"))
        return "-".join([
            kind, "seq" if self.return_sequences else "last", "state" if self.return_state else "nostate",
            "h0" if self.initial_state else "zero0", f"mask={self.mask}", f"x{self.layers}",
        ])

    @property
    def structure(self) -> tuple:
        """What fixes the Keras layers and the call's signature: cases equal here share layers."""
        return (self.bidirectional, self.go_backwards, self.merge_mode, self.return_sequences, self.return_state,
                self.initial_state, self.mask != "none", self.layers, self.cell, self.activation,
                self.recurrent_activation, self.reset_after, self.use_bias)

    def layer_returns_sequences(self, k: int) -> bool:
        return True if k < self.layers - 1 else self.return_sequences


def cell_prefix(case) -> str:
    """``gru``, ``simple_rnn``, ``lstm[activation=relu]``...: the cell and its non-default options."""
    options = case.cell_config.options()
    return case.cell + (f"[{options}]" if options else "")


def layer_kinds():
    """(bidirectional, go_backwards, merge_mode) for each kind of recurrent layer."""
    yield False, False, None
    yield False, True, None
    for merge_mode in MERGE_MODES:
        yield True, False, merge_mode


def layer_cases(cell: str = "lstm", **options) -> list[LayerCase]:
    """The whole layer product for ``cell`` with ``options`` (activation, recurrent_activation, reset_after)."""
    cases = []
    for (bidi, go_backwards, merge_mode), rs, rst, h0, mask, layers in itertools.product(
            layer_kinds(), (True, False), (False, True), (False, True), MASK_KINDS, (1, 2)):
        if bidi and merge_mode is None and layers == 2:
            continue  # a pair of tensors cannot feed the next layer (module docstring)
        cases.append(LayerCase(bidi, go_backwards, merge_mode, rs, rst, h0, mask, layers, cell, **options))
    return cases


def layer_kind(case: LayerCase) -> tuple:
    """(bidirectional, go_backwards, merge_mode): what ``layer_kinds`` yields."""
    return case.bidirectional, case.go_backwards, case.merge_mode


# (return_sequences, return_state, initial_state, layers): every combination, in an order that
# ``covering_layer_cases`` steps through five at a time, so that consecutive pairs differ in every flag.
_FLAG_COMBINATIONS = list(itertools.product((True, False), (False, True), (False, True), (1, 2)))


def covering_layer_cases(cases: list[LayerCase]) -> list[LayerCase]:
    """The default run's share of ``layer_cases()`` (one cell and option set): 70 of 520.

    Every layer kind x every mask kind (35 pairs), each pair twice with opposite flags, so
    that every kind and every mask meets return_sequences, return_state, initial_state and
    the depth both ways (merge_mode None is one layer deep); the flags step through all
    16 combinations along the pairs. ``leading_mask_cases`` adds the cases where the
    backends' conventions for leading masked steps differ.
    """
    by_key = {(layer_kind(c), c.return_sequences, c.return_state, c.initial_state, c.mask, c.layers): c
              for c in cases}
    out = []
    for i, (kind, mask) in enumerate(itertools.product(layer_kinds(), MASK_KINDS)):
        rs, rst, h0, layers = _FLAG_COMBINATIONS[(5 * i) % len(_FLAG_COMBINATIONS)]
        for flags in ((rs, rst, h0, layers), (not rs, not rst, not h0, 3 - layers)):
            depth = 1 if kind[0] and kind[2] is None else flags[3]  # no stacked merge_mode=None
            out.append(by_key[(kind, *flags[:3], mask, depth)])
    return out


def leading_mask_cases(cases: list[LayerCase], matters) -> list[LayerCase]:
    """One case for each (layer kind, mask, depth, return_sequences) where ``matters(case)``
    (``divergences.leading_mask_matters``), the one with states out where there is one:
    23 of the LSTM product's 46."""
    groups: dict[tuple, LayerCase] = {}
    for case in cases:
        if matters(case):
            key = (layer_kind(case), case.mask, case.layers, case.return_sequences)
            if key not in groups or (case.return_state and not groups[key].return_state):
                groups[key] = case
    return list(groups.values())


# The option sets each cell is run with besides the LSTM's defaults (which LAYER_CASES covers):
# Keras's defaults first, then the options that change the equations (GRU's reset_after=False form,
# Keras 3's hard_sigmoid, an unbounded activation, no bias).
CELL_VARIANTS = {
    "gru": [dict(), dict(reset_after=False), dict(recurrent_activation="hard_sigmoid", activation="relu")],
    "simple_rnn": [dict(), dict(activation="relu", use_bias=False)],
    "lstm": [dict(recurrent_activation="hard_sigmoid", activation="linear")],
}


def variant_cases(cell: str) -> list[LayerCase]:
    """The whole layer product of every option set of ``cell`` in ``CELL_VARIANTS``."""
    return [case for options in CELL_VARIANTS[cell] for case in layer_cases(cell, **options)]


def representative_layer_cases(cell: str) -> list[LayerCase]:
    """The default run's share of ``variant_cases(cell)``.

    Keras's defaults: every layer kind without a mask and with holes, and the plain layers
    (forward, go_backwards) and merge_mode None under every mask kind, with sequences,
    states out and random initial states in; the last output over a fully masked row
    of each plain layer and of one merge mode; a plain layer and a concat Bidirectional
    twice stacked (holes, no states out). Each other option set: the plain layers and a
    sum Bidirectional with holes, and the forward layer's last output over a fully masked row.
    """
    out = []
    for k, options in enumerate(CELL_VARIANTS[cell]):
        for case in layer_cases(cell, **options):
            plain_or_pair = not case.bidirectional or case.merge_mode is None
            full = case.return_sequences and case.return_state and case.initial_state and case.layers == 1
            last = (not case.return_sequences and case.return_state and case.initial_state and case.layers == 1
                    and case.mask == "fullrow" and (not case.bidirectional or case.merge_mode == "sum"))
            stacked = (case.layers == 2 and case.mask == "holes" and case.return_sequences and not case.return_state
                       and case.initial_state and not case.go_backwards and case.merge_mode in (None, "concat"))
            defaults = k == 0 and cell != "lstm"  # the LSTM's defaults are LAYER_CASES'
            if defaults:
                keep = (full and (case.mask in ("none", "holes") or plain_or_pair)) or last or stacked
            else:
                keep = ((full and case.mask == "holes" and (not case.bidirectional or case.merge_mode == "sum"))
                        or (last and not case.bidirectional and not case.go_backwards))
            if keep:
                out.append(case)
    return out


@dataclass(frozen=True)
class ModelCase:
    direction: str                # forward | backward | bidirectional
    merge_mode: str               # bidirectional only ("concat" otherwise, unused)
    mask: str                     # "none": no Masking layer; otherwise Masking(0.0) over zero-padded inputs
    layers: int
    cell: str = "lstm"
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    reset_after: bool = True
    use_bias: bool = True

    @property
    def id(self) -> str:
        kind = f"bidi-{self.merge_mode}" if self.direction == "bidirectional" else self.direction
        options = self.spec().cell_config.options()
        if self.cell != "lstm" or options:
            kind = self.cell + (f"[{options}]" if options else "") + "-" + kind
        return f"model-{kind}-mask={self.mask}-x{self.layers}"

    def spec(self, dims: Dims = DIMS):
        from reference import ModelSpec
        return ModelSpec(timesteps=dims.time, features=dims.features, units=dims.units[:self.layers],
                         direction=self.direction, merge_mode=self.merge_mode,
                         mask_value=None if self.mask == "none" else 0.0, cell=self.cell,
                         activation=self.activation, recurrent_activation=self.recurrent_activation,
                         reset_after=self.reset_after, use_bias=self.use_bias)


def model_cases(cell: str = "lstm", **options) -> list[ModelCase]:
    kinds = [("forward", "concat"), ("backward", "concat")] + [("bidirectional", m) for m in MODEL_MERGE_MODES]
    return [ModelCase(direction, merge_mode, mask, layers, cell, **options)
            for (direction, merge_mode), mask, layers in itertools.product(kinds, MASK_KINDS, (1, 2))]


def covering_model_cases(cases: list[ModelCase]) -> list[ModelCase]:
    """The default run's share of ``model_cases()``: 30 of 60, every direction (each merge mode) with every
    mask kind once, one or two layers in turn, so that each direction and each mask kind meets both depths."""
    by_key = {(c.direction, c.merge_mode, c.mask, c.layers): c for c in cases}
    kinds = list(dict.fromkeys((c.direction, c.merge_mode) for c in cases))
    return [by_key[(*kind, mask, 1 + i % 2)]
            for i, (kind, mask) in enumerate(itertools.product(kinds, MASK_KINDS))]


LAYER_CASES = layer_cases()
MODEL_CASES = model_cases()
