"""erf(x) for a whole float64 array at once: W. J. Cody's rational Chebyshev approximations (CALERF,
"Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969) 631-637; the coefficients
of netlib's specfun/erf), NumPy only. Three pieces by |x|:

    |x| <= 0.5        erf(x)  = x P1(x^2) / Q1(x^2)
    0.5 < |x| <= 4    erfc(y) = exp(-y^2) P2(y) / Q2(y)                       y = |x|
    |x| > 4           erfc(y) = exp(-y^2) (1/sqrt(pi) - z P3(z) / Q3(z)) / y  z = 1 / y^2
                      erf(x)  = sign(x) (1 - erfc(y))

exp(-y^2) is taken as exp(-s^2) exp(-(y - s)(y + s)) with s = y rounded down to a multiple of 1/16, so that
y^2's rounding does not reach the result. Held to ``math.erf`` (the C library's) within a few units in the
last place by ``parity_tests/oracle/test_fast_paths.py``; the oracle's exact gelu calls it for every entry.
"""
from __future__ import annotations

import numpy as np

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
      1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
      8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
      2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
      6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_ONE_OVER_SQRT_PI = 5.6418958354775628695e-1
_BIG = 26.543  # erfc(y) underflows to 0 beyond (Cody's XBIG): erf is +-1 there


def _small(x):
    """erf(x) for |x| <= 0.5."""
    x2 = x * x
    num, den = _A[4] * x2, x2
    for a, b in zip(_A[:3], _B[:3]):
        num, den = (num + a) * x2, (den + b) * x2
    return x * (num + _A[3]) / (den + _B[3])


def _exp_minus_square(y):
    """exp(-y^2), y^2 split so that its rounding error does not reach the result."""
    s = np.trunc(y * 16.0) / 16.0
    return np.exp(-s * s) * np.exp(-(y - s) * (y + s))


def _erfc_middle(y):
    """erfc(y) for 0.5 < y <= 4."""
    num, den = _C[8] * y, y
    for c, d in zip(_C[:7], _D[:7]):
        num, den = (num + c) * y, (den + d) * y
    return _exp_minus_square(y) * (num + _C[7]) / (den + _D[7])


def _erfc_large(y):
    """erfc(y) for y > 4 (0 where it underflows)."""
    z = 1.0 / (y * y)
    num, den = _P[5] * z, z
    for p, q in zip(_P[:4], _Q[:4]):
        num, den = (num + p) * z, (den + q) * z
    r = (_ONE_OVER_SQRT_PI - z * (num + _P[4]) / (den + _Q[4])) / y
    return np.where(y >= _BIG, 0.0, _exp_minus_square(np.minimum(y, _BIG)) * r)  # NaN stays NaN


def erf(x) -> np.ndarray:
    """erf of every entry of ``x`` (float64; NaN stays NaN, +-inf gives +-1)."""
    x = np.asarray(x, np.float64)
    y = np.abs(x)
    small = y <= 0.5
    out = np.empty_like(x)
    out[small] = _small(x[small])
    y = y[~small]  # the rest: erf = sign(x) (1 - erfc(|x|))
    erfc = np.empty_like(y)
    middle = y <= 4.0
    erfc[middle] = _erfc_middle(y[middle])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # inf and NaN: see _erfc_large
        erfc[~middle] = _erfc_large(y[~middle])
    out[~small] = np.copysign((0.5 - erfc) + 0.5, x[~small])
    return out
