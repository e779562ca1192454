"""The inputs that break deployments, one table: an artifact is run on each family, and the report names the
family that failed, not only the set.

Converters' issue trackers keep meeting the same inputs: an artifact that is right for one sequence and
wrong for a batch, right at the length it was traced with and wrong (or refused) at any other, right for
right-padded rows and wrong for left-padded ones or for a row with no valid step at all, right for small
values and wrong where the gates saturate, right for common token ids and wrong at the vocabulary's ends.

    family                      drawn (keras_impl/verify/inputs.py draws the values)      applies to
    batch 1                     one full sequence                                          every model
    batch > 1                   three sequences, lengths varying (trailing padding)        a dynamic batch
    shorter than traced         T = SHORTER_TIMESTEPS, two sequences                       a free time axis
    longer than traced          T = LONGER_TIMESTEPS, two sequences                        a free time axis
    right padding               two rows, every one padded at its end                      a masked model
    left padding                the same lengths, padded at the start                      a masked model
    a fully masked row          a full row and a row with no valid step                    a masked model
    a row of length 1           a full row and a row with one valid step (masked model),
                                or one step of time (a free time axis, no mask)
    large magnitude (saturated gates)   standard normal x LARGE_SCALE                      a float input
    ids at the ends of the vocabulary   only the two lowest and two highest ids            a token input

"Traced" is the length every other family is drawn at, ``TRACED_TIMESTEPS`` for a free time axis: the
length the check regards as the example one (an artifact whose time axis was fixed at export at any other
length is refused by its runtime on every family, and the report says at which length it is fixed); a model
whose own Input fixes the time axis, or an artifact known to fix it (``static_timesteps``), is checked at
that length only and the length families are left out. A static batch (``static_batch``): each family's
rows one call at a time, and "batch > 1" left out. Families that do not apply are said in one line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .inputs import draw_inputs, mask_sources, token_inputs

TRACED_TIMESTEPS = 8    # a free time axis: the length of every family but the two below
SHORTER_TIMESTEPS = 3
LONGER_TIMESTEPS = 13
LARGE_SCALE = 30.0      # x30 a standard normal: |pre-activation| in the tens for unit-scale weights


@dataclass(frozen=True)
class Facts:
    """What decides which families apply to a model (and an artifact)."""
    free_time: bool      # the model's time axis is free and the artifact is not known to fix it
    masked: bool         # an input feeds Masking or Embedding(mask_zero=True)
    tokens: bool         # an input feeds an Embedding
    floats: bool         # an input of float values (not ids)
    dynamic_batch: bool
    timesteps: int       # the length every family but the length ones is drawn at


@dataclass(frozen=True)
class Family:
    name: str
    batch: int
    left_out: Callable          # Facts -> None where the family applies, else why not (a few words)
    draw: Callable              # Facts -> keyword arguments of draw_inputs (timesteps, lengths, padding, ...)


def _needs_mask(f: Facts):
    return None if f.masked else "the model has no mask: no Masking or Embedding(mask_zero=True)"


def _needs_free_time(f: Facts):
    return None if f.free_time else f"the time axis is static at {f.timesteps}"


def _row_of_one(f: Facts):
    if f.masked:
        return {"lengths": [f.timesteps, 1]}
    return {"timesteps": 1}


FAMILIES = [
    Family("batch 1", 1, lambda f: None, lambda f: {"lengths": [f.timesteps]}),
    Family("batch > 1", 3, lambda f: None if f.dynamic_batch else "the artifact's batch is static", lambda f: {}),
    Family("shorter than traced", 2, _needs_free_time, lambda f: {"timesteps": SHORTER_TIMESTEPS}),
    Family("longer than traced", 2, _needs_free_time, lambda f: {"timesteps": LONGER_TIMESTEPS}),
    Family("right padding", 2, _needs_mask, lambda f: {"lengths": [f.timesteps - 1, (f.timesteps + 1) // 2]}),
    Family("left padding", 2, _needs_mask,
           lambda f: {"lengths": [f.timesteps - 1, (f.timesteps + 1) // 2], "padding": "left"}),
    Family("a fully masked row", 2, _needs_mask, lambda f: {"lengths": [f.timesteps, 0]}),
    Family("a row of length 1", 2,
           lambda f: None if f.masked or f.free_time else "no mask and the time axis is static", _row_of_one),
    Family("large magnitude (saturated gates)", 2, lambda f: None if f.floats else "no input of float values",
           lambda f: {"scale": LARGE_SCALE}),
    Family("ids at the ends of the vocabulary", 2, lambda f: None if f.tokens else "no token input",
           lambda f: {"ids": "ends"}),
]


USER_INPUTS = "the user's --inputs"  # the family of the one set --inputs gives instead of the families


class InputSets(list):
    """The input sets (a list, as before), with ``left_out``: ``[(family name, why)]``."""
    left_out: list


def facts(described, *, dynamic_batch: bool, static_timesteps: int | None = None) -> Facts:
    shapes = described.input_shapes
    free = any(shape and shape[0] is None for shape in shapes.values())
    fixed = next((shape[0] for shape in shapes.values() if shape and shape[0] is not None), None)
    tokens = token_inputs(described)
    fed_ids = {name for name in described.graph.inputs for r in tokens if name in r.inbound}
    floats = any(name not in fed_ids and str(described.input_dtypes[name]).startswith("float")
                 for name in described.graph.inputs)
    timesteps = static_timesteps or fixed or TRACED_TIMESTEPS
    return Facts(free_time=free and static_timesteps is None, masked=bool(mask_sources(described)),
                 tokens=bool(tokens), floats=floats, dynamic_batch=dynamic_batch, timesteps=timesteps)


def family_sets(described, *, dynamic_batch: bool, seed: int = 0, static_batch: int = 1,
                static_timesteps: int | None = None) -> InputSets:
    """``[{"inputs": [arrays], "about": [...], "family": name}]``, one set (or, for a static batch, one set a
    call of ``static_batch`` rows) per family that applies; ``.left_out`` names the others."""
    import numpy as np
    f = facts(described, dynamic_batch=dynamic_batch, static_timesteps=static_timesteps)
    free = any(shape and shape[0] is None for shape in described.input_shapes.values())
    sets, left_out = InputSets(), []
    for k, family in enumerate(FAMILIES):
        why = family.left_out(f)
        if why:
            left_out.append((family.name, why))
            continue
        options = {"timesteps": f.timesteps if free else None, **family.draw(f)}
        batch = family.batch if dynamic_batch else static_batch * -(-family.batch // static_batch)
        if options.get("lengths") is not None:
            options["lengths"] = np.resize(np.asarray(options["lengths"]), batch)
        arrays, about = draw_inputs(described, described.keras_layers, batch, options.pop("timesteps"),
                                    seed + k, **options)
        if dynamic_batch:
            sets.append({"inputs": arrays, "about": about, "family": family.name})
            continue
        for start in range(0, batch, static_batch):  # a static batch: one call of static_batch rows at a time
            rows = slice(start, start + static_batch)
            sets.append({"inputs": [a[rows] for a in arrays], "family": family.name,
                         "about": [{**a, "shape": [static_batch] + a["shape"][1:],
                                    "drawn": f"rows {rows.start}..{rows.stop - 1} of: {a['drawn']}"} for a in about]})
    sets.left_out = left_out
    return sets


def left_out_line(left_out) -> str | None:
    """One line for the families that do not apply, grouped by why; None when every family applies."""
    if not left_out:
        return None
    by_why: dict = {}
    for name, why in left_out:
        by_why.setdefault(why, []).append(name)
    return "input families left out: " + "; ".join(f"{', '.join(names)} ({why})" for why, names in by_why.items())


def failed_families_line(rows) -> str:
    """The report's summary: which families failed (each with its sets), or that every one passed."""
    failed: dict = {}
    rows = [row for row in rows if row.get("family") != USER_INPUTS]
    for row in rows:
        if row["verdict"] != "pass" and row.get("family"):
            failed.setdefault(row["family"], set()).add(row["set"])
    if not failed:
        return "input families: every family passed" if any(r.get("family") for r in rows) else ""
    return "input families that failed: " + "; ".join(
        f"{name} (set{'s' if len(s) > 1 else ''} {', '.join(map(str, sorted(s)))})" for name, s in failed.items())
