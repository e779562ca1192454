"""The oracle's BPTT against central finite differences, in float64, for every weight and the input.

No Keras here (the oracle is checked against itself before it is checked
against any backend). For each model kind (LSTM, LSTM with go_backwards,
Bidirectional with each merge mode), each mask source (none, a ``mask``
argument, a Masking layer) and one or two stacked layers, every entry of every
weight tensor and of the input is perturbed, and the loss is
``reference.binary_crossentropy`` (masked mean where a mask exists), so the
loss's own gradient is checked on the way.

The stencil is the fourth-order central difference

    f'(w) ~ (f(w - 2h) - 8 f(w - h) + 8 f(w + h) - f(w + 2h)) / (12 h),   h = 1e-3

whose truncation (h^4) and rounding (1e-16 / h) errors both stay near 1e-12:
the plain two-point difference cannot resolve the small gradients of a
stacked ``mul`` model to 1e-6 relative.

Sizes are tiny so that the whole file runs in seconds: B=4, T=5, D=2, U=3
(then 6 for the second layer). One batch holds every mask pattern at once:
row 0 right-padded, row 1 left-padded, row 2 with holes, row 3 fully masked.
"""
from __future__ import annotations

import numpy as np
import pytest

import reference
from keras_impl.parity.tolerances import GRADCHECK_REL


B, T, D = 4, 5, 2
MIXED_MASK = np.array([[1, 1, 1, 0, 0],    # right padding
                       [0, 0, 1, 1, 1],    # left padding
                       [1, 0, 1, 1, 0],    # holes
                       [0, 0, 0, 0, 0]],   # a fully masked row
                      dtype=bool)
KINDS = {
    "lstm": dict(direction="forward"),
    "lstm_go_backwards": dict(direction="backward"),
    **{f"bidirectional_{m}": dict(direction="bidirectional", merge_mode=m) for m in ("concat", "sum", "ave", "mul")},
}
MASK_SOURCES = ("no_mask", "mask_argument", "masking_layer")
DEPTHS = {"one_layer": 3, "two_layers": (3, 6)}
# Entries checked per tensor: all of them for one layer; a random dozen per tensor when stacked,
# where the full sweep would take half a minute a backend.
ENTRIES = {"one_layer": None, "two_layers": 12}
STEP = 1e-3


def numeric_gradient(loss, array: np.ndarray, indices, step: float = STEP) -> np.ndarray:
    """d loss / d array at ``indices`` by the fourth-order central stencil, perturbing ``array`` in place.

    Entries not in ``indices`` stay 0 in the result.
    """
    grad = np.zeros_like(array)
    for index in indices:
        original = array[index]
        values = []
        for offset in (-2, -1, 1, 2):
            array[index] = original + offset * step
            values.append(loss())
        array[index] = original
        grad[index] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * step)
    return grad


def chosen_indices(shape, limit: int | None, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Every index of ``shape``, or ``limit`` of them drawn at random (the stacked cases, to stay fast)."""
    every = list(np.ndindex(shape))
    if limit is None or len(every) <= limit:
        return every
    return [every[k] for k in sorted(rng.choice(len(every), size=limit, replace=False))]


def relative_error(numeric: np.ndarray, analytic: np.ndarray, indices) -> float:
    """max |numeric - analytic| / max |gradient| over ``indices``."""
    rows = tuple(np.array(indices).T)
    numeric, analytic = numeric[rows], analytic[rows]
    scale = max(np.abs(numeric).max(), np.abs(analytic).max())
    return float(np.abs(numeric - analytic).max() / scale) if scale > 0 else 0.0


def make_case(kind: str, mask_source: str, depth: str, rng: np.random.Generator):
    spec = reference.ModelSpec(timesteps=T, features=D, units=DEPTHS[depth], **KINDS[kind],
                               mask_value=0.0 if mask_source == "masking_layer" else None)
    weights = reference.random_weights(spec, rng)
    x = rng.normal(size=(B, T, D))  # (B, T, D)
    y = (rng.random((B, T, 1)) < 0.5).astype(np.float64)  # (B, T, 1)
    mask = None
    if mask_source == "mask_argument":
        mask = MIXED_MASK
    elif mask_source == "masking_layer":
        x[~MIXED_MASK] = 0.0  # the padding the Masking layer will find
    return spec, weights, x, y, mask


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("mask_source", MASK_SOURCES)
@pytest.mark.parametrize("kind", KINDS)
def test_gradients_match_finite_differences(kind, mask_source, depth, rng):
    spec, weights, x, y, mask = make_case(kind, mask_source, depth, rng)
    _, grads, dx = reference.loss_grads_and_input_grad(spec, weights, x, y, mask)

    def loss() -> float:
        return reference.binary_crossentropy(y, reference.model_forward(spec, weights, x, mask), _loss_mask(spec, x, mask))

    errors = {}
    for k, (role, _) in enumerate(spec.weight_roles()):
        indices = chosen_indices(weights[k].shape, ENTRIES[depth], rng)
        errors[f"weights[{k}] {role}"] = relative_error(numeric_gradient(loss, weights[k], indices), grads[k], indices)
    indices = chosen_indices(x.shape, ENTRIES[depth], rng)
    if mask_source == "masking_layer":
        # A masked step of a Masking model is not differentiable in x (a small change unmasks it);
        # Keras's autodiff gives 0 there, through x * mask, and so must the oracle.
        assert np.all(dx[~MIXED_MASK] == 0.0), "dx must be exactly 0 at steps the Masking layer masks"
        indices = [index for index in indices if MIXED_MASK[index[:2]]]
    errors["x"] = relative_error(numeric_gradient(loss, x, indices), dx, indices)
    failing = {name: err for name, err in errors.items() if not err <= GRADCHECK_REL}
    assert not failing, f"{spec.describe()}: relative error above {GRADCHECK_REL}: {failing}"


def _loss_mask(spec, x, mask):
    """The mask that reaches the loss: the Masking layer's (from x) or the given one."""
    return np.any(x != spec.mask_value, axis=-1) if spec.mask_value is not None else mask


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_with_no_valid_step_has_zero_loss_and_gradients(kind, rng):
    # Keras divides the masked sum by the number of valid steps with divide_no_nan: 0 / 0 -> 0.
    spec, weights, x, y, _ = make_case(kind, "mask_argument", "one_layer", rng)
    loss, grads, dx = reference.loss_grads_and_input_grad(spec, weights, x, y, np.zeros((B, T), bool))
    assert loss == 0.0
    assert all(np.all(g == 0.0) for g in grads), "every gradient must be exactly 0"
    assert np.all(dx == 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_have_the_weights_order_and_shapes(kind, rng):
    spec, weights, x, y, _ = make_case(kind, "no_mask", "two_layers", rng)
    _, grads = reference.loss_and_grads(spec, weights, x, y)
    assert [g.shape for g in grads] == spec.weight_shapes()
    assert all(g.dtype == np.float64 and np.any(g != 0.0) for g in grads)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "go_backwards"])
@pytest.mark.parametrize("initial_output", ["h0", "zeros"])
def test_lstm_backward_matches_finite_differences_in_both_conventions(initial_output, go_backwards, rng):
    """BPTT of one LSTM with a non-zero initial state, every mask pattern, and either ``initial_output``:
    outputs before a row's first valid step are constants (h0 or 0), so no weight gradient flows through them."""
    from reference.recurrent import run_cell
    U = 3
    kernel, recurrent, bias = (rng.uniform(-0.6, 0.6, size=s) for s in ((D, 4 * U), (U, 4 * U), (4 * U,)))
    x, h0, c0 = rng.normal(size=(B, T, D)), rng.uniform(-0.8, 0.8, (B, U)), rng.uniform(-0.8, 0.8, (B, U))
    target = rng.normal(size=(B, T, U))  # loss = sum(out * target): every output counts, with its own weight

    def loss() -> float:
        out, _, _ = run_cell(reference.Cell("lstm"), x, (kernel, recurrent, bias), (h0, c0), MIXED_MASK,
                             go_backwards=go_backwards, initial_output=initial_output, keep_cache=False)
        return float(np.sum(out * target))

    out, _, cache = run_cell(reference.Cell("lstm"), x, (kernel, recurrent, bias), (h0, c0), MIXED_MASK,
                             go_backwards=go_backwards, initial_output=initial_output)
    analytic = reference.lstm_backward(cache, kernel, recurrent, target)  # dout = target, processing order
    for name, array, grad in zip(("kernel", "recurrent_kernel", "bias", "x"), (kernel, recurrent, bias, x), analytic):
        indices = list(np.ndindex(array.shape))
        err = relative_error(numeric_gradient(loss, array, indices), grad, indices)
        assert err <= GRADCHECK_REL, f"{name}: relative error {err:.3g} (initial_output={initial_output!r})"

