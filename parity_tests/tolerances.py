"""Every tolerance of the parity suites, in one place, named by situation.

Each entry says what is compared and why the bound is what it is.
"""
from __future__ import annotations

# float64 oracle against a float32 Keras model on the CPU (forward outputs and states).
FLOAT32_ABS = 1e-5
# float64 oracle against a float64 Keras model where the backend computes in float64 throughout (TensorFlow).
FLOAT64_ABS = 1e-10
