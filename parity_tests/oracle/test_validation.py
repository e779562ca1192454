"""Bad input to the oracle: a ValueError or TypeError that names the argument and shows received vs expected.

Every case states the error type and a regular expression the message must
match: the argument's name, what was received and what was expected. Nothing
is silently broadcast: a (4U, 1) bias, a (1, T) mask or a (U,) state fails.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import reference


B, T, D, U = 3, 7, 4, 5


def weights(rng, features=D, units=U):
    return [rng.uniform(-0.5, 0.5, size=s) for s in ((features, 4 * units), (units, 4 * units), (4 * units,))]


POSITIONAL = ("x", "kernel", "recurrent_kernel", "bias")


def run_lstm(rng, **changes):
    """``lstm_forward`` on valid arguments except those in ``changes`` (positional or keyword)."""
    args = dict(zip(POSITIONAL, (rng.normal(size=(B, T, D)), *weights(rng))))
    args |= {k: v for k, v in changes.items() if k in POSITIONAL}
    kwargs = {k: v for k, v in changes.items() if k not in POSITIONAL}
    return reference.lstm_forward(*(args[k] for k in POSITIONAL), **kwargs)


def with_value(array, index, value):
    array = np.array(array, dtype=float)
    array[index] = value
    return array


# (argument changes, exception, message pattern): each pattern names the argument, the value received
# and what was expected.
LSTM_CASES = {
    "x_rank_2": (lambda r: dict(x=r.normal(size=(B, T))), ValueError, r"x must have rank 3.*got shape \(3, 7\)"),
    "x_rank_4": (lambda r: dict(x=r.normal(size=(B, T, D, 1))), ValueError, r"x must have rank 3.*\(3, 7, 4, 1\)"),
    "x_feature_count": (lambda r: dict(x=r.normal(size=(B, T, D + 2))), ValueError,
                        r"kernel must have shape \(6, 20\) = \(features, 4\*units\) for x with 6 features and units=5, got \(4, 20\)"),
    "x_empty_time": (lambda r: dict(x=np.zeros((B, 0, D))), ValueError, r"x must be a non-empty.*\(3, 0, 4\)"),
    "x_empty_batch": (lambda r: dict(x=np.zeros((0, T, D))), ValueError, r"x must be a non-empty.*\(0, 7, 4\)"),
    "x_nan": (lambda r: dict(x=with_value(r.normal(size=(B, T, D)), (1, 2, 3), np.nan)), ValueError,
              r"x must be finite, found nan at index \(1, 2, 3\)"),
    "x_inf": (lambda r: dict(x=with_value(r.normal(size=(B, T, D)), (0, 6, 0), -np.inf)), ValueError,
              r"x must be finite, found -inf at index \(0, 6, 0\)"),
    "x_string": (lambda r: dict(x="abc"), TypeError, r"x must be a numeric array, got str 'abc'"),
    "x_none": (lambda r: dict(x=None), TypeError, r"x must be a numeric array, got NoneType"),
    "x_strings_array": (lambda r: dict(x=np.full((B, T, D), "1.0")), TypeError, r"x must hold real numbers.*dtype <U3"),
    "x_object_array": (lambda r: dict(x=r.normal(size=(B, T, D)).astype(object)), TypeError,
                       r"x must hold real numbers.*dtype object"),
    "x_bool_array": (lambda r: dict(x=np.ones((B, T, D), bool)), TypeError, r"x must hold real numbers.*dtype bool"),
    "x_complex": (lambda r: dict(x=np.ones((B, T, D), complex)), TypeError, r"x must hold real numbers.*complex128"),
    "x_ragged": (lambda r: dict(x=[[[1.0, 2.0]], [[1.0]]]), TypeError, r"x must be a numeric array, got list"),
    "kernel_columns": (lambda r: dict(kernel=r.normal(size=(D, 4 * U + 1))), ValueError,
                       r"kernel must have shape \(4, 20\).*got \(4, 21\)"),
    "kernel_rank_3": (lambda r: dict(kernel=r.normal(size=(1, D, 4 * U))), ValueError,
                      r"kernel must have rank 2, got shape \(1, 4, 20\)"),
    "kernel_nan": (lambda r: dict(kernel=with_value(r.normal(size=(D, 4 * U)), (2, 7), np.nan)), ValueError,
                   r"kernel must be finite, found nan at index \(2, 7\)"),
    "kernel_bool": (lambda r: dict(kernel=np.ones((D, 4 * U), bool)), TypeError, r"kernel must hold real numbers.*bool"),
    "recurrent_not_4u": (lambda r: dict(recurrent_kernel=r.normal(size=(U, 3 * U))), ValueError,
                         r"recurrent_kernel must have shape \(units, 4\*units\) with units >= 1 for the lstm cell, got \(5, 15\)"),
    "recurrent_transposed": (lambda r: dict(recurrent_kernel=r.normal(size=(4 * U, U))), ValueError,
                             r"recurrent_kernel must have shape \(units, 4\*units\) with units >= 1 for the lstm cell, got \(20, 5\)"),
    "recurrent_rank_1": (lambda r: dict(recurrent_kernel=r.normal(size=4 * U)), ValueError,
                         r"recurrent_kernel must have rank 2.*got shape \(20,\)"),
    "recurrent_zero_units": (lambda r: dict(kernel=np.zeros((D, 0)), recurrent_kernel=np.zeros((0, 0)),
                                            bias=np.zeros(0)), ValueError,
                             r"recurrent_kernel must have shape \(units, 4\*units\) with units >= 1 for the lstm cell, got \(0, 0\)"),
    "recurrent_inf": (lambda r: dict(recurrent_kernel=with_value(r.normal(size=(U, 4 * U)), (0, 0), np.inf)),
                      ValueError, r"recurrent_kernel must be finite, found inf"),
    "bias_column": (lambda r: dict(bias=r.normal(size=(4 * U, 1))), ValueError,
                    r"bias must have shape \(20,\), got \(20, 1\)"),
    "bias_short": (lambda r: dict(bias=r.normal(size=4 * U - 1)), ValueError, r"bias must have shape \(20,\), got \(19,\)"),
    "bias_scalar": (lambda r: dict(bias=0.5), ValueError, r"bias must have shape \(20,\), got \(\)"),
    "bias_text": (lambda r: dict(bias="b"), TypeError, r"bias must be a numeric array, got str"),  # None: use_bias=False
    "states_one": (lambda r: dict(initial_state=[np.zeros((B, U))]), ValueError,
                   r"initial_state must hold 2 arrays \[h, c\], got 1"),
    "states_three": (lambda r: dict(initial_state=[np.zeros((B, U))] * 3), ValueError,
                     r"initial_state must hold 2 arrays \[h, c\], got 3"),
    "states_one_array": (lambda r: dict(initial_state=np.zeros((2, B, U))), TypeError,
                         r"initial_state must be a list of 2 arrays \[h, c\], got ndarray"),
    "state_unbatched": (lambda r: dict(initial_state=[np.zeros(U), np.zeros((B, U))]), ValueError,
                        r"initial_state\[0\] \(h\) must have shape \(3, 5\), got \(5,\)"),
    "state_batch_1": (lambda r: dict(initial_state=[np.zeros((B, U)), np.zeros((1, U))]), ValueError,
                      r"initial_state\[1\] \(c\) must have shape \(3, 5\), got \(1, 5\)"),
    "state_nan": (lambda r: dict(initial_state=[np.zeros((B, U)), with_value(np.zeros((B, U)), (2, 4), np.nan)]),
                  ValueError, r"initial_state\[1\] \(c\) must be finite, found nan at index \(2, 4\)"),
    "state_none": (lambda r: dict(initial_state=[None, np.zeros((B, U))]), TypeError,
                   r"initial_state\[0\] \(h\) must be a numeric array, got NoneType"),
    "mask_one_row": (lambda r: dict(mask=np.ones((1, T), bool)), ValueError,
                     r"mask must have shape \(batch, time\) = \(3, 7\), got \(1, 7\)"),
    "mask_features_axis": (lambda r: dict(mask=np.ones((B, T, 1), bool)), ValueError,
                           r"mask must have shape \(batch, time\) = \(3, 7\), got \(3, 7, 1\)"),
    "mask_transposed": (lambda r: dict(mask=np.ones((T, B), bool)), ValueError,
                        r"mask must have shape \(batch, time\) = \(3, 7\), got \(7, 3\)"),
    "mask_fractions": (lambda r: dict(mask=np.full((B, T), 0.5)), TypeError,
                       r"mask must be boolean \(or 0/1 numbers\), got dtype float64"),
    "mask_strings": (lambda r: dict(mask=np.full((B, T), "1")), TypeError, r"mask must be boolean.*got dtype <U1"),
    "mask_nan": (lambda r: dict(mask=np.full((B, T), np.nan)), TypeError, r"mask must be boolean.*float64"),
    "flag_string": (lambda r: dict(go_backwards="yes"), TypeError, r"go_backwards must be True or False, got 'yes'"),
    "flag_int": (lambda r: dict(return_sequences=1), TypeError, r"return_sequences must be True or False, got 1"),
}


@pytest.mark.parametrize("case", list(LSTM_CASES))
def test_lstm_forward_rejects(rng, case):
    changes, error, pattern = LSTM_CASES[case]
    with pytest.raises(error, match=pattern):
        run_lstm(rng, **changes(rng))


def test_lstm_forward_accepts_the_good_arguments(rng):
    """The baseline of the cases above is valid: each case fails for the one thing it changes."""
    out = run_lstm(rng, initial_state=[np.zeros((B, U))] * 2, mask=np.ones((B, T), int), return_sequences=True)
    assert out.shape == (B, T, U)


def bidirectional(rng, *, fwd=None, bwd=None, **kwargs):
    x = kwargs.pop("x", rng.normal(size=(B, T, D)))
    return reference.bidirectional_forward(x, weights(rng) if fwd is None else fwd,
                                           weights(rng) if bwd is None else bwd, **kwargs)


BIDIRECTIONAL_CASES = {
    "units_disagree": (lambda r: dict(bwd=weights(r, units=U + 1)), ValueError,
                       r"the two directions must have the same units: forward_weights has 5, backward_weights has 6"),
    "backward_features": (lambda r: dict(bwd=weights(r, features=D + 1)), ValueError,
                          r"backward_weights\.kernel must have shape \(4, 20\) = \(features, 4\*units\) for x with 4 features.*got \(5, 20\)"),
    "forward_bias_column": (lambda r: dict(fwd=[*weights(r)[:2], np.zeros((4 * U, 1))]), ValueError,
                            r"forward_weights\.bias must have shape \(20,\), got \(20, 1\)"),
    "forward_pair": (lambda r: dict(fwd=weights(r)[:2]), TypeError,
                     r"forward_weights must be a \(kernel, recurrent_kernel, bias\) triple, got 2 items"),
    "backward_dict": (lambda r: dict(bwd={"kernel": 0}), TypeError,
                      r"backward_weights must be a \(kernel, recurrent_kernel, bias\) triple, got dict"),
    "merge_unknown": (lambda r: dict(merge_mode="max"), ValueError,
                      r"unknown merge_mode 'max'; expected one of 'concat', 'sum', 'ave', 'mul', None"),
    "merge_case": (lambda r: dict(merge_mode="Concat"), ValueError, r"unknown merge_mode 'Concat'"),
    "states_two": (lambda r: dict(initial_state=[np.zeros((B, U))] * 2), ValueError,
                   r"initial_state must hold 4 arrays \[h_f, c_f, h_b, c_b\], got 2"),
    "state_h_b_shape": (lambda r: dict(initial_state=[np.zeros((B, U))] * 2 + [np.zeros((B, U + 1)), np.zeros((B, U))]),
                        ValueError, r"initial_state\[2\] \(h_b\) must have shape \(3, 5\), got \(3, 6\)"),
    "mask_shape": (lambda r: dict(mask=np.ones((B, T + 1), bool)), ValueError,
                   r"mask must have shape \(batch, time\) = \(3, 7\), got \(3, 8\)"),
    "x_empty_time": (lambda r: dict(x=np.zeros((B, 0, D))), ValueError, r"x must be a non-empty.*\(3, 0, 4\)"),
    "x_object": (lambda r: dict(x=np.array([[["a"] * D] * T] * B, dtype=object)), TypeError,
                 r"x must hold real numbers.*object"),
    "flag_string": (lambda r: dict(return_state="no"), TypeError, r"return_state must be True or False, got 'no'"),
}


@pytest.mark.parametrize("case", list(BIDIRECTIONAL_CASES))
def test_bidirectional_forward_rejects(rng, case):
    changes, error, pattern = BIDIRECTIONAL_CASES[case]
    with pytest.raises(error, match=pattern):
        bidirectional(rng, **changes(rng))


SPEC_CASES = {
    "timesteps_zero": (dict(timesteps=0), ValueError, r"timesteps must be a positive integer, got 0"),
    "timesteps_float": (dict(timesteps=2.5), ValueError, r"timesteps must be a positive integer, got 2\.5"),
    "features_negative": (dict(features=-1), ValueError, r"features must be a positive integer, got -1"),
    "features_bool": (dict(features=True), ValueError, r"features must be a positive integer, got True"),
    "units_zero": (dict(units=0), ValueError, r"units\[0\] must be a positive integer, got 0"),
    "units_empty": (dict(units=()), ValueError, r"units must be a positive integer or a non-empty tuple.*got \(\)"),
    "units_string": (dict(units="20"), ValueError, r"units must be a positive integer or a non-empty tuple.*got '20'"),
    "units_list": (dict(units=[20, 20]), ValueError, r"units must be .*tuple.*got \[20, 20\]"),
    "units_second_zero": (dict(units=(20, 0)), ValueError, r"units\[1\] must be a positive integer, got 0"),
    "direction_unknown": (dict(direction="left"), ValueError,
                          r"unknown direction 'left'; expected one of 'forward', 'backward', 'bidirectional'"),
    "merge_unknown": (dict(merge_mode="max"), ValueError, r"unknown merge_mode 'max'; expected one of 'concat'"),
    "merge_none_in_model": (dict(merge_mode=None), ValueError,
                            r"unknown merge_mode None; expected one of 'concat', 'sum', 'ave', 'mul'"),
    "mask_value_string": (dict(mask_value="0"), TypeError, r"mask_value must be a finite number or None, got '0'"),
    "mask_value_bool": (dict(mask_value=True), TypeError, r"mask_value must be a finite number or None, got True"),
    "mask_value_nan": (dict(mask_value=float("nan")), ValueError, r"mask_value must be a finite number or None, got nan"),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_model_spec_rejects(case):
    fields, error, pattern = SPEC_CASES[case]
    with pytest.raises(error, match=pattern):
        reference.ModelSpec(**fields)


def test_model_spec_accepts_numpy_scalars():
    spec = reference.ModelSpec(timesteps=np.int64(4), units=(np.int32(3), 2), mask_value=np.float32(0.5))
    assert spec.layer_units == (3, 2)
    assert type(spec.mask_value) is float and spec.mask_value == 0.5


SPEC = reference.ModelSpec(timesteps=T, features=D, units=(U, 6), merge_mode="sum")
MASKED_SPEC = reference.ModelSpec(timesteps=T, features=D, units=U, mask_value=0.0)


def model_call(rng, spec=SPEC, **changes):
    default_weights = reference.random_weights(spec if isinstance(spec, reference.ModelSpec) else SPEC, rng)
    args = dict(weights=default_weights, x=rng.normal(size=(B, T, D)), mask=None) | changes
    return reference.model_forward(spec, args["weights"], args["x"], args["mask"])


MODEL_CASES = {
    "weights_one_short": (lambda r: dict(weights=reference.random_weights(SPEC, r)[:-1]), ValueError,
                          r"weights must hold 14 arrays for BiLSTM\[sum\].*, got 13"),
    "weights_one_extra": (lambda r: dict(weights=reference.random_weights(SPEC, r) + [np.zeros(1)]), ValueError,
                          r"weights must hold 14 arrays .*got 15"),
    "weights_not_a_list": (lambda r: dict(weights=np.zeros(14)), TypeError,
                           r"weights must be a list of 14 arrays in get_weights\(\) order, got ndarray"),
    "weights_bias_column": (lambda r: dict(weights=[w[:, None] if k == 2 else w for k, w in
                                                    enumerate(reference.random_weights(SPEC, r))]), ValueError,
                            r"weights\[2\] \(bias\) must have shape \(20,\), got \(20, 1\)"),
    "weights_swapped_layers": (lambda r: dict(weights=reference.random_weights(SPEC, r)[6:12]
                                              + reference.random_weights(SPEC, r)[:6]
                                              + reference.random_weights(SPEC, r)[12:]), ValueError,
                               r"weights\[0\] \(kernel\) must have shape \(4, 20\), got \(5, 24\)"),
    "dense_nan": (lambda r: dict(weights=reference.random_weights(SPEC, r)[:-1] + [np.array([np.nan])]), ValueError,
                  r"weights\[13\] \(dense_bias\) must be finite"),
    "x_features": (lambda r: dict(x=r.normal(size=(B, T, D + 1))), ValueError,
                   r"x must have 4 features for BiLSTM\[sum\].*got shape \(3, 7, 5\)"),
    "x_rank": (lambda r: dict(x=r.normal(size=(T, D))), ValueError, r"x must have rank 3.*got shape \(7, 4\)"),
    "mask_shape": (lambda r: dict(mask=np.ones((B, 1), bool)), ValueError,
                   r"mask must have shape \(batch, time\) = \(3, 7\), got \(3, 1\)"),
    "spec_not_a_spec": (lambda r: dict(spec={"units": 20}), TypeError, r"spec must be a ModelSpec, got dict"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_model_forward_rejects(rng, case):
    changes, error, pattern = MODEL_CASES[case]
    with pytest.raises(error, match=pattern):
        model_call(rng, **changes(rng))


def test_model_forward_rejects_a_mask_with_a_masking_spec(rng):
    with pytest.raises(ValueError, match=r"mask must be None when the spec has a Masking layer.*got an array"):
        model_call(rng, spec=MASKED_SPEC, weights=reference.random_weights(MASKED_SPEC, rng),
                   mask=np.ones((B, T), bool))


def test_messages_name_the_argument_first():
    """A spot check of the common form '<argument> must ..., got ...' (readable in a traceback)."""
    with pytest.raises(ValueError) as info:
        reference.lstm_forward(np.zeros((B, T, D)), np.zeros((D, 4 * U)), np.zeros((U, 4 * U)), np.zeros(4 * U + 2))
    assert re.match(r"^bias must .*, got \(22,\)$", str(info.value))


# ------------------------------------------------------------------------------------ Adam's settings

ADAM_CASES = {
    "learning_rate_negative": (dict(learning_rate=-1e-3), ValueError, r"learning_rate must be > 0 .*got -0.001"),
    "learning_rate_zero": (dict(learning_rate=0.0), ValueError, r"learning_rate must be > 0 .*got 0.0"),
    "learning_rate_nan": (dict(learning_rate=float("nan")), ValueError, r"learning_rate must be finite, got nan"),
    "learning_rate_string": (dict(learning_rate="0.001"), TypeError, r"learning_rate must be a real number, got str"),
    "learning_rate_bool": (dict(learning_rate=True), TypeError, r"learning_rate must be a real number, got bool"),
    "learning_rate_array": (dict(learning_rate=np.array([1e-3])), TypeError,
                            r"learning_rate must be a real number, got ndarray"),
    "learning_rate_complex": (dict(learning_rate=1e-3 + 0j), TypeError, r"learning_rate must be a real number, got complex"),
    "epsilon_negative": (dict(epsilon=-1e-7), ValueError, r"epsilon must be > 0 .*got -1e-07"),
    "epsilon_zero": (dict(epsilon=0.0), ValueError, r"epsilon must be > 0 .*got 0.0"),
    "epsilon_inf": (dict(epsilon=np.inf), ValueError, r"epsilon must be finite, got inf"),
    "beta_1_one": (dict(beta_1=1.0), ValueError, r"beta_1 and beta_2 must lie in \[0, 1\), got beta_1=1.0"),
    "beta_2_negative": (dict(beta_2=np.float32(-0.5)), ValueError, r"beta_2=-0.5"),
    "iterations_negative": (dict(iterations=-1), ValueError, r"iterations must be an integer >= 0, got -1"),
    "betas_through_float32_string": (dict(betas_through_float32="yes"), TypeError,
                                     r"betas_through_float32 must be True or False, got 'yes'"),
}


@pytest.mark.parametrize("case", list(ADAM_CASES))
def test_adam_rejects(case):
    settings, error, pattern = ADAM_CASES[case]
    with pytest.raises(error, match=pattern):
        reference.Adam(**settings)


def test_adam_accepts_numpy_real_scalars_and_steps_as_with_python_floats():
    rng = np.random.default_rng(5)
    w, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    numpy_adam = reference.Adam(learning_rate=np.float32(1e-3), beta_1=np.float64(0.9), beta_2=np.float32(0.999),
                                epsilon=np.float64(1e-7), iterations=np.int64(0))
    python_adam = reference.Adam(learning_rate=float(np.float32(1e-3)), beta_1=0.9, beta_2=float(np.float32(0.999)),
                                 epsilon=1e-7)
    assert type(numpy_adam.learning_rate) is float and type(numpy_adam.iterations) is int
    a, b = numpy_adam.apply([w.copy()], [g])[0], python_adam.apply([w.copy()], [g])[0]
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - w).max() > 1e-4  # it took a step
    assert reference.Adam(learning_rate=np.int64(1)).learning_rate == 1.0
