"""Keras's attention layers -> the oracle's (``reference/layers/attention.py``): Attention, AdditiveAttention,
MultiHeadAttention.

These layers take two or three inputs and call arguments besides ``mask``: ``CALL_ARGUMENTS`` names them for
``describe.py``, which reads them from the functional model's call and hands them here as ``call``: a tensor
passed by keyword (MultiHeadAttention's ``key``, ``attention_mask``) becomes one more inbound layer, after the
positional ones; an explicit ``query_mask`` / ``value_mask`` / ``key_mask`` is checked as every explicit mask
(``compare.py``); ``use_causal_mask`` and ``return_attention_scores`` become options (the scores: a second output, its own
row, ``name:1``). Dropout is the identity at inference.
"""
from __future__ import annotations

from reference.layers import Layer

from ..load import refuse_layer
from .common import float_weights

# Call arguments each layer takes besides its inputs and ``mask``: "input" (a tensor, one more inbound),
# "option" (a constant), or the index of the input whose explicit mask it is.
_SCORES = {"use_causal_mask": "option", "return_attention_scores": "option"}
CALL_ARGUMENTS = {
    "Attention": _SCORES,
    "AdditiveAttention": _SCORES,
    # value by keyword: a Keras 2 file's call as load.py rewrites it (query positional, value=, key=)
    "MultiHeadAttention": {"value": "input", "key": "input", "attention_mask": "input", "query_mask": 0, "value_mask": 1,
                           "key_mask": 2, **_SCORES},
}


def _call_options(name: str, cls: str, call: dict) -> dict:
    options = {}
    for key in ("use_causal_mask", "return_attention_scores"):
        value = call.get(key, False)
        if not isinstance(value, bool):
            raise refuse_layer(name, cls, f"{key}={value!r}: True or False")
        options[key] = value
    return options


def _shown(opt: dict, *keys) -> str:
    return ", ".join(f"{k}={opt[k]}" for k in keys if k in opt)


def _scores_shown(opt: dict) -> str:
    return ", return_attention_scores" if opt["return_attention_scores"] else ""


def _list_inputs(layer, name: str, inbound: tuple) -> tuple:
    cls = type(layer).__name__
    if len(inbound) not in (2, 3):
        raise refuse_layer(name, cls, f"called on [query, value] or [query, value, key], got {len(inbound)} inputs")
    return ("query", "value", "key")[:len(inbound)]


def attention(layer, name, inbound, call=None):
    inputs = _list_inputs(layer, name, inbound)
    opt = {"inputs": inputs, "use_scale": bool(layer.use_scale), "score_mode": layer.score_mode,
           **_call_options(name, "Attention", call or {})}
    shown = _shown(opt, "score_mode", "use_scale", "use_causal_mask") + _scores_shown(opt)
    return Layer(name, "Attention", inbound, opt, tuple(float_weights(layer))), shown + (", key" if len(inputs) > 2 else "")


def additive_attention(layer, name, inbound, call=None):
    inputs = _list_inputs(layer, name, inbound)
    opt = {"inputs": inputs, "use_scale": bool(layer.use_scale),
           **_call_options(name, "AdditiveAttention", call or {})}
    return (Layer(name, "AdditiveAttention", inbound, opt, tuple(float_weights(layer))),
            _shown(opt, "use_scale", "use_causal_mask") + _scores_shown(opt) + (", key" if len(inputs) > 2 else ""))


def _einsum_sublayers(layer):
    return [getattr(layer, attr, None) for attr in ("_query_dense", "_key_dense", "_gate_dense", "_value_dense",
                                                     "_output_dense")]


def _upstream_mask_source(tensor) -> bool:
    """Whether a Masking or an Embedding(mask_zero=True) lies upstream of ``tensor`` (so it may carry a mask)."""
    stack, seen = [tensor], set()
    while stack:
        op = stack.pop()._keras_history.operation
        if id(op) in seen:
            continue
        seen.add(id(op))
        if type(op).__name__ == "Masking" or (type(op).__name__ == "Embedding" and op.mask_zero):
            return True
        for node in op._inbound_nodes:
            stack.extend(node.input_tensors)
    return False


def _refuse_shared_masked_inputs(layer, name: str) -> None:
    """Keras's MultiHeadAttention deletes the masks of its input tensors in place (multi_head_attention.py
    L629-631): another layer reading the same tensor sees its mask or not by the order Keras runs the two."""
    import keras
    node = layer._inbound_nodes[0]
    tensors = [t for t in node.input_tensors if t is not None]
    shared = [t for t in tensors if any(n.operation is not layer and isinstance(n.operation, keras.layers.Layer)
                                        for n in t._keras_history.operation._outbound_nodes)]
    if shared and any(_upstream_mask_source(t) for t in tensors):
        other = shared[0]._keras_history.operation.name
        raise refuse_layer(name, "MultiHeadAttention", f"it reads the masked output of {other!r}, which other "
                           "layers read too: Keras deletes that mask when this layer runs, so what the others "
                           "see depends on Keras's order of execution")


def _refuse_what_keras_jax_cannot_run(layer, name: str, scores: bool) -> None:
    """Keras 3.15.1 on JAX runs MultiHeadAttention without dropout on (B, T, F) inputs through
    jax.nn.dot_product_attention (multi_head_attention.py L521-560, backend/jax/nn.py L1800-1860), which wants
    the value's head size equal to the key's: with value_dim != key_dim Keras itself fails (and logs a
    traceback), so the layer is refused up front."""
    import keras
    fused = (len(layer._query_dense.equation.split("->")[1]) == 4 and not layer.dropout  # (B, T, N, H): L521-525
             and not scores)
    if keras.backend.backend() == "jax" and layer.value_dim != layer.key_dim and fused:
        raise refuse_layer(name, "MultiHeadAttention", f"value_dim={layer.value_dim} != key_dim={layer.key_dim} "
                           "without dropout: Keras 3.15.1's JAX backend cannot run it (jax.nn.dot_product_attention)")


def multi_head_attention(layer, name, inbound, call=None):
    call = call or {}
    cls = "MultiHeadAttention"
    keyword = [k for k in ("key", "attention_mask") if k in call]
    positional = len(inbound) - len(keyword)
    if positional not in (2, 3) or (positional == 3 and "key" in keyword):
        raise refuse_layer(name, cls, "called as (query, value[, key]) with key and attention_mask by keyword")
    inputs = ("query", "value", "key")[:positional] + tuple(keyword)
    if "key_mask" in call and "key" not in inputs:
        raise refuse_layer(name, cls, "key_mask without a key tensor")
    for sub in _einsum_sublayers(layer):
        if sub is not None and (getattr(sub, "lora_enabled", False)
                                or getattr(getattr(sub, "dtype_policy", None), "quantization_mode", None)):
            raise refuse_layer(name, cls, f"its {sub.name} projection has LoRA or quantized weights")
    if layer._inbound_nodes:
        _refuse_shared_masked_inputs(layer, name)
    _refuse_what_keras_jax_cannot_run(layer, name, bool(call.get("return_attention_scores")))
    output_shape = layer._output_shape
    opt = {"inputs": inputs, "num_heads": layer.num_heads, "key_dim": layer.key_dim, "value_dim": layer.value_dim,
           "use_bias": bool(layer.use_bias), "use_gate": bool(layer._use_gate), "dropout": float(layer.dropout),
           "attention_axes": tuple(layer.attention_axes), "sliding_window": layer._sliding_window,
           **_call_options(name, cls, call)}
    shown = [f"heads={layer.num_heads}, key_dim={layer.key_dim}"]
    if layer.value_dim != layer.key_dim:
        shown.append(f"value_dim={layer.value_dim}")
    if output_shape:
        shown.append(f"output_shape={tuple(output_shape)}")
    if not opt["use_bias"]:
        shown.append("no bias")
    shown += [k for k in ("use_gate", "use_causal_mask", "return_attention_scores") if opt[k]]
    if opt["sliding_window"] is not None:
        shown.append(f"sliding_window={opt['sliding_window']}")
    shown += [f"{k} given" for k in ("key", "attention_mask") if k in inputs]
    return Layer(name, cls, inbound, opt, tuple(float_weights(layer))), ", ".join(shown)


DESCRIBE = {"Attention": attention, "AdditiveAttention": additive_attention,
            "MultiHeadAttention": multi_head_attention}

_TESTS = "parity_tests/verify/test_attention_layers.py"
_SCORES_TEST = "parity_tests/verify/test_attention_scores.py::test_attention_scores_verify"
ROWS = [
    ("Attention", "score_mode dot and concat, use_scale, use_causal_mask, [query, value] or [query, value, key], "
     "query/value masks (masked values get -1e9 before the softmax, masked queries give 0), dropout (identity); "
     "return_attention_scores=True (the scores a row of their own)",
     "-", _SCORES_TEST),
    ("AdditiveAttention", "use_scale, use_causal_mask, key, query/value masks, dropout (identity); "
     "return_attention_scores=True (the scores a row of their own)",
     "-", f"{_TESTS}::test_attention_models_verify"),
    ("MultiHeadAttention", "num_heads, key_dim, value_dim, output_shape, attention_axes, use_bias, use_gate, "
     "sliding_window, key and attention_mask (a model input) by keyword, use_causal_mask, the inputs' masks, "
     "dropout (identity); return_attention_scores=True (the scores a row of their own)",
     "LoRA or quantized projections; an input tensor another layer also reads "
     "when the model has masks (Keras deletes its mask); on JAX, value_dim != key_dim without dropout (Keras "
     "cannot run it)", f"{_TESTS}::test_attention_models_verify"),
]
