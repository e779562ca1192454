"""Input checks shared by the oracle's public functions.

Every check raises a ``TypeError`` (wrong kind of value) or a ``ValueError``
(right kind, wrong shape or content) that names the argument and shows what
was received beside what was expected. Nothing is silently broadcast.
"""
from __future__ import annotations

import numbers

import numpy as np


def as_float64(name: str, value, *, ndim: int | None = None, shape: tuple | None = None) -> np.ndarray:
    """``value`` as a finite float64 array of rank ``ndim`` / exact ``shape``.

    ``shape`` may hold ``None`` for a dimension that is free.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__} {value!r:.60}")
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged nested lists, objects numpy cannot hold
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}: {exc}") from None
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.number)):
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have rank {ndim}{_shape_hint(shape)}, got shape {array.shape} (rank {array.ndim})")
    if shape is not None:
        expected = tuple(shape)
        if len(expected) != array.ndim or any(e is not None and e != a for e, a in zip(expected, array.shape)):
            raise ValueError(f"{name} must have shape {_fmt(expected)}, got {array.shape}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} must be finite, found {array[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return array


def as_mask(value, batch: int, time: int) -> np.ndarray | None:
    """A boolean ``(batch, time)`` mask, True where a step is valid; None stays None."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.shape != (batch, time):
        raise ValueError(f"mask must have shape (batch, time) = ({batch}, {time}), got {array.shape}")
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.number) and np.all((array == 0) | (array == 1)):
        return array.astype(bool)
    raise TypeError(f"mask must be boolean (or 0/1 numbers), got dtype {array.dtype}")


def check_flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(repr(a) for a in allowed)}")


def _fmt(shape) -> str:
    return "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _shape_hint(shape) -> str:
    return f" {_fmt(shape)}" if shape is not None else ""
