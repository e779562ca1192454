"""A product over the last axis of a batch of rows, as one matrix product (or one a thread).

NumPy's ``matmul`` of a (B, T, D) array by a (D, N) matrix is B separate (T, D) x (D, N) products, each a BLAS
call that wakes BLAS's threads: a CRNN's Dense over (16, 50, 768) took 3 to 17 ms that way, bimodal from call
to call, against 2 to 3 ms as one (800, 768) x (768, N) product (the 2-core machine, medians of 15 forwards).
The rows are the same, in the same order, so the sums are those of the same dot products. Where
``reference.parallel`` is on, the rows are split between its threads (BLAS then at one thread in each), as the
layers split their examples.
"""
from __future__ import annotations

import numpy as np

from .parallel import over_ranges


def last_axis_product(x, kernel) -> np.ndarray:
    """``x @ kernel`` for ``x`` (..., D) and ``kernel`` (D, N): one product of x's rows, shaped (..., N)."""
    x = np.asarray(x)
    kernel = np.asarray(kernel)
    rows = np.reshape(x, (-1, x.shape[-1]))
    out = np.empty((rows.shape[0], kernel.shape[-1]), np.result_type(x, kernel))

    def part(begin: int, end: int) -> None:
        np.matmul(rows[begin:end], kernel, out=out[begin:end])
    over_ranges(part, rows.shape[0], work=out.size * rows.shape[1])
    return out.reshape(x.shape[:-1] + kernel.shape[-1:])
