"""The oracle's attention layers against an independent implementation: torch.nn.functional's
scaled_dot_product_attention and torch.nn.MultiheadAttention, in float64, where their maths map.

Attention(dot) is scaled dot-product attention with scale 1 (or the layer's scale), the value mask a boolean
``attn_mask``; MultiHeadAttention with key_dim == value_dim and output_shape the query's size is torch's
MultiheadAttention (embed_dim = num_heads * key_dim, separate key and value sizes), Keras's (F, N, H) kernels
read as torch's (N*H, F) projection matrices, the value mask as ``key_padding_mask`` (True = ignored).
"""
from __future__ import annotations

import numpy as np
import pytest

from reference import random_arrays
from reference.layers import Layer, layer_forward

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _oracle(kind, arrays, masks, weights, **options):
    layer = Layer("a", kind, tuple(f"in{k}" for k in range(len(arrays))), options, tuple(weights))
    return layer_forward(layer, list(arrays), list(masks))[0]


@pytest.mark.parametrize("causal", [False, True], ids=["masked", "causal_and_masked"])
def test_attention_is_scaled_dot_product_attention(causal, rng):
    b, tq, tv, d, dv = 3, 4, 6, 5, 7
    q, k, v = rng.standard_normal((b, tq, d)), rng.standard_normal((b, tv, d)), rng.standard_normal((b, tv, dv))
    v_mask = np.arange(tv)[None, :] < np.array([[6], [3], [1]])  # every row keeps step 0 (causal too)
    scale = 0.8
    got = _oracle("Attention", [q, v, k], [None, v_mask, None], [np.array(scale)], use_scale=True,
                  inputs=("query", "value", "key"), use_causal_mask=causal)
    allowed = np.broadcast_to(v_mask[:, None, :], (b, tq, tv))
    if causal:
        allowed = allowed & np.tril(np.ones((tq, tv), bool))
    expected = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=_t(allowed), scale=scale).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True], ids=["masked", "causal_and_masked"])
def test_multi_head_attention_is_torch_multihead_attention(causal, rng):
    b, tq, tv, heads, head = 3, 4, 6, 2, 3
    e, dk, dv = heads * head, 5, 7
    q, k, v = rng.standard_normal((b, tq, e)), rng.standard_normal((b, tv, dk)), rng.standard_normal((b, tv, dv))
    v_mask = np.arange(tv)[None, :] < np.array([[6], [4], [2]])
    wq, bq, wk, bk, wv, bv, wo, bo = random_arrays([(e, heads, head), (heads, head), (dk, heads, head),
                                                    (heads, head), (dv, heads, head), (heads, head),
                                                    (heads, head, e), (e,)], rng)
    got = _oracle("MultiHeadAttention", [q, v, k], [None, v_mask, v_mask], [wq, bq, wk, bk, wv, bv, wo, bo],
                  inputs=("query", "value", "key"), num_heads=heads, key_dim=head, value_dim=head,
                  use_causal_mask=causal)
    mha = torch.nn.MultiheadAttention(e, heads, kdim=dk, vdim=dv, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.q_proj_weight.copy_(_t(wq.reshape(e, e).T))
        mha.k_proj_weight.copy_(_t(wk.reshape(dk, e).T))
        mha.v_proj_weight.copy_(_t(wv.reshape(dv, e).T))
        mha.in_proj_bias.copy_(_t(np.concatenate([bq.ravel(), bk.ravel(), bv.ravel()])))
        mha.out_proj.weight.copy_(_t(wo.reshape(e, e).T))
        mha.out_proj.bias.copy_(_t(bo))
    mha.eval()
    causal_mask = _t(~np.tril(np.ones((tq, tv), bool))) if causal else None  # torch: True = not allowed
    expected, _ = mha(_t(q), _t(k), _t(v), key_padding_mask=_t(~v_mask), attn_mask=causal_mask, need_weights=False)
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=0, atol=1e-12)
