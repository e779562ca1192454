"""The oracle's fast paths held to the literal equations they stand for (NumPy alone).

Each fast path (fewer, larger NumPy calls into reused buffers) must give what its literal form gives, to
rounding: a convolution's windows multiplied a few output rows at a time, or with the kernel's first axis taken
as columns of the product and summed over shifted rows after it, against the sum over kernel taps of shifted
inputs; pooling reduced one window offset at a time against the reduction of every window's own axes;
the whole-array erf (gelu's) against ``math.erf`` entry by entry; the LSTM loop that computes a step on its
valid rows only (the rows sorted so that those lead) against the loop over every row, forward and BPTT;
MultiHeadAttention over the sequence (head-major products, a softmax in place, a few batch rows at a time)
against one einsum each way and a whole-array softmax, alone and inside the layer; a batch of rows times a
kernel as one product against each row's own product.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from keras_impl.parity.tolerances import FLOAT64_SELF_ABS
from reference import gru_inference, lstm_fused, random_arrays, rnn
from reference.gru import STEPS as GRU_STEPS
from reference.cells import Cell, CellWeights
from reference.activations import activate
from reference.erf import erf
from reference.layers import Layer, attention, convolutional, layer_forward, pooling
from reference.layers.attention import MASKED_SCORE
from reference.layers.convolutional import convolve
from reference.products import last_axis_product


def conv_by_taps(x, kernel, strides, dilation):
    """The literal "valid" convolution: for every tap, the input shifted by the tap (every s-th position) times
    that tap's (C, F) slice of the kernel, summed over the taps."""
    rank = kernel.ndim - 2
    out = [(n - (k - 1) * d - 1) // s + 1 for n, k, s, d in zip(x.shape[1:-1], kernel.shape[:rank], strides, dilation)]
    y = np.zeros((x.shape[0], *out, kernel.shape[-1]))
    for tap in itertools.product(*(range(k) for k in kernel.shape[:rank])):
        shifted = x[(slice(None),) + tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                                           for t, d, o, s in zip(tap, dilation, out, strides))]
        y += shifted @ kernel[tap]
    return y


@pytest.mark.parametrize("first_axis_as_columns", [False, True], ids=["one_product", "first_axis_as_columns"])
@pytest.mark.parametrize("buffer_bytes", [1, 700, convolutional.WINDOW_BUFFER_BYTES])
@pytest.mark.parametrize("x_shape, k_shape, strides, dilation", [
    ((3, 11, 4), (3, 4, 5), (2,), (1,)),
    ((2, 9, 8, 3), (3, 2, 3, 4), (2, 1), (1, 2)),
    ((2, 5, 6, 7, 2), (2, 3, 2, 2, 3), (1, 2, 3), (2, 1, 1)),
])
def test_the_windows_times_the_kernel_in_chunks_are_the_sum_over_taps(x_shape, k_shape, strides, dilation,
                                                                      buffer_bytes, first_axis_as_columns, rng,
                                                                      monkeypatch):
    monkeypatch.setattr(convolutional, "WINDOW_BUFFER_BYTES", buffer_bytes)  # 1: one output row a chunk
    # these kernels are too shallow for the first-axis path at its real threshold: taken (or not) at any depth
    monkeypatch.setattr(convolutional, "FIRST_AXIS_COLUMNS_MIN_DEPTH", 1 if first_axis_as_columns else 10 ** 9)
    assert convolutional.first_axis_as_columns(k_shape, len(k_shape) - 2) == (first_axis_as_columns
                                                                              and len(k_shape) > 3)
    x = rng.normal(size=x_shape)
    (kernel,) = random_arrays([k_shape], rng)
    fast = convolve(x, kernel, strides=strides, dilation_rate=dilation)
    literal = conv_by_taps(x, kernel, strides, dilation)
    np.testing.assert_allclose(fast, literal, rtol=1e-12, atol=1e-13)
    # the bias and a row-wise activation applied chunk by chunk while in the cache: the same as after the whole
    bias = rng.normal(size=k_shape[-1])
    finished = convolve(x, kernel, strides=strides, dilation_rate=dilation, bias=bias, activation="softmax")
    np.testing.assert_allclose(finished, activate("softmax", literal + bias), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("x_shape, axes, pool, strides", [
    ((3, 11, 4), (1,), (3,), (2,)),
    ((2, 9, 8, 3), (1, 2), (2, 3), (2, 2)),
    ((2, 3, 7, 6), (2, 3), (3, 2), (1, 3)),  # channels_first: the spatial axes last
    ((2, 5, 6, 7, 2), (1, 2, 3), (2, 3, 2), (3, 1, 2)),
])
@pytest.mark.parametrize("block_bytes", [pooling.POOL_BLOCK_BYTES, 1], ids=["one_block", "a_row_a_block"])
def test_pooling_by_window_offsets_is_the_reduction_of_every_window(x_shape, axes, pool, strides, padding,
                                                                    block_bytes, rng, monkeypatch):
    """Axis by axis, offset by offset, in blocks of output rows (here the whole, or one row at a time)."""
    monkeypatch.setattr(pooling, "POOL_BLOCK_BYTES", block_bytes)
    x = rng.normal(size=x_shape)
    window_axes = tuple(range(-len(pool), 0))
    for ufunc, fill, literal in ((np.maximum, -np.inf, np.max), (np.add, 0.0, np.sum)):
        fast = pooling.reduce_windows(ufunc, x, axes, pool, strides, padding, fill)
        windows = pooling._windows(x, axes, pool, strides, padding, fill)
        np.testing.assert_allclose(fast, literal(windows, axis=window_axes), rtol=1e-13, atol=1e-14)
        assert fast.shape == windows.shape[:x.ndim]


def test_the_whole_array_erf_is_math_erf_to_a_few_ulps(rng):
    x = np.concatenate([np.linspace(-7.0, 7.0, 20000), rng.normal(scale=3.0, size=5000),
                        np.logspace(-300, 1.5, 500), -np.logspace(-300, 1.5, 501),
                        [0.5, -0.5, np.nextafter(0.5, 1), 4.0, -4.0, np.nextafter(4.0, 5), 26.5, -27.0, 1e300]])
    literal = np.array([math.erf(v) for v in x])
    fast = erf(x.reshape(2, -1)).reshape(-1)  # any shape
    assert np.max(np.abs(fast - literal) / np.abs(literal)) < 1e-15  # no entry of x is 0: erf(x) != 0
    np.testing.assert_array_equal(erf(np.array([0.0, -0.0, np.inf, -np.inf])), [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(erf(np.array([-0.0]))[0]) and np.isnan(erf(np.array([np.nan]))[0])
    assert erf(np.zeros((0, 3))).shape == (0, 3)


def test_a_pool_larger_than_its_input_is_refused_as_the_literal_windows_refuse_it(rng):
    x = rng.normal(size=(2, 3, 4))
    with pytest.raises(ValueError, match="window shape cannot be larger"):
        pooling._windows(x, (1,), (4,), (2,), "valid", 0.0)
    with pytest.raises(ValueError, match=r"pool_size \(4,\) is larger than the \(padded\) input"):
        pooling.reduce_windows(np.maximum, x, (1,), (4,), (2,), "valid", -np.inf)


def padded_masks(B: int, T: int, rng) -> dict:
    """(B, T) masks in processing order, each a different kind of padding."""
    lengths = rng.permutation(np.r_[T, rng.integers(1, T, size=B - 2), 0])  # a full row, a fully masked one
    right = np.arange(T)[None] < lengths[:, None]
    holes = right.copy()
    holes[np.argmax(lengths), 1] = False  # a hole in the full row: no order of the rows makes the valid ones lead
    return {"right_padding": right, "right_padding_backwards": right[:, ::-1],
            "mixed_left_and_right": np.where(np.arange(B)[:, None] % 2 == 0, right, right[:, ::-1]),
            "every_row_masked": np.zeros((B, T), bool), "holes": holes}


@pytest.mark.parametrize("mask_name", ["right_padding", "right_padding_backwards", "mixed_left_and_right",
                                       "every_row_masked", "holes"])
@pytest.mark.parametrize("cell", [Cell("lstm"), Cell("lstm", activation="relu", recurrent_activation="hard_sigmoid",
                                                     use_bias=False)], ids=["default", "other_activations"])
def test_the_packed_lstm_loop_computes_only_valid_rows_and_equals_the_loop_over_every_row(mask_name, cell, rng):
    B, T, D, U = 7, 9, 4, 5
    mask = padded_masks(B, T, rng)[mask_name]
    packs = lstm_fused.packing_order(mask) is not None
    # the path under test is the one taken; a mask with holes, or rows padded on either side, takes the masked loop
    assert packs == (mask_name not in ("holes", "mixed_left_and_right"))
    shapes = dict(cell.weight_roles(D, U))
    weights = CellWeights(*(rng.uniform(-0.6, 0.6, shapes[r]) if r in shapes else None
                            for r in ("kernel", "recurrent_kernel", "bias")))
    x = rng.normal(size=(B, T, D))
    states = tuple(rng.uniform(-0.8, 0.8, (B, U)) for _ in "hc")
    dcarried = rng.normal(size=(T, B, U))
    results = []
    for packed in (None, False):  # None: packed where packing_order finds an order; False: every row a step
        carried, final, tape = lstm_fused.run(cell, None, x, weights, states, mask, True, packed=packed)
        inference, final_inference, _ = lstm_fused.run(cell, None, x, weights, states, mask, False, packed=packed)
        np.testing.assert_array_equal(inference, carried)  # the inference loop is the training loop without a tape
        np.testing.assert_array_equal(np.stack(final_inference), np.stack(final))
        grads, dx = lstm_fused.backward(cell, x, mask, tape, weights, dcarried)
        results.append([carried, *final, dx, *(g for g in grads if g is not None)])
    for fast, literal in zip(*results):
        np.testing.assert_allclose(fast, literal, rtol=0, atol=FLOAT64_SELF_ABS * max(1.0, np.abs(literal).max()))
    carried = results[0][0]
    masked = ~mask.T  # (T, B): a masked row carries the state it entered with
    entering = np.concatenate([states[0][None], carried[:-1]])
    np.testing.assert_array_equal(carried[masked], entering[masked])


def test_a_convolutions_relu_in_place_is_the_relu_of_a_fresh_array(rng):
    y = rng.normal(size=(3, 5, 4))
    y[0, 0, 0] = -0.0
    bias = rng.normal(size=4)
    literal = activate("relu", y + bias)
    fast = y.copy() + bias
    convolutional.activate_rows_in_place("relu", fast.reshape(-1, 4))
    np.testing.assert_array_equal(fast, literal)
    assert (fast < 0).sum() == 0 and (literal == 0).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use_bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "holes"])
def test_the_in_place_gru_inference_loop_is_the_literal_loop_bit_for_bit(masked, use_bias, dtype, rng):
    B, T, D, U = 4, 6, 3, 5
    cell = Cell("gru", use_bias=use_bias)
    assert gru_inference.serves(cell) and not gru_inference.serves(Cell("gru", reset_after=False))
    shapes = dict(cell.weight_roles(D, U))
    weights = CellWeights(*(rng.uniform(-0.6, 0.6, shapes[r]).astype(dtype) if r in shapes else None
                            for r in ("kernel", "recurrent_kernel", "bias")))
    x = rng.normal(size=(B, T, D)).astype(dtype)
    h0 = rng.uniform(-0.8, 0.8, (B, U)).astype(dtype)
    mask = rng.random((B, T)) < 0.6 if masked else None
    fast = gru_inference.run(cell, None, x, weights, (h0,), mask, False)
    literal = rnn._literal_loop(cell, GRU_STEPS, x, weights, (h0,), mask, False)
    np.testing.assert_array_equal(fast[0], literal[0])
    np.testing.assert_array_equal(fast[1][0], literal[1][0])
    assert fast[0].dtype == literal[0].dtype and fast[1][0].dtype == literal[1][0].dtype
    inference, _, _ = rnn.run(cell, GRU_STEPS, x, weights, (h0,), mask, keep_cache=False)  # the loop rnn.run takes
    np.testing.assert_array_equal(inference, literal[0].transpose(1, 0, 2))


def attention_by_einsum(Q, K, V, scale, mask, zero_masked):
    """MultiHeadAttention's attention over the sequence as its equations read: (B, T, N, H) projections, one einsum
    each way, masked scores replaced by MASKED_SCORE, the whole array's softmax, zeros where the Softmax layer
    masks -> ((B, T, N, Hv), the weights (B, N, T, S))."""
    scores = np.einsum("bsnh,btnh->bnts", K, Q / scale)
    if mask is not None:
        scores = np.where(mask, scores, MASKED_SCORE)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    weights = e / e.sum(-1, keepdims=True)
    if mask is not None and zero_masked:
        weights = np.where(mask, weights, 0.0)
    return np.einsum("bnts,bsnh->btnh", weights, V), weights


def attention_masks(B: int, T: int, S: int, rng) -> dict:
    """Masks as the layer hands them on, (B | 1, 1, T | 1, S | 1), each with rows that allow nothing."""
    queries = rng.random((B, 1, T, 1)) < 0.7
    values = rng.random((B, 1, 1, S)) < 0.7
    queries[0, 0, 1], values[1] = False, False  # a padded query; a sample whose every value is masked
    given = rng.random((B, 1, T, S)) < 0.5
    given[2, 0, 3] = False
    causal = (np.arange(T)[:, None] >= np.arange(S)[None, :])[None, None]
    return {"none": None, "queries": queries, "values": values, "queries_and_values": queries & values,
            "causal": causal, "given": given, "given_and_causal": given & causal}


def assert_attention_close(fast, literal):
    for f, lit in zip(fast, literal):
        np.testing.assert_allclose(f, lit, rtol=1e-13, atol=1e-13 * np.abs(lit).max())


@pytest.mark.parametrize("zero_masked", [False, True], ids=["fused", "softmax_layer"])
@pytest.mark.parametrize("mask_name", ["none", "queries", "values", "queries_and_values", "causal", "given",
                                       "given_and_causal"])
@pytest.mark.parametrize("buffer_bytes", [1, 2 * 3 * 7 * 9 * 8, attention.SCORES_BUFFER_BYTES],
                         ids=["one_row_a_chunk", "two_rows_a_chunk", "default"])
def test_attention_over_the_sequence_is_the_einsum_form(buffer_bytes, mask_name, zero_masked, rng, monkeypatch):
    B, T, S, N, H, Hv = 5, 7, 9, 3, 4, 6
    monkeypatch.setattr(attention, "SCORES_BUFFER_BYTES", buffer_bytes)
    Q, K, V = 2.0 * rng.normal(size=(B, T, N, H)), 2.0 * rng.normal(size=(B, S, N, H)), rng.normal(size=(B, S, N, Hv))
    mask = attention_masks(B, T, S, rng)[mask_name]
    scale = np.sqrt(float(H))
    literal = attention_by_einsum(Q, K, V, scale, mask, zero_masked)
    fast = attention._attend_over_sequence(Q, K, V, scale, mask, zero_masked, keep_weights=True)
    assert_attention_close(fast, literal)
    out, weights = attention._attend_over_sequence(Q, K, V, scale, mask, zero_masked, keep_weights=False)
    np.testing.assert_array_equal(out, fast[0])  # the weights in a reused buffer: the same output
    assert weights is None and out.shape == (B, T, N, Hv)
    if mask is not None:
        empty = ~np.broadcast_to(mask, (B, 1, T, S)).any(-1)[:, 0]  # (B, T)
        # what sets the two softmax paths apart is there, a row that allows nothing (none when causal alone)
        assert empty.any() == (mask_name != "causal")
        uniform = np.broadcast_to(V.mean(1)[:, None], (B, T, N, Hv))  # every key alike, the masked ones too
        np.testing.assert_allclose(fast[0][empty], 0.0 if zero_masked else uniform[empty], atol=1e-13)


def mha_layer(options, weights, n_inputs):
    roles = ("query", "value", "key", "attention_mask")[:n_inputs]
    return Layer("attention", "MultiHeadAttention", tuple(f"in{k}" for k in range(n_inputs)),
                 {"inputs": roles, **options}, tuple(weights))


@pytest.mark.parametrize("options", [
    {}, {"use_causal_mask": True}, {"dropout": 0.1}, {"return_attention_scores": True}, {"use_gate": True},
    {"use_bias": False, "output_shape": (2, 3)}, {"attention_axes": (-2,), "use_causal_mask": True},
], ids=["fused", "causal", "softmax_layer", "scores_returned", "gate", "no_bias_output_shape", "axes_given"])
@pytest.mark.parametrize("with_masks", [False, True], ids=["no_masks", "masks"])
def test_the_layer_over_its_sequence_takes_the_fast_path_and_gives_the_einsum_forms_result(options, with_masks, rng,
                                                                                          monkeypatch):
    """The layer with the fast path against the same layer with the literal form in its place: the same
    outputs, the weights returned too, through every option around the attention."""
    B, T, S, Dq, Dk, Dv, N, H, Hv = 4, 6, 8, 5, 3, 7, 2, 4, 3
    opts = dict(num_heads=N, key_dim=H, value_dim=Hv, **options)
    bias, gate, out = opts.get("use_bias", True), opts.get("use_gate", False), opts.get("output_shape", (Dq,))
    shapes = [(Dq, N, H), (N, H), (Dk, N, H), (N, H)] + [(Dq, N, Hv), (N, Hv)] * gate + [(Dv, N, Hv), (N, Hv),
                                                                                       (N, Hv, *out), out]
    weights = [w for i, w in enumerate(random_arrays(shapes, rng, scale=1.0)) if bias or i % 2 == 0]
    q, v, k = rng.normal(size=(B, T, Dq)), rng.normal(size=(B, S, Dv)), rng.normal(size=(B, S, Dk))
    inputs, masks = [q, v, k], [None, None, None]
    if with_masks:
        masks = [rng.random((B, T)) < 0.7, rng.random((B, S)) < 0.8, rng.random((B, S)) < 0.8]
        masks[0][0, 2], masks[1][1] = False, False  # a padded query; a sample whose every value is masked
        allowed = rng.random((B, T, S)) < 0.6
        allowed[2, 4] = False  # a query that may attend to nothing
        inputs.append(allowed)
    layer = mha_layer(opts, weights, len(inputs))
    fast_calls, fast_path = [], attention._attend_over_sequence

    def counted_fast_path(*args, **kwargs):
        fast_calls.append(1)
        return fast_path(*args, **kwargs)
    monkeypatch.setattr(attention, "_attend_over_sequence", counted_fast_path)
    fast = layer_forward(layer, inputs, masks)
    assert fast_calls == [1]

    def literal_core(Q, K, V, scale, mask, zero_masked, keep_weights):
        return attention_by_einsum(Q, K, V, scale, mask, zero_masked)
    monkeypatch.setattr(attention, "_attend_over_sequence", literal_core)
    literal = layer_forward(layer, inputs, masks)
    if opts.get("return_attention_scores"):
        (y, y_mask), (w_fast, w_mask) = fast
        (y_lit, _), (w_lit, w_lit_mask) = literal
        assert_attention_close([y, w_fast], [y_lit, w_lit])
        assert w_fast.shape == (B, N, T, S)
        assert (w_mask is None) == (w_lit_mask is None) == (not with_masks and "use_causal_mask" not in opts)
        if w_mask is not None:
            np.testing.assert_array_equal(w_mask, w_lit_mask)
    else:
        (y, y_mask), (y_lit, _) = fast, literal
        assert_attention_close([y], [y_lit])
    assert y.shape == (B, T, *out) and y_mask is masks[0]


@pytest.mark.parametrize("x_shape, axes", [((2, 3, 4, 5), None), ((2, 3, 4, 5), (2,)), ((2, 3, 4, 5), (1, 2))])
def test_attention_over_other_axes_keeps_the_einsum_path(x_shape, axes, rng, monkeypatch):
    monkeypatch.setattr(attention, "_attend_over_sequence", lambda *a, **kw: pytest.fail("the fast path was taken"))
    N, H, D = 2, 3, x_shape[-1]
    weights = random_arrays([(D, N, H), (N, H)] * 3 + [(N, H, D), (D,)], rng)
    x = rng.normal(size=x_shape)
    y, _ = layer_forward(mha_layer(dict(num_heads=N, key_dim=H, attention_axes=axes), weights, 2), [x, x],
                         [None, None])
    assert y.shape == x_shape


@pytest.mark.parametrize("shape", [(7, 5), (3, 7, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_last_axis_product_is_each_rows_product(shape, dtype):
    """One product over every row: each row's entries are that row's own dot products, shaped as the input."""
    x, kernel = (a.astype(dtype) for a in random_arrays([shape, (5, 6)], np.random.default_rng(11)))
    y = last_axis_product(x, kernel)
    assert y.shape == shape[:-1] + (6,) and y.dtype == dtype
    rows = x.reshape(-1, 5)
    by_row = np.stack([row @ kernel for row in rows]).reshape(y.shape)
    np.testing.assert_allclose(y, by_row, rtol=0, atol=FLOAT64_SELF_ABS if dtype == np.float64 else 1e-5)
