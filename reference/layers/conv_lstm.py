"""Keras's ConvLSTM1D/2D/3D at inference (keras/src/layers/rnn/conv_lstm.py): an LSTM whose input and recurrent
products are convolutions (``reference/layers/convolutional.py``'s ``convolve``), zero initial states.

With x_t (B, *spatial, C), the kernel W (*k, C, 4F), the recurrent kernel R (*k, F, 4F) and the bias b (4F,), each
split in four along the last axis in Keras's gate order i, f, c, o (ConvLSTMCell.call, ``ops.split(.., 4,
axis=rank + 1)``):

    z_t = conv(x_t, W; strides, padding, dilation_rate) + b     the layer's geometry (ConvLSTMCell.input_conv)
        + conv(h_{t-1}, R; strides 1, "same", dilation 1)       (ConvLSTMCell.recurrent_conv: always so)
    i = ra(z_i), f = ra(z_f), c_t = f c_{t-1} + i act(z_c), o = ra(z_o), h_t = o act(c_t)

``act`` / ``ra``: the ``activation`` / ``recurrent_activation`` by Keras's name (``reference.cells.ACTIVATIONS``),
h_0 = c_0 = 0 of the output's spatial shape. The input convolution runs once for all steps ((B T, ...) at once);
the recurrent one once a step. ``data_format`` "channels_first" reads (B, T, C, *spatial) and writes
(B, [T,] F, *out). Dropout and recurrent dropout are identities at inference.

Options: ``strides``, ``padding`` ("valid" or "same"), ``dilation_rate``, ``data_format``, ``activation``,
``recurrent_activation``, ``go_backwards``, ``return_sequences``, ``return_state``, ``zero_output_for_mask``.
Weights ``(kernel, recurrent_kernel, bias)``, bias None for ``use_bias=False``.

``return_state``: three outputs, ``(y, h_T, c_T)``, the states after the last step processed (carried through
masked steps, so never the zero output), each in the layer's data_format (the cell's states are
``compute_output_shape`` of one step: keras/src/layers/rnn/conv_lstm.py L300-321; RNN.call returns
``output, *states``); their masks None (ConvLSTM.compute_mask, L567-569).

Mask rule (ConvLSTM subclasses RNN, keras/src/layers/rnn/rnn.py L212 ``supports_masking = True``): a (B, T) mask
is honoured as by every RNN (``reference/rnn.py``): a masked step carries (h, c) unchanged and outputs the carried
h (0 with ``zero_output_for_mask``; before a row's first valid step the carried h is h_0 = 0, so Keras's
backends agree). ``go_backwards`` reads x and the mask from the last step and returns the outputs in that
processing order. mask' = mask if return_sequences else None (ConvLSTM.compute_mask,
keras/src/layers/rnn/conv_lstm.py L564-571). Keras runs such a mask on TensorFlow and torch only (it reaches a
ConvLSTM through a wrapper such as TimeDistributed, or ``mask=``); on JAX its scan widens the mask to (B, 1)
and fails to broadcast it against the (B, *spatial, F) output (keras/src/backend/jax/rnn.py L154-173). A mask
of another shape (a Masking layer's (B, T, *spatial) one) makes Keras's call fail on every backend.
"""
from __future__ import annotations

import numpy as np

from ..activations import activate
from .convolutional import convolve
from .outputs import Outputs


def run_conv_lstm(x, mask, weights, opt: dict):
    """One ConvLSTM over ``x`` (B, T, *spatial, C), or channels_first, and its (B, T) ``mask`` or None:
    ``(y, h_T, c_T)`` (module docstring), each in the layer's data_format."""
    x = np.asarray(x)
    kernel, recurrent_kernel, bias = weights
    channels_first = opt.get("data_format") == "channels_first"
    if channels_first:
        x = np.moveaxis(x, 2, -1)
    if opt.get("go_backwards"):
        x = x[:, ::-1]
        mask = None if mask is None else mask[:, ::-1]
    batch, steps = x.shape[:2]
    z_in = convolve(x.reshape((batch * steps,) + x.shape[2:]), kernel, strides=tuple(opt["strides"]),
                    padding=opt["padding"], dilation_rate=tuple(opt["dilation_rate"]), bias=bias)
    z_in = z_in.reshape((batch, steps) + z_in.shape[1:])
    filters = recurrent_kernel.shape[-2]
    act, rec_act = opt.get("activation", "tanh"), opt.get("recurrent_activation", "sigmoid")
    h = np.zeros(z_in.shape[:1] + z_in.shape[2:-1] + (filters,))
    c = np.zeros_like(h)
    outputs = []
    for t in range(steps):
        z = convolve(h, recurrent_kernel, padding="same")
        z += z_in[:, t]  # in place on the fresh product
        z_i, z_f, z_c, z_o = np.split(z, 4, axis=-1)
        c_new = activate(rec_act, z_f) * c + activate(rec_act, z_i) * activate(act, z_c)
        h_new = activate(rec_act, z_o) * activate(act, c_new)
        if mask is None:
            h, c, out = h_new, c_new, h_new
        else:
            m = mask[:, t].reshape((batch,) + (1,) * (h.ndim - 1))
            h, c = np.where(m, h_new, h), np.where(m, c_new, c)
            out = np.where(m, h, 0.0) if opt.get("zero_output_for_mask") else h
        outputs.append(out)
    y = np.stack(outputs, axis=1) if opt.get("return_sequences") else outputs[-1]
    if channels_first:
        y = np.moveaxis(y, -1, 2 if opt.get("return_sequences") else 1)
        h, c = np.moveaxis(h, -1, 1), np.moveaxis(c, -1, 1)
    return y, h, c


def conv_lstm(layer, inputs, masks, tape=None):
    y, h, c = run_conv_lstm(inputs[0], masks[0], layer.weights, layer.options)
    output_mask = masks[0] if layer.options.get("return_sequences") else None
    if layer.options.get("return_state"):
        return Outputs([(y, output_mask), (h, None), (c, None)])
    return y, output_mask


FORWARD = {"ConvLSTM1D": conv_lstm, "ConvLSTM2D": conv_lstm, "ConvLSTM3D": conv_lstm}
