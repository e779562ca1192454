"""bilstm-lab's own ONNX writer: a ``reference.layers.LayerGraph`` -> ``onnx.ModelProto``, built with onnx.helper.

    >>> from keras_impl.export.native_onnx import write_onnx
    >>> proto = write_onnx(graph, {"ids": ("int32", (None,))})     # input name -> (dtype, shape without batch)

No Keras here: the layer list (keras_impl/verify/describe.py reads it from a Keras model) is the whole model.
Every input and output has a free batch and a free time axis (dim_params "batch" and "time"); each layer's
output tensor is named after the layer, its intermediates ``<layer>/<what>``, its mask ``<layer>/mask``.
Weight layouts come from keras_impl/convert.py (``keras_to_onnx``), the project's one layout module.

What each kind becomes (the semantics are the oracle's, reference/layers/):
    InputLayer              the graph input, cast to float32 (or int64 ids for an Embedding)
    Embedding               Gather; mask_zero: mask = ids != 0
    Masking(v)              m = ReduceMax(x != v, features); y = x * m
    Dense, TimeDistributed(Dense)   MatMul + Add + activation, on any rank (softmax on the last axis)
    Activation, Dropout, SpatialDropout1D, Flatten, Concatenate(axis=-1)   as the oracle's
    GlobalAveragePooling1D  masked mean (a row with no valid step: 0/0 = NaN, as Keras); GlobalMaxPooling1D
    LSTM, GRU, SimpleRNN    one ONNX LSTM / GRU / RNN node, direction "forward" or "reverse" (go_backwards)
    Bidirectional           one node with direction "bidirectional" (two when masked or the copies differ), merged
                            with Concat / Add / Mul / Add then Mul 0.5 (ave)

Masks, exactly as Keras (reference/rnn.py's loop; reference/bidirectional.py): a masked step carries the
states, so a layer's result depends only on its valid steps, in order. The graph gathers each row's valid steps
to the front (for a forward copy) or to the back (for a reverse copy), in order (TopK of the step index, + T
where masked: the identity for right padding and a forward copy), runs the ONNX node on that, and gathers each
output step back (``valid_step_count`` is what ``sequence_lens`` would hold):

    forward copy, at step t    the output after the row's valid steps <= t: compact index cumsum(m)[t] - 1
    reverse copy, at step t    the output after its valid steps >= t: compact index T - count + (valid before t)
    zero at t                  where the copy has seen no valid step yet (its output is h0 = 0), or where
                               m[t] is 0 and zero_output_for_mask (Bidirectional with return_sequences forces it)
    last output                (return_sequences=False) the output after every valid step, 0 for a fully
                               masked row; with zero_output_for_mask, 0 where the last step read is masked

The node gets no ``sequence_lens``: the steps after a row's valid ones are computed and never read, and
OpenVINO 2026.4's ONNX frontend computed single-direction and RNN nodes with ``sequence_lens`` wrongly
(0.1 to 0.65 off the oracle where ONNX Runtime matched). A masked Bidirectional is two nodes, one per copy.
A mask with holes (not right-padded) is therefore computed exactly, not refused. Refused, in one line naming
the layer (``NativeRefusal``): a kind this writer does not know, a cell activation ONNX's recurrent nodes do
not take, a Bidirectional whose forward copy runs backwards, a TimeDistributed around anything but a Dense.
"""
from __future__ import annotations

import numpy as np

from keras_impl import convert
from reference.layers.rnn import RECURRENT_KINDS

OPSET = 17
IR_VERSION = 8             # ONNX Runtime 1.1x and OpenVINO read IR 8 with opset 17
BATCH, TIME = "batch", "time"

# Keras activation -> ONNX's recurrent-node activation name (the ones every ONNX runtime implements).
CELL_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}
# Keras activation -> ONNX operator, for Dense and Activation ("linear": none).
LAYER_ACTIVATIONS = {"linear": None, "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softmax": "Softmax"}
SUPPORTED_KINDS = ("InputLayer", "Embedding", "Masking", "Dense", "TimeDistributed", "Activation", "Dropout",
                   "SpatialDropout1D", "Flatten", "Concatenate", "GlobalAveragePooling1D", "GlobalMaxPooling1D",
                   *RECURRENT_KINDS, "Bidirectional")


class NativeRefusal(ValueError):
    """The layer list holds something this writer does not write; str() is one line naming the layer."""


def refuse(layer, why: str) -> NativeRefusal:
    return NativeRefusal(f"native ONNX export: layer {layer.name!r} ({layer.kind}): {why}")


class _Builder:
    """Nodes, initializers and unique tensor names for one graph."""

    def __init__(self):
        self.nodes, self.initializers, self.used = [], [], set()

    def fresh(self, name: str) -> str:
        base, k = name, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def const(self, name: str, value, dtype=None) -> str:
        from onnx import numpy_helper
        name = self.fresh(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs, name: str, outputs: int = 1, **attributes):
        """One node; its output name(s): ``name`` (made unique), ``name``:k for the k-th after the first."""
        from onnx import helper
        first = self.fresh(name)
        names = [first] + [self.fresh(f"{first}:{k}") for k in range(1, outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=first, **attributes))
        return names[0] if outputs == 1 else names


def _onnx_type(dtype: str) -> int:
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class _Writer:
    def __init__(self, graph):
        self.graph = graph
        self.b = _Builder()
        self.values: dict = {}    # layer name -> (tensor name, mask tensor name (bool, (B, T)) or None)

    # ------------------------------------------------------------------------------------ the shared bits

    def time_length(self, x: str, prefix: str) -> str:
        """T as a 1-D int64 tensor [T], read off x's axis 1."""
        return self.b.op("Shape", [x], f"{prefix}/T", start=1, end=2)

    def unsqueeze_last(self, x: str, name: str) -> str:
        return self.b.op("Unsqueeze", [x, self.b.const(f"{name}/axis", [-1], np.int64)], name)

    def flip_time(self, x: str, name: str) -> str:
        b = self.b
        return b.op("Slice", [x, b.const(f"{name}/starts", [-1], np.int64),
                              b.const(f"{name}/ends", [np.iinfo(np.int64).min], np.int64),
                              b.const(f"{name}/axes", [1], np.int64), b.const(f"{name}/steps", [-1], np.int64)], name)

    def zeros_where_not(self, keep: str, x: str, name: str) -> str:
        """x where ``keep`` (bool, x's shape without its last axis), 0 elsewhere."""
        zero = self.b.const(f"{name}/zero", 0.0, np.float32)
        return self.b.op("Where", [self.unsqueeze_last(keep, f"{name}/keep"), x, zero], name)

    # --------------------------------------------------------------------------------------- the layers

    def write(self, input_specs: dict):
        from onnx import TensorProto, helper
        graph_inputs = []
        embedded = {n for layer in self.graph.layers if layer.kind == "Embedding" for n in layer.inbound}
        for name in self.graph.inputs:
            if name not in input_specs:
                raise NativeRefusal(f"native ONNX export: no dtype and shape given for input {name!r}")
            dtype, shape = input_specs[name]
            dims = [BATCH] + [TIME if k == 0 else (None if d is None else int(d)) for k, d in enumerate(shape)]
            graph_inputs.append(helper.make_tensor_value_info(name, _onnx_type(dtype), dims))
            target = "int64" if name in embedded else "float32"  # ids for a Gather, floats for the rest
            self.values[name] = (name if dtype == target else
                                 self.b.op("Cast", [name], f"{name}/as_{target}", to=_onnx_type(target)), None)
            self.b.used.add(name)
        for layer in self.graph.layers:
            if layer.kind == "InputLayer":
                continue
            if layer.kind not in SUPPORTED_KINDS:
                raise refuse(layer, f"not written by the native ONNX writer (it writes {', '.join(SUPPORTED_KINDS)})")
            self.b.used.add(layer.name)
        for layer in self.graph.layers:
            if layer.kind != "InputLayer":
                self.values[layer.name] = getattr(self, "_" + layer.kind)(layer, *self._inbound(layer))
        outputs = []
        for name in self.graph.outputs:
            tensor = self.values[name][0]
            if tensor != name:  # an output that is a cast input, say: renamed to the layer
                self.b.op("Identity", [tensor], name)
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        return graph_inputs, outputs

    def _inbound(self, layer):
        values = [self.values[n] for n in layer.inbound]
        return [v for v, _ in values], [m for _, m in values]

    def _result(self, layer, op_type, inputs, mask=None, **attributes):
        """The layer's output node: its tensor named after the layer."""
        self.b.used.discard(layer.name)
        return self.b.op(op_type, inputs, layer.name, **attributes), mask

    def _Embedding(self, layer, xs, masks):
        b, ids = self.b, xs[0]
        table = b.const(f"{layer.name}/embeddings", np.asarray(layer.weights[0], np.float32))
        mask = None
        if layer.options.get("mask_zero"):
            mask = b.op("Not", [b.op("Equal", [ids, b.const(f"{layer.name}/zero", 0, np.int64)],
                                     f"{layer.name}/is_padding")], f"{layer.name}/mask")
        return self._result(layer, "Gather", [table, ids], mask, axis=0)

    def _Masking(self, layer, xs, masks):
        b, x = self.b, xs[0]
        value = b.const(f"{layer.name}/mask_value", layer.options["mask_value"], np.float32)
        differs = b.op("Cast", [b.op("Not", [b.op("Equal", [x, value], f"{layer.name}/equal")], f"{layer.name}/differs")],
                       f"{layer.name}/differs_float", to=_onnx_type("float32"))
        kept = b.op("ReduceMax", [differs], f"{layer.name}/kept", axes=[-1], keepdims=0)   # (B, T): 1 or 0
        mask = b.op("Cast", [kept], f"{layer.name}/mask", to=_onnx_type("bool"))
        return self._result(layer, "Mul", [x, self.unsqueeze_last(kept, f"{layer.name}/kept_last")], mask)

    def _dense(self, layer, x, mask, options, weights):
        b = self.b
        kernel, bias = (np.asarray(w, np.float32) for w in weights[:2])
        a = b.op("Add", [b.op("MatMul", [x, b.const(f"{layer.name}/kernel", kernel)], f"{layer.name}/matmul"),
                         b.const(f"{layer.name}/bias", bias)], f"{layer.name}/preactivation")
        act = options["activation"]
        if act not in LAYER_ACTIVATIONS:
            raise refuse(layer, f"activation {act!r}; the native writer has {', '.join(LAYER_ACTIVATIONS)}")
        op = LAYER_ACTIVATIONS[act] or "Identity"
        return self._result(layer, op, [a], mask, **({"axis": -1} if op == "Softmax" else {}))

    def _Dense(self, layer, xs, masks):
        return self._dense(layer, xs[0], masks[0], layer.options, layer.weights)

    def _TimeDistributed(self, layer, xs, masks):
        inner = layer.options.get("inner")
        if inner is None:  # the oracle's TimeDistributed(Dense): a Dense on the last axis
            return self._dense(layer, xs[0], masks[0], layer.options, layer.weights)
        if inner.kind != "Dense":
            raise refuse(layer, f"TimeDistributed({inner.kind}): the native writer writes TimeDistributed(Dense)")
        return self._dense(layer, xs[0], masks[0], inner.options, inner.weights)

    def _Activation(self, layer, xs, masks):
        act = layer.options["activation"]
        if act not in LAYER_ACTIVATIONS:
            raise refuse(layer, f"activation {act!r}; the native writer has {', '.join(LAYER_ACTIVATIONS)}")
        op = LAYER_ACTIVATIONS[act] or "Identity"
        return self._result(layer, op, [xs[0]], masks[0], **({"axis": -1} if op == "Softmax" else {}))

    def _Dropout(self, layer, xs, masks):
        return self._result(layer, "Identity", [xs[0]], masks[0])

    _SpatialDropout1D = _Dropout

    def _Flatten(self, layer, xs, masks):
        return self._result(layer, "Reshape", [xs[0], self.b.const(f"{layer.name}/shape", [0, -1], np.int64)])

    def _Concatenate(self, layer, xs, masks):
        if layer.options.get("axis", -1) != -1:
            raise refuse(layer, f"axis={layer.options['axis']}: the native writer concatenates on the last axis")
        mask = None
        if all(m is not None for m in masks):  # a None mask counts as all True: the OR is then all True
            mask = masks[0]
            for k, m in enumerate(masks[1:]):
                mask = self.b.op("Or", [mask, m], f"{layer.name}/mask" if k == len(masks) - 2 else f"{layer.name}/or")
        return self._result(layer, "Concat", xs, mask, axis=-1)

    def _GlobalAveragePooling1D(self, layer, xs, masks):
        b, x, mask = self.b, xs[0], masks[0]
        axis = b.const(f"{layer.name}/time_axis", [1], np.int64)
        if mask is None:
            return self._result(layer, "ReduceMean", [x], axes=[1], keepdims=0)
        kept = self.zeros_where_not(mask, x, f"{layer.name}/masked")
        total = b.op("ReduceSum", [kept, axis], f"{layer.name}/sum", keepdims=0)
        steps = b.op("ReduceSum", [b.op("Cast", [mask], f"{layer.name}/mask_float", to=_onnx_type("float32")), axis],
                     f"{layer.name}/valid_steps", keepdims=1)
        return self._result(layer, "Div", [total, steps])   # 0/0 = NaN for a fully masked row, as Keras

    def _GlobalMaxPooling1D(self, layer, xs, masks):
        return self._result(layer, "ReduceMax", [xs[0]], axes=[1], keepdims=0)   # Keras ignores the mask

    # ---------------------------------------------------------------------------------------- recurrent

    def _copies(self, layer):
        """[(cell options, (kernel, recurrent_kernel, bias), reverse)] of a recurrent layer, one per copy."""
        if layer.kind in RECURRENT_KINDS:
            options = {**layer.options, "cell": RECURRENT_KINDS[layer.kind]}
            return [(options, layer.weights[:3], bool(options.get("go_backwards", False)))]
        forward, backward = layer.options["forward"], layer.options["backward"]
        if "conv_lstm" in forward:
            raise refuse(layer, "a Bidirectional of ConvLSTMs: not written natively")
        if forward.get("go_backwards", False) or not backward.get("go_backwards", True):
            raise refuse(layer, "a Bidirectional whose forward copy runs backwards (a go_backwards layer wrapped): "
                                "not written natively")
        return [(forward, layer.weights[:3], False), (backward, layer.weights[3:6], True)]

    def _cell_attributes(self, layer, options, directions: int) -> dict:
        cell = options.get("cell", "lstm")
        names = [options.get("activation", "tanh")]
        if cell != "simple_rnn":
            names = [options.get("recurrent_activation", "sigmoid")] + names * (2 if cell == "lstm" else 1)
        missing = sorted({n for n in names if n not in CELL_ACTIVATIONS})
        if missing:
            raise refuse(layer, f"cell activation {', '.join(missing)}: ONNX's recurrent nodes are written with "
                                f"{', '.join(CELL_ACTIVATIONS)} only")
        attributes = {"activations": [CELL_ACTIVATIONS[n] for n in names] * directions}
        if cell == "gru":
            attributes["linear_before_reset"] = int(bool(options.get("reset_after", True)))
        return attributes

    def _recurrent_node(self, layer, x, copies, suffix: str):
        """One ONNX LSTM / GRU / RNN node over batch-major x: (Y as (B, T, dirs, U), Y_h (dirs, B, U))."""
        b = self.b
        cell = copies[0][0].get("cell", "lstm")
        reset_after = bool(copies[0][0].get("reset_after", True)) if cell == "gru" else True
        flat = []
        for _, (kernel, recurrent_kernel, bias), _ in copies:
            units = np.shape(recurrent_kernel)[0]
            if bias is None:
                bias = np.zeros(((2, 3 * units) if cell == "gru" and reset_after else (convert.GATES[cell] * units,)))
            flat += [np.asarray(kernel, np.float32), np.asarray(recurrent_kernel, np.float32),
                     np.asarray(bias, np.float32)]
        [(W, R, B)] = convert.keras_to_onnx(flat, bidirectional=len(copies) == 2, cell=cell, reset_after=reset_after)
        prefix = f"{layer.name}/{convert.ONNX_OPERATORS[cell].lower()}{suffix}"
        direction = "bidirectional" if len(copies) == 2 else ("reverse" if copies[0][2] else "forward")
        time_major = b.op("Transpose", [x], f"{prefix}/time_major", perm=[1, 0, 2])
        inputs = [time_major, b.const(f"{prefix}/W", W), b.const(f"{prefix}/R", R), b.const(f"{prefix}/B", B)]
        attributes = {"hidden_size": int(R.shape[-1]), "direction": direction,
                      **self._cell_attributes(layer, copies[0][0], len(copies))}
        Y, Y_h = b.op(convert.ONNX_OPERATORS[cell], inputs, prefix, outputs=2, **attributes)
        return b.op("Transpose", [Y], f"{prefix}/batch_major", perm=[2, 0, 1, 3]), Y_h

    def _recurrent(self, layer, xs, masks):
        b, x, mask, name = self.b, xs[0], masks[0], layer.name
        copies = self._copies(layer)
        for options, _, _ in copies:
            if options.get("cell", "lstm") not in convert.GATES:
                raise refuse(layer, f"cell {options.get('cell')!r}")
        rs = bool(layer.options["return_sequences"])
        bidirectional = layer.kind == "Bidirectional"
        zero_output = rs if bidirectional else bool(layer.options.get("zero_output_for_mask", False))
        halves = []
        if mask is None:  # every step valid: one node (both directions in one where the copies are alike)
            same = len(copies) == 2 and _same_cell(copies[0][0], copies[1][0]) and \
                np.shape(copies[0][1][1]) == np.shape(copies[1][1][1])
            groups = [copies] if len(copies) == 1 or same else [[c] for c in copies]
            for g, group in enumerate(groups):
                Y, Y_h = self._recurrent_node(layer, x, group, "" if len(groups) == 1 else f"_{g}")
                for d, (_, _, reverse) in enumerate(group):
                    tag = f"{name}/{'reverse' if reverse else 'forward'}"
                    index = b.const(f"{tag}/direction", d, np.int64)
                    if rs:
                        y = b.op("Gather", [Y, index], f"{tag}/sequence", axis=2)          # (B, T, U)
                        if reverse and not bidirectional:  # go_backwards: the outputs in processing order
                            y = self.flip_time(y, f"{tag}/processing_order")
                    else:
                        y = b.op("Gather", [Y_h, index], f"{tag}/last", axis=0)            # (B, U)
                    halves.append(y)
        else:
            plan = self._mask_plan(x, mask, name)
            for options, weights, reverse in copies:
                tag = f"{name}/{'reverse' if reverse else 'forward'}"
                Y, _ = self._recurrent_node(layer, plan["valid_last" if reverse else "valid_first"],
                                            [(options, weights, reverse)], "_reverse" if reverse else "")
                y = b.op("Gather", [Y, b.const(f"{tag}/direction", 0, np.int64)], f"{tag}/compact", axis=2)
                halves.append(self._unpack(y, plan, reverse, rs, zero_output, bidirectional, tag))
        out_mask = mask if rs else None
        if not bidirectional:
            return self._result(layer, "Identity", halves, out_mask)
        merge = layer.options["merge_mode"]
        if merge == "concat":
            return self._result(layer, "Concat", halves, out_mask, axis=-1)
        if merge == "sum":
            return self._result(layer, "Add", halves, out_mask)
        if merge == "mul":
            return self._result(layer, "Mul", halves, out_mask)
        if merge == "ave":
            total = b.op("Add", halves, f"{name}/sum")
            return self._result(layer, "Mul", [total, b.const(f"{name}/half", 0.5, np.float32)], out_mask)
        raise refuse(layer, f"merge_mode={merge!r}: the native writer merges concat, sum, mul and ave")

    _LSTM = _GRU = _SimpleRNN = _Bidirectional = _recurrent

    def _mask_plan(self, x: str, mask: str, name: str) -> dict:
        """What every copy of a masked recurrent layer shares: x with each row's valid steps gathered to the
        front (for the forward copy) and to the back (for the reverse copy), in order, and the counts that map
        compact steps back to time steps."""
        b = self.b
        steps = b.op("Cast", [mask], f"{name}/mask_int", to=_onnx_type("int64"))                  # (B, T)
        count = valid_step_count(b, steps, name)                                                   # (B, 1)
        T = self.time_length(x, name)
        t_scalar = b.op("Squeeze", [T], f"{name}/T_scalar")
        positions = b.op("Cast", [b.op("Range", [b.const(f"{name}/zero_step", 0, np.int64), t_scalar,
                                                 b.const(f"{name}/one_step", 1, np.int64)], f"{name}/steps")],
                         f"{name}/steps_float", to=_onnx_type("float32"))                          # (T,)
        shifted = b.op("Add", [positions, b.op("Cast", [t_scalar], f"{name}/T_float", to=_onnx_type("float32"))],
                       f"{name}/steps_shifted")
        x_shape = b.op("Shape", [x], f"{name}/x_shape")

        def gathered(keys_if_valid, keys_if_masked, what):  # x's steps sorted by key, ascending
            keys = b.op("Where", [mask, keys_if_valid, keys_if_masked], f"{name}/{what}_keys")     # (B, T)
            _, order = b.op("TopK", [keys, T], f"{name}/{what}_order", outputs=2, axis=1, largest=0, sorted=1)
            index = b.op("Expand", [self.unsqueeze_last(order, f"{name}/{what}_order_last"), x_shape],
                         f"{name}/{what}_index")
            return b.op("GatherElements", [x, index], f"{name}/{what}", axis=1)

        inclusive = b.op("CumSum", [steps, b.const(f"{name}/cumsum_axis", 1, np.int64)], f"{name}/valid_so_far")
        return {"valid_first": gathered(positions, shifted, "valid_first"),   # valid steps at 0 .. count-1
                "valid_last": gathered(shifted, positions, "valid_last"),     # valid steps at T-count .. T-1
                "mask": mask, "steps": steps, "inclusive": inclusive, "count": count, "T": T}

    def _unpack(self, y: str, plan: dict, reverse: bool, rs: bool, zero_output: bool, bidirectional: bool,
                tag: str) -> str:
        """A copy's compact outputs (B, T, U) back at Keras's steps, zeros where Keras gives zeros.

        Forward copy, at step t: the output after the valid steps <= t, compact index (valid steps up to t) - 1.
        Reverse copy (its valid steps at the back): the output after the valid steps >= t, compact index
        T - count + (valid steps before t). Not seen yet (no such valid step): 0, the output h0 = 0 stands for.
        """
        b = self.b

        def zero():
            return b.const(f"{tag}/zero", 0, np.int64)
        if rs:
            if reverse:
                before = b.op("Sub", [plan["inclusive"], plan["steps"]], f"{tag}/valid_before")
                seen = b.op("Less", [before, plan["count"]], f"{tag}/seen")
                index = compact_index_reverse(b, plan, before, tag)
            else:
                seen = b.op("Greater", [plan["inclusive"], zero()], f"{tag}/seen")
                index = compact_index_forward(b, plan["inclusive"], tag)
            keep = plan["mask"] if zero_output else seen
        else:  # the last output: the state after every valid step, at the last (first) compact index
            seen = b.op("Greater", [plan["count"], zero()], f"{tag}/seen")                          # (B, 1)
            index = (compact_index_reverse(b, plan, zero(), tag) if reverse
                     else compact_index_forward(b, plan["count"], tag))
            keep = seen
            if zero_output:  # the last step read, t = T-1 (or 0 going backwards), is masked: 0
                keep = b.op("Gather", [plan["mask"], b.const(f"{tag}/last_step", [0 if reverse else -1], np.int64)],
                            f"{tag}/last_step_valid", axis=1)
        index = b.op("Expand", [self.unsqueeze_last(index, f"{tag}/index_last"),
                                b.op("Concat", [b.op("Shape", [index], f"{tag}/index_shape"),
                                                b.op("Shape", [y], f"{tag}/units", start=2)], f"{tag}/gather_shape",
                                     axis=0)], f"{tag}/index")
        out = self.zeros_where_not(keep, b.op("GatherElements", [y, index], f"{tag}/at_steps", axis=1),
                                   f"{tag}/masked")
        if not rs:
            return b.op("Squeeze", [out, b.const(f"{tag}/step_axis", [1], np.int64)], f"{tag}/last")
        if reverse and not bidirectional:  # go_backwards: the outputs in processing order
            return self.flip_time(out, f"{tag}/processing_order")
        return out


def valid_step_count(b: _Builder, steps: str, name: str) -> str:
    """Each row's count of valid steps, (B, 1) int64: what ONNX's ``sequence_lens`` would hold. The forward copy's
    last output is read at count - 1, the reverse copy's valid steps start at T - count."""
    return b.op("ReduceSum", [steps, b.const(f"{name}/time_axis", [1], np.int64)], f"{name}/valid_count", keepdims=1)


def compact_index_forward(b: _Builder, valid_so_far: str, tag: str) -> str:
    """The forward copy's compact index of the last valid step among the first ``valid_so_far`` (>= 0)."""
    last = b.op("Sub", [valid_so_far, b.const(f"{tag}/one", 1, np.int64)], f"{tag}/last_valid_raw")
    return b.op("Max", [last, b.const(f"{tag}/first", 0, np.int64)], f"{tag}/last_valid")


def compact_index_reverse(b: _Builder, plan: dict, valid_before: str, tag: str) -> str:
    """The reverse copy's compact index of the first valid step after ``valid_before`` valid ones (< T)."""
    start = b.op("Sub", [plan["T"], plan["count"]], f"{tag}/first_valid_at")                      # (B, 1)
    index = b.op("Add", [start, valid_before], f"{tag}/first_valid_raw")
    last = b.op("Sub", [plan["T"], b.const(f"{tag}/one", 1, np.int64)], f"{tag}/T_minus_1")
    return b.op("Min", [index, last], f"{tag}/first_valid")


def _same_cell(a: dict, b: dict) -> bool:
    keys = ("cell", "activation", "recurrent_activation", "reset_after")
    return all(a.get(k) == b.get(k) for k in keys)


def write_onnx(graph, input_specs: dict, *, name: str = "bilstm_lab_native"):
    """The ``onnx.ModelProto`` of ``graph`` (a ``reference.layers.LayerGraph``), float32, opset ``OPSET``.

    ``input_specs``: input name -> ``(Keras dtype name, shape without the batch)`` (``describe_model``'s
    ``input_dtypes`` and ``input_shapes``); the time axis is written free whatever the shape says. The model
    passes ``onnx.checker.check_model(full_check=True)``; outputs carry the shapes inference gives them.
    Raises ``NativeRefusal`` (one line naming the layer) for what it does not write.
    """
    import onnx
    from onnx import helper, shape_inference
    writer = _Writer(graph)
    inputs, outputs = writer.write(input_specs)
    proto_graph = helper.make_graph(writer.b.nodes, name, inputs, outputs, writer.b.initializers)
    model = helper.make_model(proto_graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="bilstm-lab native ONNX writer")
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {v.name: v for v in inferred.graph.output}
    for output in model.graph.output:  # the shapes inference found, the batch and time axes named as the inputs'
        if shapes[output.name].type.tensor_type.HasField("shape"):
            output.type.CopyFrom(shapes[output.name].type)
            for k, dim in enumerate(output.type.tensor_type.shape.dim[:2]):
                if not dim.HasField("dim_value"):  # widths are fixed by the weights: a free one is batch or time
                    dim.dim_param = (BATCH, TIME)[k]
    onnx.checker.check_model(model, full_check=True)
    return model
