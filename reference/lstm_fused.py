"""The LSTM as a fused loop: the same equations as ``reference/lstm.py``'s ``step`` and ``step_grad``,
in fewer, larger NumPy calls.

``reference.rnn.run`` chooses it for the LSTM with Keras's default options (``Cell.fast_lstm``: tanh,
sigmoid, a bias) and applies the output rules of masking around it; this module carries the states,
and the states' gradients back. Three rewrites keep a default step to one small product and one tanh:

    Zx = x W + b                                  the input half of every step in one product, before the loop
    z_t = Zx_t + h R                              a step's product is the recurrent half alone
    sigmoid(a) = (1 + tanh(a / 2)) / 2            with the halving folded into the i, f, o weights (exact in
                                                  binary floating point): one tanh gives every gate

The loop holds a step's gates gate-major, ``(4, B, U)`` in the order i, f, o, g (``loop_order``): each gate
a contiguous block and the three sigmoid gates one leading block, so that every element-wise call runs over
whole contiguous blocks (over a column slice of a (B, 4U) block, or with a broadcast row, the same call costs
two to three times as much). The step's product is then four (B, U) x (U, U) products: measured with
OpenBLAS 0.3.31, faster than the one (B, U) x (U, 4U) on one thread, and kept on one thread where the wide
one is not (crnn_ocr's (16, 128) x (128, 512), whose second thread mostly waits at this size). ``Zx``
(T B, 4, U) is one wide product (the faster), step t's rows read gate-major as a strided view. Every step
writes into preallocated arrays (the tape itself, gate-major too), so that a step allocates nothing. It runs any other LSTM too (other
activations, no bias: the same products, each activation by name, the pre-activations kept for BPTT), so
that ``parity_tests/oracle/test_lstm_fused.py`` can hold it against the literal loop on every option.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import activate, activation_grad
from .cells import CellWeights

LOOP_GATES = [0, 1, 3, 2]  # the loop's gates i, f, o, g: their blocks among Keras's columns [i | f | g | o]


def loop_order(a: np.ndarray, U: int) -> np.ndarray:
    """(..., 4U) in Keras's column blocks -> (..., 4, U), the gates in the loop's order i, f, o, g (a copy)."""
    return a.reshape(*a.shape[:-1], 4, U)[..., LOOP_GATES, :]


@dataclass
class FusedTape:
    """Time-major, processing order: h_prev, c_prev (T, B, U) the states entering each step; gates
    (T, 4, B, U) the activated gates, gate-major in the loop's order i, f, o, g; c_new (T, B, U) the cell
    state each step computed (before masking chose between it and the carried one) and tanh_c (T, B, U) its
    activation (tanh by default); pre (T, 4, B, U) the gates' pre-activations, kept for other activations
    only."""
    h_prev: np.ndarray
    c_prev: np.ndarray
    gates: np.ndarray
    c_new: np.ndarray
    tanh_c: np.ndarray
    pre: np.ndarray | None = None


def packing_order(mask) -> tuple[np.ndarray, np.ndarray] | None:
    """``(order, valid)`` where sorting the rows by ``order`` makes every step's valid rows a leading block
    (``valid[t]`` rows), or None where the mask has none to skip (None, every step valid) or no such order.

    Sorted by their count of valid steps (most first), the rows of a padded batch have this form in either
    processing order: right padding read forward (a row is valid at step t while t < its length), left
    padding read forward or right padding read backwards (valid from step T - length on). A mask with holes
    has no such order and takes the masked loop.
    """
    if mask is None:
        return None
    counts = mask.sum(axis=1)
    order = np.argsort(-counts, kind="stable")
    valid = mask.sum(axis=0)  # (T,): the rows valid at each step
    if counts.min() == mask.shape[1]:
        return None  # every step valid: nothing to skip
    if not np.array_equal(mask[order], np.arange(mask.shape[0])[:, None] < valid[None, :]):
        return None
    return order, valid


def loop_weights(weights: CellWeights, U: int, dtype, halve_sigmoid_gates: bool):
    """``(W (D, 4, U), R (4, U, U), b (4, U) or None)``: the kernels in the loop's gate order, R gate by gate
    for a step's product; with ``halve_sigmoid_gates`` (``Cell.fast_lstm``), 0.5 on i, f, o (one tanh gives
    every gate)."""
    kernel, recurrent_kernel, bias = weights
    W, R = (loop_order(w.astype(dtype), U) for w in (kernel, recurrent_kernel))  # (D, 4, U), (U, 4, U)
    b = None if bias is None else loop_order(bias.astype(dtype), U)  # (4, U)
    if halve_sigmoid_gates:
        for w in (W, R, b):
            if w is not None:
                w[..., :3, :] *= 0.5
    return W, np.ascontiguousarray(R.transpose(1, 0, 2)), b


def run_unmasked_inference(x, weights: CellWeights, states, dtype):
    """``run``'s loop for a default LSTM (``Cell.fast_lstm``) with no mask and no tape: the same NumPy calls on
    the same values in the same order (so the same bits: ``parity_tests/oracle/test_lstm_fused.py`` holds the
    inference loop to the taped one), each step's views made before the loop and nothing else between the
    calls. Each Python operation between two NumPy calls holds the GIL; where a Bidirectional's two directions
    run on two threads (``reference/parallel.py``) the other direction waits for it: crnn_ocr's two BiLSTMs
    took 7.5 and 7.1 ms in ``run``'s loop, 6.5 and 5.9 here (medians of 40, the 2-core machine)."""
    (h0, c0), U = states, weights.recurrent_kernel.shape[0]
    B, T, D = x.shape
    W, R, b = loop_weights(weights, U, dtype, halve_sigmoid_gates=True)
    Zx = (np.asarray(x.transpose(1, 0, 2).reshape(T * B, D), dtype) @ W.reshape(D, 4 * U)).reshape(T, B, 4, U)
    Zx += b  # (a default LSTM has a bias)
    H = np.empty((T + 1, B, U), dtype)
    C = np.empty((2, B, U), dtype)
    H[0], C[0] = h0, c0
    z, ig, tanh_c = np.empty((4, B, U), dtype), np.empty((B, U), dtype), np.empty((B, U), dtype)
    sigmoids, (i, f, o, g) = z[:3], z
    h_steps, zx_steps, c_slots = list(H), list(Zx.transpose(0, 2, 1, 3)), (C[0], C[1])  # views, (4, B, U) each
    for t in range(T):
        c_in, c_next = c_slots[t & 1], c_slots[(t + 1) & 1]
        np.matmul(h_steps[t], R, out=z)
        z += zx_steps[t]                   # z = h R + x_t W + b
        np.tanh(z, out=z)
        sigmoids *= 0.5                    # i, f and o: tanh(a / 2) -> sigmoid(a)
        sigmoids += 0.5
        np.multiply(f, c_in, out=c_next)
        np.multiply(i, g, out=ig)
        c_next += ig
        np.tanh(c_next, out=tanh_c)
        np.multiply(o, tanh_c, out=h_steps[t + 1])
    return H[1:], (H[T], C[T & 1]), None


def run(cell, steps, x, weights: CellWeights, states, mask, keep_cache, packed=None):
    """``reference.rnn.run``'s loop for an LSTM: ``(carried h (T, B, U), (h_T, c_T), FusedTape or None)``.

    Without ``keep_cache`` (inference) it keeps one step of the gates and two of c.

    ``packed`` (None: wherever ``packing_order`` finds an order; False: never) computes a step on its
    valid rows only, the rows sorted so that those are a leading block (PyTorch's packed sequences): a
    masked row carries its states, so what a step would compute for it is never read. A padded batch of
    uniformly drawn lengths has about half its (row, step) pairs masked. The tape's masked rows hold zeros
    (BPTT multiplies them by the mask's 0). ``parity_tests/oracle/test_fast_paths.py`` holds it to the
    loop over every row.
    """
    (h0, c0), (kernel, recurrent_kernel, bias) = states, weights
    B, T, D = x.shape
    U = recurrent_kernel.shape[0]
    dtype = np.result_type(x, kernel, recurrent_kernel, h0, c0, *([] if bias is None else [bias]))
    if mask is None and not keep_cache and cell.fast_lstm:
        return run_unmasked_inference(x, weights, states, dtype)
    packing = packing_order(mask) if packed is not False else None
    x_steps = x.transpose(1, 0, 2)  # (T, B, D), time-major
    valid = np.full(T, B)  # the rows each step computes: [0, valid[t])
    if packing is not None:
        order, valid = packing
        x_steps, h0, c0, mask = x_steps[:, order], h0[order], c0[order], None
    first = np.concatenate([[0], np.cumsum(valid)])  # step t's rows of the input half: [first[t], first[t + 1])
    W, R, b = loop_weights(weights, U, dtype, halve_sigmoid_gates=cell.fast_lstm)
    # Every step's input half in one product (all four gates at once: one wide product is the faster), of
    # the rows each step computes (all of them, or the valid ones: PyTorch's packed data), step after step.
    x_rows = x_steps[np.arange(B) < valid[:, None]] if packing is not None else x_steps.reshape(T * B, D)
    Zx = (np.asarray(x_rows, dtype) @ W.reshape(D, 4 * U)).reshape(-1, 4, U)
    if b is not None:
        Zx += b
    H = np.empty((T + 1, B, U), dtype)  # states entering step t at [t]; H[1:] are the carried outputs
    steps_kept = T if keep_cache else 1
    gates = np.empty((steps_kept, 4, B, U), dtype)  # z, then the activated gates, gate-major
    pre = None if cell.fast_lstm else np.empty((steps_kept, 4, B, U), dtype)
    C = np.empty((T + 1 if keep_cache else 2, B, U), dtype)
    H[0], C[0] = h0, c0
    tanh_c = np.empty((steps_kept, B, U), dtype)
    c_new = C[1:] if mask is None and not (keep_cache and packing) else np.empty((steps_kept, B, U), dtype)
    h_new = H[1:] if mask is None else np.empty((T, B, U), dtype)
    hR, ig = np.empty((4, B, U), dtype), np.empty((B, U), dtype)
    slot = (lambda k: k) if keep_cache else (lambda k: k % 2)  # C's slot for the c entering step k
    for t in range(T):
        c_in, c_next = C[slot(t)], C[slot(t + 1)]
        c_prime = c_new[t] if keep_cache else (c_next if mask is None else c_new[0])  # c' of this step
        tanh_c_prime = tanh_c[t if keep_cache else 0]
        z = gates[t if keep_cache else 0]  # (4, B, U)
        n = int(valid[t])  # the rows this step computes: [0, n)
        if n < B:  # the masked rows carry their states (and leave zeros on the tape)
            H[t + 1, n:], c_next[n:] = H[t, n:], c_in[n:]
            if keep_cache:
                z[:, n:], tanh_c_prime[n:], c_prime[n:] = 0.0, 0.0, 0.0
                if pre is not None:
                    pre[t, :, n:] = 0.0
            if n == 0:
                continue
            z, tanh_c_prime, c_prime, c_in = z[:, :n], tanh_c_prime[:n], c_prime[:n], c_in[:n]
        np.matmul(H[t, :n], R, out=hR[:, :n])
        np.add(hR[:, :n], Zx[first[t]:first[t + 1]].transpose(1, 0, 2), out=z)  # z = h R + x_t W + b
        if pre is None:
            np.tanh(z, out=z)
            sigmoids = z[:3]  # i, f and o: tanh(a / 2) -> sigmoid(a)
            sigmoids *= 0.5
            sigmoids += 0.5
        else:
            a = pre[t if keep_cache else 0, :, :n]
            a[...] = z
            z[:3], z[3] = activate(cell.recurrent_activation, a[:3]), activate(cell.activation, a[3])
        i, f, o, g = z
        np.multiply(f, c_in, out=c_prime)
        np.multiply(i, g, out=ig[:n])
        c_prime += ig[:n]
        if pre is None:
            np.tanh(c_prime, out=tanh_c_prime)
        else:
            tanh_c_prime[...] = activate(cell.activation, c_prime)
        np.multiply(o, tanh_c_prime, out=h_new[t, :n])
        if mask is not None:
            m = mask[:, t, None]  # (B, 1)
            np.copyto(H[t + 1], np.where(m, h_new[t], H[t]))
            np.copyto(c_next, np.where(m, c_prime, c_in))
        elif keep_cache and packing is not None:
            c_next[:n] = c_prime
    if packing is not None:  # the rows back in the batch's order
        rows = np.argsort(order)
        H, C = H[:, rows], C[:, rows]
        if keep_cache:
            gates, tanh_c, c_new = gates[:, :, rows], tanh_c[:, rows], c_new[:, rows]
            pre = None if pre is None else pre[:, :, rows]
    tape = FusedTape(H[:-1], C[:-1], gates, c_new, tanh_c, pre) if keep_cache else None
    return H[1:], (H[T], C[slot(T)]), tape


def backward(cell, x, mask, tape: FusedTape, weights: CellWeights, dcarried):
    """``reference.rnn.backward``'s BPTT for an LSTM: ``(CellWeights of gradients, dx (B, T, D))``,
    processing order; ``dcarried`` (T, B, U) is the gradient by the carried h of every step.

    The derivative of ``reference.lstm.step_grad``, step by step into preallocated buffers (whole-sequence
    temporaries cost more in fresh memory than they save in calls). By default, with sigmoid' = s (1 - s)
    and tanh' = 1 - tanh^2:

        dc' = m dc + dh' o (1 - tanh(c')^2)
        di = dc' g i (1 - i);  df = dc' c f (1 - f);  dg = dc' i (1 - g^2);  do = dh' tanh(c') o (1 - o)

    Other activations take their derivatives for the whole sequence first (``activation_grad``).
    """
    T, B, U = tape.h_prev.shape
    gates, tanh_c, dtype = tape.gates, tape.tanh_c, tape.gates.dtype
    m = None if mask is None else mask.T[..., None].astype(dtype)  # (T, B, 1)
    dz = np.empty((T, B, 4 * U), dtype)
    R_T = np.ascontiguousarray(weights.recurrent_kernel.T, dtype=dtype)  # (4U, U)
    dh, dc = np.zeros((B, U), dtype), np.zeros((B, U), dtype)
    a, b = np.empty((B, U), dtype), np.empty((B, U), dtype)
    if tape.pre is not None:  # d gate / d pre-activation (T, 4, B, U) and act'(c') (T, B, U)
        F = np.empty_like(gates)
        F[:, :3] = activation_grad(cell.recurrent_activation, tape.pre[:, :3], gates[:, :3])
        F[:, 3] = activation_grad(cell.activation, tape.pre[:, 3], gates[:, 3])
        F_c = activation_grad(cell.activation, tape.c_new, tanh_c)
    for t in range(T - 1, -1, -1):
        i, f, o, g = gates[t]
        di, df, dg, do = (dz[t, :, k * U:(k + 1) * U] for k in range(4))
        dh += dcarried[t]
        dh_new = dh if m is None else m[t] * dh
        dc_new = dc if m is None else m[t] * dc
        if tape.pre is not None:
            dc_new += dh_new * o * F_c[t]
            F_i, F_f, F_o, F_g = F[t]
            np.multiply(dh_new * tanh_c[t], F_o, out=do)
            np.multiply(dc_new * g, F_i, out=di)
            np.multiply(dc_new * tape.c_prev[t], F_f, out=df)
            np.multiply(dc_new * i, F_g, out=dg)
        else:
            np.multiply(dh_new, tanh_c[t], out=do)                         # do = dh' tanh(c') o (1 - o)
            np.subtract(1.0, o, out=a)
            a *= o
            do *= a
            np.square(tanh_c[t], out=a)                                    # dc' += dh' o (1 - tanh(c')^2)
            np.subtract(1.0, a, out=a)
            a *= o
            a *= dh_new
            dc_new += a
            np.subtract(1.0, i, out=a)                                     # di = dc' g i (1 - i)
            a *= i
            a *= g
            np.multiply(dc_new, a, out=di)
            np.subtract(1.0, f, out=a)                                     # df = dc' c f (1 - f)
            a *= f
            a *= tape.c_prev[t]
            np.multiply(dc_new, a, out=df)
            np.square(g, out=a)                                            # dg = dc' i (1 - g^2)
            np.subtract(1.0, a, out=a)
            a *= i
            np.multiply(dc_new, a, out=dg)
        if m is None:
            np.matmul(dz[t], R_T, out=dh)
            dc_new *= f  # dc is dc_new: now the gradient entering step t-1
        else:
            keep = 1.0 - m[t]  # masked rows pass dh, dc straight to the previous step
            np.multiply(keep, dh, out=b)
            dh = dz[t] @ R_T + b
            dc = dc_new * f + keep * dc
    dz = dz.reshape(T * B, 4 * U)  # every step's dz, for one matmul a weight
    x_rows = x.transpose(1, 0, 2).reshape(T * B, -1)  # (T B, D), the rows in dz's order
    d_bias = dz.sum(axis=0) if cell.use_bias else None
    grads = CellWeights(x_rows.T @ dz, tape.h_prev.reshape(T * B, U).T @ dz, d_bias)
    dx = (dz @ weights.kernel.T).reshape(T, B, -1).transpose(1, 0, 2)  # (B, T, D), processing order
    return grads, dx
