"""The oracle's attention layers (reference/layers/attention.py), NumPy only: by hand and by their properties.

One key gives that key's value; a causal layer at step t ignores steps after t; masked values do not count;
Attention zeroes masked queries; MultiHeadAttention with one head and identity projections is scaled dot
attention; attention over two axes is attention over their flattening; and MultiHeadAttention's two softmax
paths differ, as Keras's do, only on a query row with nothing left to attend to.
"""
from __future__ import annotations

import numpy as np
import pytest

from reference import random_arrays
from reference.layers import Layer, layer_forward


def run(kind, arrays, masks=None, weights=(), **options):
    names = tuple(f"in{k}" for k in range(len(arrays)))
    layer = Layer("attention", kind, names, options, tuple(weights))
    return layer_forward(layer, list(arrays), list(masks or [None] * len(arrays)))


def softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mha_weights(rng, dq, dk, dv, num_heads, key_dim, value_dim, out=None, bias=True, gate=False):
    """MultiHeadAttention's weights in Keras's order, drawn by the project's recipe."""
    out, n = out or (dq,), num_heads
    shapes = [(dq, n, key_dim), (n, key_dim), (dk, n, key_dim), (n, key_dim)]
    if gate:
        shapes += [(dq, n, value_dim), (n, value_dim)]
    shapes += [(dv, n, value_dim), (n, value_dim), (n, value_dim, *out), tuple(out)]
    w = random_arrays(shapes, rng)
    return w if bias else [a for k, a in enumerate(w) if k % 2 == 0]


MHA = dict(num_heads=2, key_dim=3, value_dim=4)


def test_attention_dot_by_hand(rng):
    """softmax(scale q k^T) v, with the query/value/key roles kept apart (no symmetric shortcut)."""
    q, v, k = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 6)), rng.standard_normal((2, 5, 4))
    y, mask = run("Attention", [q, v, k], weights=[np.array(0.7)], inputs=("query", "value", "key"), use_scale=True)
    np.testing.assert_allclose(y, softmax(0.7 * q @ k.transpose(0, 2, 1)) @ v, atol=1e-14)
    assert y.shape == (2, 3, 6) and mask is None


def test_attention_concat_and_additive_by_hand(rng):
    q, v = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    scale, weight, additive_scale = 0.6, -1.3, rng.standard_normal(4)
    y, _ = run("Attention", [q, v], weights=[np.array(scale), np.array(weight)], use_scale=True,
               score_mode="concat")
    s = weight * np.tanh(scale * (q[:, :, None] + v[:, None])).sum(-1)
    np.testing.assert_allclose(y, softmax(s) @ v, atol=1e-14)
    y, _ = run("AdditiveAttention", [q, v], weights=[additive_scale], use_scale=True)
    s = (additive_scale * np.tanh(q[:, :, None] + v[:, None])).sum(-1)
    np.testing.assert_allclose(y, softmax(s) @ v, atol=1e-14)


@pytest.mark.parametrize("kind", ["Attention", "AdditiveAttention", "MultiHeadAttention"])
def test_one_key_gives_its_value(kind, rng):
    """A single key gets all the weight, whatever the scores: the output is that value (projected, for MHA)."""
    q, v = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 1, 5))
    if kind == "MultiHeadAttention":
        w = mha_weights(rng, 5, 5, 5, **MHA)
        y, _ = run(kind, [q, v], weights=w, **MHA)
        value = np.einsum("bsf,fnh->bsnh", v, w[4]) + w[5]
        expected = np.einsum("bsnh,nho->bso", value, w[6]) + w[7]
    else:
        y, _ = run(kind, [q, v], weights=[rng.standard_normal(5)] if kind == "AdditiveAttention" else [],
                   use_scale=kind == "AdditiveAttention")
        expected = v
    np.testing.assert_allclose(y, np.broadcast_to(expected, y.shape), atol=1e-13)


@pytest.mark.parametrize("kind", ["Attention", "AdditiveAttention", "MultiHeadAttention"])
def test_causal_step_sees_only_earlier_steps(kind, rng):
    """With use_causal_mask, changing the steps after t leaves the output at t and before unchanged, and
    does change it without the causal mask."""
    x = rng.standard_normal((2, 6, 5))
    w = mha_weights(rng, 5, 5, 5, **MHA) if kind == "MultiHeadAttention" else []
    opts = MHA if kind == "MultiHeadAttention" else {}
    later = x.copy()
    later[:, 4:] += rng.standard_normal((2, 2, 5))
    y, _ = run(kind, [x, x], weights=w, use_causal_mask=True, **opts)
    y_later, _ = run(kind, [later, later], weights=w, use_causal_mask=True, **opts)
    np.testing.assert_allclose(y_later[:, :4], y[:, :4], atol=1e-13)
    assert np.abs(y_later[:, 4:] - y[:, 4:]).max() > 1e-3
    free, _ = run(kind, [x, x], weights=w, **opts)
    free_later, _ = run(kind, [later, later], weights=w, **opts)
    assert np.abs(free_later[:, :4] - free[:, :4]).max() > 1e-3
    first, _ = run(kind, [x[:, :1], x[:, :1]], weights=w, use_causal_mask=True, **opts)
    np.testing.assert_allclose(y[:, :1], first, atol=1e-13)  # step 0 sees only itself


def test_attention_masks(rng):
    """Masked values do not count (-1e9 before the softmax); masked queries give 0; the query mask is passed on."""
    q, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 5, 3))
    q_mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
    v_mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)
    y, mask = run("Attention", [q, v], [q_mask, v_mask])
    assert mask is q_mask
    for b in range(2):
        n = v_mask[b].sum()
        expected = softmax(q[b] @ v[b, :n].T) @ v[b, :n]
        np.testing.assert_allclose(y[b][q_mask[b]], expected[q_mask[b]], atol=1e-13)
        assert np.all(y[b][~q_mask[b]] == 0.0)


@pytest.mark.parametrize("kind", ["Attention", "MultiHeadAttention"])
def test_masked_values_do_not_count(kind, rng):
    x = rng.standard_normal((3, 6, 4))
    mask = np.arange(6)[None, :] < np.array([6, 3, 1])[:, None]
    w = mha_weights(rng, 4, 4, 4, **MHA) if kind == "MultiHeadAttention" else []
    opts = MHA if kind == "MultiHeadAttention" else {}
    changed = np.where(mask[..., None], x, rng.standard_normal(x.shape) * 5)
    y, m = run(kind, [x, x], [mask, mask], weights=w, **opts)
    y2, _ = run(kind, [x, changed], [mask, mask], weights=w, **opts)  # the values changed where masked
    np.testing.assert_allclose(y2[mask], y[mask], atol=1e-12)
    assert m is mask


def test_one_head_identity_projections_is_scaled_dot_attention(rng):
    """MultiHeadAttention(1 head) with identity kernels and zero biases: softmax(q k^T / sqrt(d)) v."""
    d = 4
    eye = np.eye(d)[:, None, :]  # (d, 1, d)
    w = [eye, np.zeros((1, d)), eye, np.zeros((1, d)), eye, np.zeros((1, d)), np.eye(d)[None], np.zeros(d)]
    q, v, k = rng.standard_normal((2, 3, d)), rng.standard_normal((2, 5, d)), rng.standard_normal((2, 5, d))
    y, _ = run("MultiHeadAttention", [q, v, k], weights=w, inputs=("query", "value", "key"), num_heads=1,
               key_dim=d, value_dim=d)
    np.testing.assert_allclose(y, softmax(q @ k.transpose(0, 2, 1) / np.sqrt(d)) @ v, atol=1e-13)


def test_no_bias_output_shape_and_gate(rng):
    """use_bias=False reads four kernels; output_shape (2, 3) gives (B, T, 2, 3); a gate of zero kernels and
    biases halves the heads' output (sigmoid(0) = 1/2) before the output projection."""
    q, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 6, 3))
    w = mha_weights(rng, 5, 3, 3, out=(2, 3), bias=False, **MHA)
    y, _ = run("MultiHeadAttention", [q, v], weights=w, use_bias=False, **MHA)
    assert y.shape == (2, 4, 2, 3)
    w = mha_weights(rng, 5, 3, 3, **MHA)
    plain, _ = run("MultiHeadAttention", [q, v], weights=w, **MHA)
    gate = [np.zeros((5, 2, 4)), np.zeros((2, 4))]
    halved = w[:6] + [w[6] / 2, w[7]]
    gated, _ = run("MultiHeadAttention", [q, v], weights=w[:4] + gate + w[4:], use_gate=True, **MHA)
    expected, _ = run("MultiHeadAttention", [q, v], weights=halved, **MHA)
    np.testing.assert_allclose(gated, expected, atol=1e-13)
    assert np.abs(gated - plain).max() > 1e-3


def test_two_attention_axes_are_their_flattening(rng):
    """attention_axes=(1, 2) on (B, T, U, F): attention over the T*U positions as one axis."""
    x = rng.standard_normal((2, 3, 4, 5))
    w = mha_weights(rng, 5, 5, 5, **MHA)
    y, _ = run("MultiHeadAttention", [x, x], weights=w, attention_axes=(1, 2), **MHA)
    flat, _ = run("MultiHeadAttention", [x.reshape(2, 12, 5)] * 2, weights=w, **MHA)
    np.testing.assert_allclose(y, flat.reshape(2, 3, 4, 5), atol=1e-13)
    per_step, _ = run("MultiHeadAttention", [x, x], weights=w, attention_axes=(2,), **MHA)
    for t in range(3):  # attention over U alone: each step t on its own
        alone, _ = run("MultiHeadAttention", [x[:, t], x[:, t]], weights=w, **MHA)
        np.testing.assert_allclose(per_step[:, t], alone, atol=1e-13)


def test_attention_mask_sliding_window_and_empty_rows(rng):
    """A given attention_mask and a sliding window restrict the keys; a query row with no key left attends
    to every key uniformly on the fused path (no dropout) and gives the output bias on the Softmax path."""
    q, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 6, 5))
    w = mha_weights(rng, 5, 5, 5, **MHA)
    allowed = rng.random((2, 4, 6)) < 0.6
    allowed[0, 1] = False  # query 1 of sample 0 may attend to nothing
    y, _ = run("MultiHeadAttention", [q, v, allowed], weights=w, inputs=("query", "value", "attention_mask"), **MHA)
    value = np.einsum("bsf,fnh->bsnh", v, w[4]) + w[5]
    uniform = np.einsum("nh,nho->o", value[0].mean(0), w[6]) + w[7]
    np.testing.assert_allclose(y[0, 1], uniform, atol=1e-13)
    y_softmax_path, _ = run("MultiHeadAttention", [q, v, allowed], weights=w, dropout=0.2,
                            inputs=("query", "value", "attention_mask"), **MHA)
    np.testing.assert_allclose(y_softmax_path[0, 1], w[7], atol=1e-13)
    rows = np.ones((2, 4), bool)
    rows[0, 1] = False
    np.testing.assert_allclose(y_softmax_path[rows], y[rows], atol=1e-13)  # elsewhere the paths agree
    changed = v.copy()
    changed[:, 3:] += 1.0  # keys 3.. are outside a window of 2 around queries 0 and 1
    near, _ = run("MultiHeadAttention", [q, v], weights=w, sliding_window=2, **MHA)
    near2, _ = run("MultiHeadAttention", [q, changed], weights=w, sliding_window=2, **MHA)
    np.testing.assert_allclose(near2[:, :2], near[:, :2], atol=1e-13)
    assert np.abs(near2[:, 2:] - near[:, 2:]).max() > 1e-3


def test_a_given_keys_mask_counts_too(rng):
    """MultiHeadAttention with a key tensor: the key's own mask removes keys the value's mask keeps."""
    q, v, k = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 2))
    w = mha_weights(rng, 4, 2, 4, **MHA)
    full, k_mask = np.ones((2, 5), bool), np.arange(5)[None, :] < np.array([[5], [2]])
    roles = ("query", "value", "key")
    y, _ = run("MultiHeadAttention", [q, v, k], [None, full, k_mask], weights=w, inputs=roles, **MHA)
    changed = np.where(k_mask[..., None], k, 3.0)
    y2, _ = run("MultiHeadAttention", [q, v, changed], [None, full, k_mask], weights=w, inputs=roles, **MHA)
    np.testing.assert_allclose(y2, y, atol=1e-13)
    y3, _ = run("MultiHeadAttention", [q, v, changed], [None, full, None], weights=w, inputs=roles, **MHA)
    assert np.abs(y3[1] - y[1]).max() > 1e-3
