"""How much memory an experiment needs, estimated before anything runs, against what the machine has.

A run that cannot fit should be refused with the figure at the start, not
killed by the kernel an hour in. ``estimate_bytes`` is a rough upper bound
built from the arrays the runner holds (``runner.py``), not a measurement:

    data      every seed's stream and held-out set, kept for the whole experiment
              (float64 xs, ys: 2 N T 8; held-out x, y and mask: M T 17), times 2 while they are drawn
    training  the float32 copies a run makes of its stream (xs, ys, weights: 3 N T 4, twice:
              checked copy and the backend's tensors) and the held-out forward pass
              (inputs, every layer's outputs and gates: M T (D + 1 + 6 dirs U layers) 4, twice);
              on JAX in fast mode all S seeds at once, elsewhere one seed at a time
    logs      per run and update: the loss and accuracy as Python floats (2 x 32 bytes), the
              summary's float64 curves (8) and curves.csv's text (about 100 bytes)
    programs  the backend's runtime and compiled programs: a flat FRAMEWORK_BYTES, the resident
              size measured for a tiny run (0.84 GB TensorFlow, 1.0 GB JAX and torch, CPU,
              Keras 3.15.1) rounded up

N = updates, M = held-out sequences, T = timesteps, S = seeds, U = units.
Everything here is arithmetic on integers: it runs before Keras is imported.
"""
from __future__ import annotations

from keras_impl.memory import available_bytes, format_bytes  # noqa: F401  (re-exported: the experiments' checks)

FRAMEWORK_BYTES = 1_300_000_000
LOG_BYTES_PER_UPDATE = 2 * 32 + 8 + 100


def estimate_bytes(*, models: int, seeds: int, updates: int, heldout: int, timesteps: int, units: int,
                   layers: int, directions: int, batched_seeds: bool, features: int = 1) -> int:
    """A rough upper bound of the resident memory of one experiment, in bytes (see the module docstring)."""
    data = seeds * (2 * updates * timesteps * 8 + heldout * timesteps * 17) * 2
    stream = 2 * 3 * updates * timesteps * 4
    forward = 2 * heldout * timesteps * (features + 1 + 6 * directions * units * layers) * 4
    training = (seeds if batched_seeds else 1) * (stream + forward)
    logs = models * seeds * updates * LOG_BYTES_PER_UPDATE
    return FRAMEWORK_BYTES + data + training + logs
