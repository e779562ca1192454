"""Every tolerance of the parity suites, in one place, named by situation.

Each entry says what is compared and why the bound is what it is. ``bound(what,
dtype, backend)`` is the one lookup the table and the tests use for Keras
against the oracle: it returns the kind of error (absolute, or relative to the
largest entry of the oracle's array), the figure and, where the backend
computes parts of float64 in float32, the cause.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# float64 oracle against a float32 Keras model on the CPU (forward outputs and states).
FLOAT32_ABS = 1e-5
# float64 oracle against a float64 Keras model where the backend computes in float64 throughout (TensorFlow).
FLOAT64_ABS = 1e-10
# float64 oracle against a float64 Keras layer or model on JAX and torch (set_floatx("float64"), and
# jax_enable_x64 on JAX). Keras's type promotion maps float64 to float32 on every backend but TensorFlow
# (keras/src/backend/common/dtypes.py L274-276, BIT64_TO_BIT32_DTYPE, "to be aligned with JAX's default
# behavior"), so the keras.ops that resolve their dtype through result_type compute in float32 while the
# results come back as float64: on JAX tanh (each recurrent cell's default activation); on torch matmul,
# so Dense and Keras's generic recurrent loop (a mask, SimpleRNN, GRU reset_after=False). An unmasked LSTM
# or GRU on torch runs Keras's torch kernel (keras/src/backend/torch/rnn.py) in float64 throughout
# (1.7e-16 to 3.3e-16 measured), well inside this bound; docs/parity.md has the table.
# Measured on the CPU over test_float64_parity's cases: worst 1.1e-7 (torch) and 9.5e-8 (JAX) at layer
# level, 9.6e-9 for model probabilities: float32 rounding, not the 1e-16 that float64 would give.
FLOAT64_DEMOTED_ABS = 5e-7

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
# float64 on JAX and torch, where Keras computes in float32 inside (FLOAT64_DEMOTED_CAUSE): absolute.
# Measured on the CPU over the 15 gradient cases (the `bilstm parity` seeds): worst 7.3e-8 on torch
# (bidirectional_mul, masked), 9.5e-9 on JAX; the bound leaves a factor 7. A float64 computation would
# give ~1e-16 (TensorFlow: 2.2e-16), so this bound says "float32 inside", and no worse.
GRADIENT_FLOAT64_DEMOTED_ABS = 5e-7
# Adam trajectories: every update's loss and each weight's total update (final minus initial weights)
# after 100 one-sequence updates. float32 backend: relative to each array's largest entry, so relative
# to the update, not to the weights; float32 rounding compounds over the updates (measured 1.1e-5 at
# worst on the CPU, three streams; a 0.5% learning-rate error gives ~5e-3: a test injects it).
TRAJECTORY_FLOAT32_REL = 1e-4
# float64 on TensorFlow, the oracle's Adam rounding the betas through float32 as TensorFlow does: absolute
# (measured 2.8e-16 after 100 updates, `bilstm parity --dtype float64`).
TRAJECTORY_FLOAT64_ABS = 1e-9
# float64 on JAX and torch, where Keras computes in float32 inside (FLOAT64_DEMOTED_CAUSE): absolute.
# Measured on the CPU, 100 tutorial updates, three streams: worst 6.3e-8 on torch, 1.0e-7 on JAX
# (losses and weight updates alike); the bound leaves a factor 10 for other streams.
TRAJECTORY_FLOAT64_DEMOTED_ABS = 1e-6
# Adam alone (test_loss_adam.py): Keras's keras.optimizers.Adam against reference.Adam on the same weights
# and gradients, compared on the UPDATE (w_after - w_before), relative to its largest entry per tensor,
# so that a wrong epsilon placement or a 0.5% learning-rate error (5e-3 relative) cannot hide under the
# size of the weights. float32: the update is the difference of two float32 weights of size <= 0.15
# (half an ulp, <= 7e-9, against a step of about 1e-3) and Keras's float32 m, v and alpha: measured
# 1.6e-5 at worst on JAX and torch (1 and 7 steps, 3 seeds); a 0.5% learning-rate error is 5e-3, 25x the bound.
ADAM_UPDATE_FLOAT32_REL = 2e-4
# float64 where the backend computes float64 (TensorFlow): measured 0 (the oracle's Adam repeats
# Keras's operation order); the bound allows op-order rounding elsewhere.
ADAM_UPDATE_FLOAT64_REL = 1e-9
# Data-parallel training over 2 devices against the same updates on one device (float32, JAX):
# each device sums its half of the batch, then the halves are added: only the summation order
# differs. Measured on 2 virtual CPU devices: weights within 3e-8 after 3 updates.
DATA_PARALLEL_ABS = 1e-6
# An exported artifact (ONNX, SavedModel, LiteRT, OpenVINO, torch.export, jax.export) run in its own runtime
# against the Keras model it came from, both float32, same inputs (`bilstm export --verify`): only the
# runtime's kernels and op order differ. Measured on the CPU (Keras 3.15.1, small Bidirectional models, batches
# 1, 3, 7, Masking included): worst 6.0e-8 against Keras for ONNX (from TensorFlow and torch), LiteRT, OpenVINO
# in float32 and torch.export; 0 for jax.export (the same XLA program). A bfloat16 run (OpenVINO's default on a
# CPU with BF16; not this one, so not measured here: issue 12 reports 4e-4) fails it, as it should. The artifact against the oracle uses
# the "output" float32 bound, as Keras against the oracle does (measured 5.6e-8 at worst).
ARTIFACT_VS_KERAS_ABS = 1e-5
# verify's step diagnosis (keras_impl/verify/step_diagnosis.py), which gate of a recurrent step differs: a gate
# solved from Keras's float32 states is "in its activation's range" within GATE_RANGE_SLACK of its ends (float32
# rounding of a saturated gate); a denominator under GATE_SOLVE_TINY leaves it undefined; a solved value within
# GATE_FIT_INSIDE of its range's ends is left out of the linear fit (its inverse activation is noise there). The
# fit keeps a gate whose change of pre-activation is linear in (x_t, h_{t-1}, 1) to GATE_FIT_RESIDUAL of itself;
# a unit whose change is under GATE_FIT_FLOOR (rms) has none to explain. Measured on the planted faults of
# parity_tests/verify/test_diagnose.py (jax, torch, tensorflow): the faulty gate's residual at most 3.3e-4, the
# others' 0.2 to 0.8.
GATE_RANGE_SLACK = 1e-6
GATE_SOLVE_TINY = 1e-6
GATE_FIT_INSIDE = 1e-4
GATE_FIT_RESIDUAL = 1e-2
GATE_FIT_FLOOR = 1e-4


# Why float64 bounds are looser on JAX and torch: Keras's type promotion maps float64 to float32.
FLOAT64_DEMOTED_CAUSE = ("Keras computes parts of a float64 model in float32 on this backend: "
                         "keras/src/backend/common/dtypes.py L235-242 BIT64_TO_BIT32_DTYPE, "
                         "applied in result_type L276")


# TensorFlow computes a float64 model in float64, except ops that hold a float32 constant: leaky_relu's slope is a
# float32 op attribute (tensorflow/python/ops/nn_ops.py L3699, gen_nn_ops.leaky_relu(alpha=...)), and gelu
# casts 1/sqrt(2) to float64 from a float32 tensor (nn_ops.py L3756, math_ops.cast of a Python float). A
# constant rounded to float32 is off by up to 2^-24 of itself (6e-8), so such a layer and every layer after it
# carry float32 rounding: measured 1.5e-9 (LeakyReLU 0.1) and 5.0e-9 (gelu on |x| <= 5) at the layer, 1.2e-9
# after a GroupNormalization; a model holding one is held to the float32 bound, as JAX's and torch's float64 is.
TF_FLOAT32_CONSTANT_CAUSE = ("TensorFlow computes {layers} with a float32-rounded constant even in float64: "
                             "leaky_relu's slope is a float32 attribute (tensorflow/python/ops/nn_ops.py L3699), "
                             "gelu casts 1/sqrt(2) from float32 (L3756)")
# UpSampling2D(interpolation="bilinear") in a float64 model on TensorFlow: tf.image.resize computes bilinear in
# float32 whatever its input's dtype (TensorFlow's ResizeBilinear kernel outputs float32; Keras's TensorFlow
# backend returns it as it is, keras/src/backend/tensorflow/image.py L331-339), so that one layer is rounded to
# float32 inside a model that is float64 throughout: the float32 verify bound for it, FLOAT64_ABS for the rest.
# Measured (parity_tests/verify/test_reshaping_merging_layers.py, image_reshapes, batch 5, seeds 4 and 5): at
# worst 9.3e-7 abs on outputs up to 2.9, 4.4e-7 of max(1, max|y|), float32 rounding (JAX and torch: 1.2e-15).
TF_BILINEAR_FLOAT64_CAUSE = ("TensorFlow's bilinear resize computes in float32 whatever the input's dtype "
                             "(keras/src/backend/tensorflow/image.py L331, tf.image.resize)")


def verify_layer_bound(default: Bound, kind: str, options: dict, dtype: str, backend: str) -> "Bound":
    """The bound of one layer in ``bilstm verify``: ``default`` (``bound("verify", ...)``), except for a layer
    that Keras computes in less than the model's dtype on ``backend`` (named above)."""
    if (kind == "UpSampling2D" and options.get("interpolation") == "bilinear" and dtype == "float64"
            and backend == "tensorflow"):
        return Bound("abs", FLOAT32_ABS, TF_BILINEAR_FLOAT64_CAUSE)
    return default


def float64_exact(backend: str) -> bool:
    """Whether Keras computes a float64 model in float64 throughout on ``backend`` (TensorFlow only)."""
    return backend == "tensorflow"


@dataclass(frozen=True)
class Bound:
    """A tolerance as a check applies it."""
    kind: str          # "abs": max |actual - expected|; "rel": that over max |expected|, per named array
    value: float
    cause: str = ""    # why the bound is looser than the dtype's own (empty where it is not)

    def __str__(self) -> str:
        return f"{self.value:g} {self.kind}"


_BOUNDS = {  # what -> dtype -> (exact backend, demoted backend)
    "output": {"float32": (Bound("abs", FLOAT32_ABS),) * 2,
               "float64": (Bound("abs", FLOAT64_ABS), Bound("abs", FLOAT64_DEMOTED_ABS, FLOAT64_DEMOTED_CAUSE))},
    "gradient": {"float32": (Bound("rel", GRADIENT_FLOAT32_REL),) * 2,
                 "float64": (Bound("abs", GRADIENT_FLOAT64_ABS),
                             Bound("abs", GRADIENT_FLOAT64_DEMOTED_ABS, FLOAT64_DEMOTED_CAUSE))},
    "trajectory": {"float32": (Bound("rel", TRAJECTORY_FLOAT32_REL),) * 2,
                   "float64": (Bound("abs", TRAJECTORY_FLOAT64_ABS),
                               Bound("abs", TRAJECTORY_FLOAT64_DEMOTED_ABS, FLOAT64_DEMOTED_CAUSE))},
    # A user's model (`bilstm verify`), of any size: where Keras computes parts of float64 in float32, the
    # float32 bound, since FLOAT64_DEMOTED_ABS was measured on this suite's small cases only (a 20-unit
    # Keras 2 SimpleRNN reached 7.3e-7 on torch; verify scales every bound by max(1, max|y|)).
    "verify": {"float32": (Bound("abs", FLOAT32_ABS),) * 2,
               "float64": (Bound("abs", FLOAT64_ABS), Bound("abs", FLOAT32_ABS, FLOAT64_DEMOTED_CAUSE))},
    "artifact": {"float32": (Bound("abs", ARTIFACT_VS_KERAS_ABS),) * 2,  # artifacts compute in float32 only
                 "float64": (Bound("abs", ARTIFACT_VS_KERAS_ABS),) * 2},
    "adam_update": {"float32": (Bound("rel", ADAM_UPDATE_FLOAT32_REL),) * 2,
                    "float64": (Bound("rel", ADAM_UPDATE_FLOAT64_REL),) * 2},
}


def verify_bound(dtype: str, backend: str, float32_constant_layers=()) -> Bound:
    """``bound("verify", ...)``, or the float32 bound with its cause where a float64 model on TensorFlow holds
    layers TensorFlow computes with a float32 constant (``float32_constant_layers``, their names)."""
    if dtype == "float64" and float64_exact(backend) and float32_constant_layers:
        return Bound("abs", FLOAT32_ABS, TF_FLOAT32_CONSTANT_CAUSE.format(layers=", ".join(float32_constant_layers)))
    return bound("verify", dtype, backend)


def bound(what: str, dtype: str, backend: str) -> Bound:
    """The bound for Keras in ``dtype`` on ``backend`` against the oracle.

    ``what``: "output" (layer outputs and states, model probabilities), "gradient"
    (loss and gradients), "trajectory" (losses and weight updates of a training run)
    or "adam_update" (the optimizer alone); "artifact": an exported artifact against its Keras model.
    """
    if what not in _BOUNDS:
        raise ValueError(f"unknown what {what!r}; expected one of {', '.join(map(repr, _BOUNDS))}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"unknown dtype {dtype!r}; expected 'float32' or 'float64'")
    exact, demoted = _BOUNDS[what][dtype]
    return exact if float64_exact(backend) else demoted


# ---------------------------------------------------------------- artifacts in reduced precision
# `bilstm export --precision float16|bfloat16|int8-dynamic|int8-static` (keras_impl/export/precision.py). An
# error is expressed in units of the precision at the output's magnitude m = max(1, max |oracle output|):
# float16 and bfloat16 one ulp at m, 2^floor(log2 m) * 2^(1-p) with p significand bits (11 and 8); int8 one
# step of a symmetric int8 grid over [-m, m], m / 127. The bound is derived from the weights: the oracle run
# in float64 on the weights rounded as the precision stores them (float16, bfloat16: to nearest even, exactly
# what the converters do; int8: 255 steps over each weight tensor's range, the coarser of the converters'
# per-tensor and per-channel grids) is off the oracle by E_w, what the stored weights alone cost. The artifact
# is allowed ARTIFACT_PRECISION_FACTOR[p] * max(E_w, half a unit), plus the float32 bound: the factor counts
# the rounding sources that E_w does not emulate, each at most as large as the weights' own (a first-order
# error is linear in each perturbation, and an activation rounded to the same relative precision perturbs the
# next layer as a weight would): float16, bfloat16: the activations a runtime computing in that precision
# rounds too (2); int8-dynamic: the activations quantized at run time, and per-channel grids that differ from
# ours (4); int8-static: 2, with the floor below counting its quantized activations.
# Where the runtime rounds the activations themselves to the precision (ONNX's float16 graph, OpenVINO's
# bfloat16 arithmetic, int8-static's quantized activations: ``arithmetic``), E_w is taken as at least half a
# unit: an output rounded to the precision costs that much by itself. int8-static re-quantizes the state and
# the gates at every step of the recurrence (a quantize-dequantize pair around each op of the loop), each off
# by up to half a step of its calibrated range; to first order, through a recurrence whose gain is at most 1,
# they add up over the T steps: its floor is T halves of a unit. Weight-only artifacts (LiteRT's and OpenVINO's
# float16, int8-dynamic, whose outputs are float32) get no floor.
ARTIFACT_PRECISION_BITS = {"float16": 11, "bfloat16": 8}
ARTIFACT_PRECISION_FACTOR = {"float16": 2.0, "bfloat16": 2.0, "int8-dynamic": 4.0, "int8-static": 2.0}


def artifact_precision_unit(precision: str, magnitude: float) -> float:
    """One unit of ``precision`` at ``magnitude`` (>= 1): an ulp (float16, bfloat16) or an int8 step."""
    m = max(1.0, float(magnitude))
    if precision in ARTIFACT_PRECISION_BITS:
        return 2.0 ** (math.floor(math.log2(m)) + 1 - ARTIFACT_PRECISION_BITS[precision])
    if precision in ("int8-dynamic", "int8-static"):
        return m / 127.0
    raise ValueError(f"unknown reduced precision {precision!r}; expected one of "
                     f"{', '.join(ARTIFACT_PRECISION_FACTOR)}")


def artifact_precision_bound(precision: str, weight_error: float, magnitude: float, *,
                             arithmetic: bool, steps: int = 1) -> Bound:
    """The absolute bound for an artifact in ``precision`` against the oracle (see above): ``weight_error`` is
    E_w, the rounded-weights oracle's distance from the oracle; ``magnitude`` max |oracle output|;
    ``arithmetic``: whether the runtime rounds activations to the precision too; ``steps``: the sequences'
    length (int8-static's floor)."""
    unit = artifact_precision_unit(precision, magnitude)
    floor = (max(1, steps) if precision == "int8-static" else 1) * unit / 2 if arithmetic else 0.0
    value = (ARTIFACT_PRECISION_FACTOR[precision] * max(float(weight_error), floor)
             + FLOAT32_ABS * max(1.0, float(magnitude)))
    return Bound("abs", value, f"{precision}: {ARTIFACT_PRECISION_FACTOR[precision]:g} x E_w"
                               + (f", E_w at least {floor / unit:g} unit," if floor else "") + " + the float32 bound")


# ---- Reduced precision and quantized models (`bilstm verify` of a mixed_float16, mixed_bfloat16, float16,
# bfloat16 or Keras-quantized model; keras_impl/verify/precision.py). Each bound is in the units of the arithmetic
# that causes the error, derived below and in docs/verify.md ("Reduced precision"); every layer is compared on
# Keras's own inputs to it, so that a bound is the layer's own and errors from upstream do not count twice.

def reduced_precision_bound(terms: int) -> float:
    """A float16/bfloat16 layer's error against the oracle on the same weights and inputs, in ulps of the 16-bit
    format at the layer's largest output ``max |y|``: ``1 + sqrt(terms) / 4``.

    Half an ulp for rounding the output itself, half for its activation's own rounding (tanh, sigmoid, softmax
    in 16 bits); then each of the ``terms`` products and sums that feed one output (fan_in x steps: the
    inputs and recurrent units of a cell over the timesteps; 0 for a lookup) is rounded within half an ulp of
    its own size. Those errors are independent and centred (uniform within half an ulp: standard deviation
    ulp/sqrt(12) each); the terms are smaller than the output they add up to, typically by sqrt(terms), so
    their sum stays within sqrt(terms)/4 ulps of the output, where the worst case (every term as large as the
    output, all rounding one way) would be sqrt(terms)/2 x sqrt(terms). Measured on the CPU (float16 and
    bfloat16, three backends, docs/verify.md): 0.2 to 0.6 ulp for an Embedding and a softmax Dense (bounds 1
    and 1.79), 1.1 to 1.6 for a Bidirectional LSTM of 11 inputs x 7 steps (bound 3.19); a bfloat16
    computation held to float16's ulp is 8 times its own and fails.
    """
    return 1.0 + (max(terms, 0) ** 0.5) / 4


# How much an activation can stretch an error of its input (its Lipschitz constant in the max norm): softmax's
# Jacobian p_k (delta_kj - p_j) sums to 2 p_k (1 - p_k) <= 1/2 over a row; tanh' <= 1, sigmoid' <= 1/4;
# silu' <= 1.1, gelu' <= 1.13 (their maxima), selu's slope is scale x alpha = 1.7581 below 0. An activation not
# listed has no quantized bound here (verify refuses the quantized layer that uses it, by name).
ACTIVATION_STRETCH = {"linear": 1.0, "relu": 1.0, "relu6": 1.0, "leaky_relu": 1.0, "elu": 1.0, "softplus": 1.0,
                      "softsign": 1.0, "tanh": 1.0, "sigmoid": 0.25, "hard_sigmoid": 1 / 6, "softmax": 0.5,
                      "silu": 1.1, "swish": 1.1, "gelu": 1.13, "selu": 1.7581}


def quantized_weights_bound(activation: str = "linear") -> float:
    """The error of a layer's quantized weights (the oracle on the float weights against the oracle on the
    dequantized ones, same inputs), in half quantisation steps, a hard bound: rounding to the nearest step
    moves each weight by at most half a step (``w - q / s``, ``|.| <= 1 / (2 s)``), so an Embedding's output
    moves by at most one half-step, and a Dense output by at most ``sum_i |x_i| x half-step_i`` (the unit
    precision.py counts it in) times the activation's stretch. Measured up to 0.99 (Embedding rows, int8)."""
    return ACTIVATION_STRETCH[activation]


def int8_inputs_bound(activation: str = "linear") -> float:
    """A Dense int8 layer's arithmetic error (Keras against the oracle on the dequantized weights), in half
    int8 input steps, a hard bound: Keras quantizes each input row to int8 as well (``AbsMaxQuantizer``, one
    step ``max |x_row| / 127``), each input moves by at most half a step, so an output moves by at most
    ``half-step x sum_i |w_ij|`` (the unit) times the activation's stretch; the int8 products sum exactly in
    int32, and float32 rounds the rescaling (QUANTIZED_SLACK_ABS)."""
    return ACTIVATION_STRETCH[activation]


def float8_inputs_bound(activation: str = "linear") -> float:
    """A Dense float8 layer's arithmetic error, in units of half an e4m3 ulp of each input through the weights
    (float8_e4m3fn keeps 3 mantissa bits: an input rounds within 2^-4 of itself, or 2^-10 of the scale below
    2^-6), a hard bound as ``int8_inputs_bound``."""
    return ACTIVATION_STRETCH[activation]


# Added to every quantized layer's allowance: Keras rescales in float32 (q / s, the bias, the activation) and
# quantized in float32 (round(w * s)), a few float32 ulps; the float32 verify bound, scaled by max(1, max|y|).
QUANTIZED_SLACK_ABS = FLOAT32_ABS
