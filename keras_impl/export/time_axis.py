"""A static time axis for an export: the length asked for (``--static-timesteps N``), or the one taken automatically.

Some upstream exporters cannot keep a model's time axis free (docs/export.md, "A static time axis"): TensorFlow
traces ``TimeDistributed`` over a free time axis with the batch size in its place, JAX cannot trace it over a
symbolic one, and Keras's torch exporters fix every free dimension at the traced sample's. With the time axis
fixed in the input signature they export correctly, and an artifact that takes exactly N steps a call is what a
deployment that pads every sequence to N needs. So where every route with a free time axis fails, the export
tries the upstream routes again with a static time axis, of the model's own length where one of its inputs
declares one, else of ``DEFAULT_STATIC_TIMESTEPS``.

Nothing here imports Keras: the parent process reads the lengths from the model file's config (or a named
model's spec) before any work, and refuses a length the model cannot take in one line.
"""
from __future__ import annotations

DEFAULT_STATIC_TIMESTEPS = 16   # the automatic length of a free time axis: a sentence or a short sensor window


def declared_time_lengths(config: dict) -> list[int | None]:
    """The time length (axis 1; None where free) each input of a model config declares, from its InputLayers'
    ``batch_shape`` (Keras 3) or ``batch_input_shape`` (Keras 2; a Sequential's first layer may carry it).
    A config that declares none gives ``[]`` (nothing known: any length is allowed)."""
    lengths = []
    for entry in config.get("config", {}).get("layers", []):
        layer_config = entry.get("config") or {}
        for key in ("batch_shape", "batch_input_shape"):
            shape = layer_config.get(key)
            if isinstance(shape, list) and len(shape) >= 2:
                lengths.append(shape[1] if isinstance(shape[1], int) else None)
                break
    return lengths


def choose(requested: int | None, declared: list[int | None]) -> tuple[int | None, int | None]:
    """``(static_timesteps, fallback_timesteps)`` for an export.

    requested: ``--static-timesteps`` (None: not given); declared: ``declared_time_lengths`` (or a named model's
    ``[timesteps]``). ``static_timesteps`` is the length every route exports with (None: the model's own axes);
    ``fallback_timesteps`` the length of the automatic static-time routes, tried after every other (None where
    the model's time axes are all static already: there is nothing to fix). Raises ValueError, one line, for a
    length the model cannot take.
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"--static-timesteps must be a whole number of at least 1, got {requested!r}")
        fixed = sorted({n for n in declared if n is not None})
        if any(n != requested for n in fixed):
            raise ValueError(f"--static-timesteps {requested}: the model's input fixes its time axis at "
                             f"{', '.join(map(str, fixed))} steps; leave the option out (the axis is static already)"
                             + (f" or give {fixed[0]}" if len(fixed) == 1 else ""))
        return requested, None
    if None not in declared:
        return None, None
    own = next((n for n in declared if n is not None), None)  # another input's length, where one declares it
    return None, own if own is not None else DEFAULT_STATIC_TIMESTEPS
