"""Every tolerance of the parity suites, in one place, named by situation.

Each entry says what is compared and why the bound is what it is.
"""
from __future__ import annotations

# float64 oracle against a float32 Keras model on the CPU (forward outputs and states).
FLOAT32_ABS = 1e-5
# float64 oracle against a float64 Keras model where the backend computes in float64 throughout (TensorFlow).
FLOAT64_ABS = 1e-10
# float64 oracle against a float64 Keras layer or model on JAX and torch (set_floatx("float64"), and
# jax_enable_x64 on JAX). Keras's type promotion maps float64 to float32 on every backend but TensorFlow
# (keras/src/backend/common/dtypes.py L274-276, BIT64_TO_BIT32_DTYPE, "to be aligned with JAX's default
# behavior"), so the activations round through float32 while the results come back as float64.
# Measured on the CPU over test_float64_parity's cases: worst 1.1e-7 (torch) and 9.5e-8 (JAX) at layer
# level, 9.6e-9 for model probabilities: float32 rounding, not the 1e-16 that float64 would give.
FLOAT64_DEMOTED_ABS = 5e-7


def float64_abs(backend: str) -> float:
    """The float64 parity bound for ``backend``: see FLOAT64_ABS and FLOAT64_DEMOTED_ABS."""
    return FLOAT64_ABS if backend == "tensorflow" else FLOAT64_DEMOTED_ABS
# float64 oracle against itself (or a float64 NumPy/torch re-implementation): the same equations
# evaluated in another order (hand-stepped cell, flipped input, torch's kernels), so rounding only.
FLOAT64_SELF_ABS = 1e-12
# A .keras file saved on one backend and loaded on another, same float32 inputs: only op-order rounding.
PORTABILITY_ABS = 1e-6
# Central finite differences (fourth-order stencil, float64) against the oracle's own BPTT gradients:
# max |numeric - analytic| / max |gradient| for each tensor. The stencil's truncation and rounding
# errors are about 1e-12 at these tiny sizes, far below the bound.
GRADCHECK_REL = 1e-6
# train_stream's fast mode against its faithful mode (one fit call per update), same float32 start:
# the same Keras train_step compiled into a loop instead of called once an update. Measured: equal to
# the last bit on CPU (jax, tensorflow, torch); the bound leaves room for fusion order on other devices.
FAST_VS_FAITHFUL_ABS = 1e-5
# Gradients of the compiled loss, oracle against each backend's autodiff through the Keras model.
# float32 backend: max |difference| / max |oracle gradient|, per tensor (measured 3.1e-6 at worst).
GRADIENT_FLOAT32_REL = 1e-5
# float64 where the backend computes float64 throughout (TensorFlow): absolute (measured 2.2e-16).
GRADIENT_FLOAT64_ABS = 1e-10
# Adam trajectories: every update's loss and the final weights after 100 one-sequence fit calls.
# float32 backend: relative to each array's largest entry; float32 rounding compounds over the updates
# (measured 2.7e-6 after 100 updates).
TRAJECTORY_FLOAT32_REL = 1e-4
# float64 on TensorFlow, the oracle's Adam rounding the betas through float32 as TensorFlow does: absolute
# (measured 3.3e-16 after 100 updates).
TRAJECTORY_FLOAT64_ABS = 1e-9
# Data-parallel training over 2 devices against the same updates on one device (float32, JAX):
# each device sums its half of the batch, then the halves are added: only the summation order
# differs. Measured on 2 virtual CPU devices: weights within 3e-8 after 3 updates.
DATA_PARALLEL_ABS = 1e-6
