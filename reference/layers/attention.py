"""Keras's attention layers at inference (keras/src/layers/attention/), dropout the identity.

Inputs by role, in the order of ``layer.options["inputs"]``: ``query`` (B, Tq, Dq), ``value`` (B, Tv, Dv), an
optional ``key`` (B, Tv, Dk; the value when absent) and, for MultiHeadAttention, an optional ``attention_mask``
(B, Tq, Tv), True where a query may attend. The masks are the inputs' own (Keras's masks, one per inbound).

    Attention(score_mode, use_scale, use_causal_mask)              attention.py
        dot:     s[t, j] = scale * q_t . k_j                        (scale = 1 without use_scale)
        concat:  s[t, j] = c * sum_d tanh(scale * (q_t + k_j)_d)    (c = concat_score_weight)
        s[t, j] -= 1e9 where the value mask or (causal) j > t masks it  (a subtraction, L174-180)
        a = softmax_j(s);  y_t = sum_j a[t, j] v_j;  y_t = 0 where the query mask is False (L235-238)
                                                                    mask' = the query's mask (L244-248)
    AdditiveAttention(use_scale)                                    additive_attention.py
        s[t, j] = sum_d scale_d tanh(q_t + k_j)_d  (scale = 1 without use_scale), then as Attention
    MultiHeadAttention(num_heads N, key_dim H, value_dim Hv, output_shape, attention_axes, use_bias,
                       use_gate, sliding_window, dropout, use_causal_mask)   multi_head_attention.py
        Q = q Wq + bq (.., N, H);  K = k Wk + bk;  V = v Wv + bv (.., N, Hv)   (EinsumDense on the last axis)
        s = (Q / sqrt(H)) . K over the channels, for every pair of positions on the attention axes
        m = query mask [.., T, 1] & value mask [.., 1, S] & key mask (only when a key tensor is given)
            & causal (row >= column) & |row - column| < sliding_window & attention_mask (L704-777)
        a = softmax over the attention axes of where(m, s, -1e9): masked scores REPLACED. Two paths, as in
            Keras (L521-525): (B, T, F) inputs without dropout go through ops.dot_product_attention, whose
            kernels replace masked scores by -0.7 * float max (or add it on torch: the same softmax), so a
            query row with no key left attends uniformly to EVERY key; otherwise (dropout > 0, or several
            attention axes) through the Softmax layer, which then sets a = 0 where m is False (softmax.py
            L81-83, L101-105), so such a row gives O = 0 (y = bo)
        O = a . V;  O *= sigmoid(q Wg + bg) with use_gate;  y = O Wo + bo over (N, Hv)
                                                                    mask' = the query's mask (L696-698)
        (B, T, F) inputs attending over T, the common case, take ``_attend_over_sequence``: these equations
        as matrix products of head-major arrays and a softmax in place; other attention axes, einsums.

``return_attention_scores`` (an option): a second output, the softmax weights (Attention, AdditiveAttention:
(B, Tq, Tv), before the query mask, without a mask; MultiHeadAttention: (B, N, T.., S..), which forces the
Softmax-layer path, L521-525, so masked weights are 0, with the mask that Softmax layer leaves on them: the
attention mask, expanded on the heads' axis).

Keras's MultiHeadAttention reads the query's mask from the tensor itself (``get_keras_mask(query)``, L628)
and then deletes the masks of its input tensors in place (L629-631): a layer that reads the same tensor
after it sees no mask. ``keras_impl/verify`` refuses such sharing; here each layer sees its inputs' masks.

Weights, in Keras's ``get_weights()`` order: Attention ``[scale] [concat_score_weight]`` (the ones it has);
AdditiveAttention ``[scale (D,)]``; MultiHeadAttention ``query kernel (Dq, N, H), bias (N, H), key kernel
(Dk, N, H), bias, [gate kernel (Dq, N, Hv), bias,] value kernel (Dv, N, Hv), bias, output kernel
(N, Hv, *out), bias (*out)``, biases absent with ``use_bias=False``.
"""
from __future__ import annotations

import string

import numpy as np

from ..parallel import over_ranges
from .outputs import Outputs

# Keras's additive bias for a masked Attention / AdditiveAttention score (attention.py L177; float16 aside).
MASKED_SCORE_OFFSET = 1.0e9
# What the Softmax layer puts in place of a masked MultiHeadAttention score (softmax.py L7-11, L81-83).
MASKED_SCORE = -1.0e9


def roles(layer) -> dict:
    """The layer's inputs by role (``query``, ``value``, ``key``, ``attention_mask``) -> inbound index."""
    names = layer.options.get("inputs", ("query", "value", "key")[:max(2, len(layer.inbound))])
    return {role: k for k, role in enumerate(names)}


def _softmax(s: np.ndarray, axes, in_place: bool = False) -> np.ndarray:
    """softmax over ``axes``; ``in_place``: into ``s`` itself (fresh scores no one else reads)."""
    if not in_place:
        s = s.copy()
    s -= s.max(axis=axes, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=axes, keepdims=True)
    return s


def _causal(tq: int, tv: int) -> np.ndarray:
    """(Tq, Tv): True where column <= row, counted from the top left as Keras does (cumsum of ones)."""
    return np.arange(tq)[:, None] >= np.arange(tv)[None, :]


def _with_scores(layer, y, q_mask, scores, scores_mask=None):
    """The layer's result: ``(y, the query's mask)``, or with ``return_attention_scores`` both outputs. The
    layer's ``compute_mask`` gives one mask, which Keras zips with the first output only (keras/src/layers/
    layer.py L1738-1741): Attention's scores have none; MultiHeadAttention's keep the one its Softmax layer
    left on them, the attention mask as given to it (``scores_mask``)."""
    if not layer.options.get("return_attention_scores", False):
        return y, q_mask
    return Outputs([(y, q_mask), (scores, scores_mask)])


def _apply_scores(scores, value, q_mask, v_mask, causal: bool):
    """Keras's ``Attention._apply_scores`` then the query mask: (B, Tq, Tv) scores -> ((B, Tq, Dv), the softmax
    weights (B, Tq, Tv), before the query mask, as Keras returns them: attention.py L232-240)."""
    allowed = None if v_mask is None else np.asarray(v_mask, bool)[..., None, :]  # (B, 1, Tv)
    if causal:
        tri = _causal(*scores.shape[-2:])[None]  # (1, Tq, Tv)
        allowed = tri if allowed is None else allowed & tri
    if allowed is not None:
        scores = np.where(allowed, scores, scores - MASKED_SCORE_OFFSET)
    weights = _softmax(scores, -1)
    y = weights @ value
    if q_mask is not None:
        y = np.where(np.asarray(q_mask, bool)[..., None], y, 0.0)
    return y, weights


def _summed_tanh(q, k, inside=None, outside=None):
    """sum_d outside_d tanh(inside (q_t + k_j))_d for every pair (t, j): (.., Tq, D), (.., Tv, D) -> (.., Tq, Tv).

    One batch row at a time: the (Tq, Tv, D) temporary Keras holds for the whole batch, in float64, would be
    gigabytes at realistic sizes (32 x 200 x 200 x 256).
    """
    lead = q.shape[:-2]
    q, k = q.reshape(-1, *q.shape[-2:]), k.reshape(-1, *k.shape[-2:])
    out = np.empty((q.shape[0], q.shape[1], k.shape[1]))
    for b in range(q.shape[0]):
        summed = q[b][:, None, :] + k[b][None, :, :]  # (Tq, Tv, D)
        t = np.tanh(summed if inside is None else inside * summed)
        out[b] = t.sum(-1) if outside is None else t @ outside
    return out.reshape(*lead, *out.shape[1:])


def _query_value_key(layer, inputs, masks):
    r = roles(layer)
    q, v = inputs[r["query"]], inputs[r["value"]]
    k = inputs[r["key"]] if "key" in r else v
    return q, v, k, masks[r["query"]], masks[r["value"]]


def attention(layer, inputs, masks, tape=None):
    q, v, k, q_mask, v_mask = _query_value_key(layer, inputs, masks)
    opt, w = layer.options, list(layer.weights)
    scale = w.pop(0) if opt.get("use_scale") else None
    if opt.get("score_mode", "dot") == "dot":
        scores = q @ np.swapaxes(k, -1, -2)  # (B, Tq, Tv)
        if scale is not None:
            scores = scores * scale
    else:  # concat
        weight = w.pop(0)
        scores = weight * _summed_tanh(q, k, inside=scale)
    y, weights = _apply_scores(scores, v, q_mask, v_mask, bool(opt.get("use_causal_mask")))
    return _with_scores(layer, y, q_mask, weights)


def additive_attention(layer, inputs, masks, tape=None):
    q, v, k, q_mask, v_mask = _query_value_key(layer, inputs, masks)
    scale = layer.weights[0] if layer.options.get("use_scale") else None
    scores = _summed_tanh(q, k, outside=scale)  # (B, Tq, Tv)
    y, weights = _apply_scores(scores, v, q_mask, v_mask, bool(layer.options.get("use_causal_mask")))
    return _with_scores(layer, y, q_mask, weights)


def _attention_equations(rank: int, attn_axes: tuple):
    """Keras's ``_build_attention_equation`` (multi_head_attention.py L890-945): projected tensors of ``rank``
    (batch, <other axes>, <attention axes>, heads, channels) -> (dot product, combine, scores rank)."""
    letters = string.ascii_lowercase
    target = letters[:rank]
    batch_dims = tuple(np.delete(range(rank), attn_axes + (rank - 1,)))
    source, offset = "", rank
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += letters[offset]
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes]
                      + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def _project(x, kernel, bias):
    """EinsumDense on the last axis: (..., D) x (D, *out) -> (..., *out), plus the bias."""
    y = np.tensordot(x, kernel, axes=([-1], [0]))
    return y if bias is None else y + bias


def _mha_mask(layer, r, inputs, masks, q, v):
    """Keras's ``_compute_attention_mask`` (L704-777) with the causal mask folded in (L574-583), or None."""
    opt = layer.options
    m = None

    def both(a, b):
        return b if a is None else a & b
    if masks[r["query"]] is not None:
        m = np.asarray(masks[r["query"]], bool)[..., None]  # (B, T, 1)
    if masks[r["value"]] is not None:
        m = both(m, np.asarray(masks[r["value"]], bool)[..., None, :])  # (B, 1, S)
    if "key" in r and masks[r["key"]] is not None:
        m = both(m, np.asarray(masks[r["key"]], bool)[..., None, :])
    tq, tv = q.shape[1], v.shape[1]
    if opt.get("use_causal_mask"):
        m = both(m, _causal(tq, tv)[None])  # (1, T, S)
    window = opt.get("sliding_window")
    if window is not None:
        m = both(m, (np.abs(np.arange(tq)[:, None] - np.arange(tv)[None, :]) < window)[None])
    if "attention_mask" in r:
        given = np.asarray(inputs[r["attention_mask"]]).astype(bool)
        m = given if m is None else given & m
    return m


SCORES_BUFFER_BYTES = 4 << 20  # a few batch rows' scores: each pass over them reads them from the cache


def _attend_over_sequence(Q, K, V, scale, mask, zero_masked: bool, keep_weights: bool):
    """The attention equations above for (B, T, N, H) projections attending over T, as products of head-major
    arrays and a softmax in place, a few batch rows at a time: -> ((B, T, N, Hv), the weights (B, N, T, S) when
    ``keep_weights``, else None).

    The same arithmetic as the einsum path (Q / sqrt(H), masked scores replaced, softmax, a . V) in fewer and
    cheaper passes. Measured at bilstm_mha's realistic size ((32, 200, 128) -> 4 heads x 32, padded; one BLAS
    thread, medians): the scores einsum 24 ms against 16 ms for np.matmul over head-major arrays, the combine
    einsum 19 ms against 14 ms, np.where's new array 12 ms against 4 ms for a fill in place, the softmax's new
    arrays 37 ms against 21 ms in place; these passes over about ``SCORES_BUFFER_BYTES`` of scores at a time,
    in one reused buffer, 62 ms against 73 ms over the whole array. The layer: 1.5-1.7x (medians 104-140 ms
    -> 67-88 ms, CPU time and wall, on a busy 2-core machine).
    """
    batch, t, heads, _ = Q.shape
    s_len, hv = K.shape[1], V.shape[3]
    # head-major views, no copies: each head's (T, H), (H, S), (S, Hv) matrix has rows of unit stride (or
    # columns, read transposed), which BLAS reads with a leading dimension of N H
    q = (Q / scale).transpose(0, 2, 1, 3)  # (B, N, T, H)
    k = K.transpose(0, 2, 3, 1)  # (B, N, H, S)
    v = V.transpose(0, 2, 1, 3)  # (B, N, S, Hv)
    out = np.empty((batch, t, heads, hv))  # (B, T, N, Hv), written head-major through a transposed view
    heads_out = out.transpose(0, 2, 1, 3)
    masked = None if mask is None else np.broadcast_to(~mask, (mask.shape[0], 1, t, s_len))  # (B | 1, 1, T, S)
    chunk = max(1, min(batch, SCORES_BUFFER_BYTES // (heads * t * s_len * 8)))
    weights = np.empty((batch, heads, t, s_len)) if keep_weights else None

    def batch_rows(begin: int, end: int) -> None:  # rows [begin, end), a few at a time through a buffer of their own
        buffer = None if keep_weights else np.empty((min(chunk, end - begin), heads, t, s_len))
        for start in range(begin, end, chunk):
            rows = slice(start, min(end, start + chunk))
            s = weights[rows] if keep_weights else buffer[:rows.stop - rows.start]
            np.matmul(q[rows], k[rows], out=s)  # (b, N, T, S)
            chunk_masked = None if masked is None else masked[rows] if masked.shape[0] > 1 else masked
            if chunk_masked is not None:
                np.copyto(s, MASKED_SCORE, where=chunk_masked)
            _softmax(s, -1, in_place=True)
            if chunk_masked is not None and zero_masked:  # the Softmax layer zeroes what it masked
                np.copyto(s, 0.0, where=chunk_masked)
            np.matmul(s, v[rows], out=heads_out[rows])
    # Batch rows share nothing: on two threads where reference.parallel is on (its docstring says why)
    work = batch * heads * t * s_len * (q.shape[-1] + hv)  # the two products' multiply-adds
    over_ranges(batch_rows, batch, work=work)
    return out, weights


def multi_head_attention(layer, inputs, masks, tape=None):
    opt, r = layer.options, roles(layer)
    q, v = inputs[r["query"]], inputs[r["value"]]
    k = inputs[r["key"]] if "key" in r else v
    w = list(layer.weights)
    bias = opt.get("use_bias", True)

    def dense():
        kernel = w.pop(0)
        return kernel, (w.pop(0) if bias else None)
    wq, wk = dense(), dense()
    wg = dense() if opt.get("use_gate") else None
    wv, wo = dense(), dense()
    Q, K, V = _project(q, *wq), _project(k, *wk), _project(v, *wv)  # (B, T.., N, H), (B, S.., N, H), (.., N, Hv)
    rank = Q.ndim
    axes = opt.get("attention_axes")
    axes = tuple(range(1, rank - 2)) if axes is None else tuple(a if a >= 0 else rank - 1 + a for a in axes)
    mask = _mha_mask(layer, r, inputs, masks, q, v)
    if mask is not None:
        expand_at = -len(axes) * 2 - 1  # Keras's _masked_softmax: from the heads' axis (L460-472)
        while mask.ndim < rank - 1 + len(axes):  # the scores' rank
            mask = np.expand_dims(mask, expand_at)
    # Keras's ops.dot_product_attention path: not with dropout, nor when the scores are returned (L521-525)
    fused = Q.ndim == 4 and not opt.get("dropout") and not opt.get("return_attention_scores")
    scale = np.sqrt(float(opt["key_dim"]))
    if axes == (1,) and rank == 4:  # (B, T, F) inputs attending over the sequence: the common case
        out, probs = _attend_over_sequence(Q, K, V, scale, mask, zero_masked=not fused,
                                           keep_weights=bool(opt.get("return_attention_scores")))
    else:
        dot, combine, scores_rank = _attention_equations(rank, axes)
        scores = np.einsum(dot, K, Q / scale, optimize=True)  # (B, N, T.., S..)
        if mask is not None:
            scores = np.where(mask, scores, MASKED_SCORE)
        probs = _softmax(scores, tuple(range(scores_rank - len(axes), scores_rank)))
        if mask is not None and not fused:  # the Softmax layer zeroes what it masked
            probs = np.where(mask, probs, 0.0)
        out = np.einsum(combine, probs, V, optimize=True)  # (B, T.., N, Hv)
    if wg is not None:
        out = out * (1.0 / (1.0 + np.exp(-_project(q, *wg))))
    kernel, b = wo
    y = np.tensordot(out, kernel, axes=([-2, -1], [0, 1]))  # (B, T.., *output_shape)
    # probs: (B, N, T.., S..), with the Softmax layer's mask: the attention mask expanded as above (L460-474)
    return _with_scores(layer, y if b is None else y + b, masks[r["query"]], probs, mask)


FORWARD = {"Attention": attention, "AdditiveAttention": additive_attention,
           "MultiHeadAttention": multi_head_attention}
