"""Elementary functions that give the same bits on every IEEE-754 machine (spec/50-margin.md).

NumPy's ``exp`` and ``log`` dispatch at run time to CPU-specific SIMD code (on x86 with
AVX-512 they use SVML kernels), whose last bits differ from the scalar path. A margin that
is one unit different on another machine could flip an accept into a reject and change the
state root. These functions are built only from operations IEEE 754 rounds correctly and
NumPy applies element by element without fusing (``+ - * /``, ``floor``, ``frexp``,
``ldexp``, comparisons and ``where``), in a fixed order, so their results are bit-identical
wherever they run (SK-MARGIN-DET-1).

Accuracy, checked in tests/test_detmath.py against ``math``: ``exp`` within 1 ulp, ``log``
within 3 ulp; ``norm_cdf`` within 2.3e-16 absolute everywhere, and relative to the (tiny)
lower-tail value within 2e-14 for |x| < 3, 3e-9 near |x| = 7 and 3e-13 beyond. Option
values depend on the absolute error.

All functions take and return float64 arrays (or scalars, broadcast to arrays).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Cody-Waite split of ln 2 (fdlibm): LN2_HI has trailing zero bits, so k * LN2_HI is exact
# for the |k| < 2**11 that range reduction produces.
LN2_HI: Final = 6.93147180369123816490e-01
LN2_LO: Final = 1.90821492927058770002e-10
INV_LN2: Final = 1.44269504088896338700e00
EXP_ARGUMENT_MIN: Final = -745.0  # exp underflows to 0 below this.
EXP_ARGUMENT_MAX: Final = 709.0  # Arguments are clamped here: no inf ever leaves.
# Taylor coefficients 1/n! for exp on |r| <= ln2/2: degree 13 leaves 4e-18 relative error.
_EXP_TERMS: Final = tuple(1.0 / math.factorial(n) for n in range(14))
# atanh series for log: log(m) = 2 s (1 + s^2/3 + s^4/5 + ...), |s| <= 0.1716, 12 terms.
_LOG_TERMS: Final = tuple(1.0 / (2 * n + 1) for n in range(12))
SQRT_HALF: Final = 0.70710678118654752440
INV_SQRT_TWO_PI: Final = 0.39894228040143267794
SQRT_TWO_PI: Final = 2.50662827463100050242
# Hart (1968) / West (2005) rational approximation of the normal tail probability.
_CDF_NUMERATOR: Final = (
    3.52624965998911e-02,
    0.700383064443688,
    6.37396220353165,
    33.912866078383,
    112.079291497871,
    221.213596169931,
    220.206867912376,
)
_CDF_DENOMINATOR: Final = (
    8.83883476483184e-02,
    1.75566716318264,
    16.064177579207,
    86.7807322029461,
    296.564248779674,
    637.333633378831,
    793.826512519948,
    440.413735824752,
)
_CDF_RATIONAL_LIMIT: Final = 7.07106781186547
_CDF_ZERO_BEYOND: Final = 37.0
_CDF_TAIL_DEPTH: Final = 12


def _as_array(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _horner(coefficients: tuple[float, ...], x: FloatArray) -> FloatArray:
    """Evaluate sum(c_i x^(n-i)) with c listed from the highest power down."""
    result = np.full_like(x, coefficients[0])
    for coefficient in coefficients[1:]:
        result = result * x + coefficient
    return result


def exp(x: npt.ArrayLike) -> FloatArray:
    """Return e**x, deterministic; arguments above 709 are clamped (no inf)."""
    argument = np.clip(_as_array(x), EXP_ARGUMENT_MIN - 1.0, EXP_ARGUMENT_MAX)
    k = np.floor(argument * INV_LN2 + 0.5)
    reduced = (argument - k * LN2_HI) - k * LN2_LO
    polynomial = _horner(_EXP_TERMS[::-1], reduced)
    result = np.ldexp(polynomial, k.astype(np.int64))
    return np.where(argument < EXP_ARGUMENT_MIN, 0.0, result)


def log(x: npt.ArrayLike) -> FloatArray:
    """Return the natural logarithm of x > 0, deterministic (x <= 0 gives -745, never nan)."""
    value = _as_array(x)
    positive = np.where(value > 0.0, value, 1.0)
    mantissa, exponent = np.frexp(positive)
    small = mantissa < SQRT_HALF
    mantissa = np.where(small, mantissa * 2.0, mantissa)
    exponent = np.where(small, exponent - 1, exponent).astype(np.float64)
    s = (mantissa - 1.0) / (mantissa + 1.0)
    series = _horner(_LOG_TERMS[::-1], s * s)
    result = exponent * LN2_HI + (2.0 * s * series + exponent * LN2_LO)
    return np.where(value > 0.0, result, EXP_ARGUMENT_MIN)


def norm_pdf(x: npt.ArrayLike) -> FloatArray:
    """Return the standard normal density, deterministic."""
    value = _as_array(x)
    return exp(-0.5 * value * value) * INV_SQRT_TWO_PI


def norm_cdf(x: npt.ArrayLike) -> FloatArray:
    """Return the standard normal distribution function, deterministic, never nan."""
    shape = np.shape(x)
    value = _as_array(x).reshape(-1)
    magnitude = np.minimum(np.abs(value), _CDF_ZERO_BEYOND)
    gaussian = exp(-0.5 * magnitude * magnitude)
    lower = gaussian * _horner(_CDF_NUMERATOR, magnitude) / _horner(_CDF_DENOMINATOR, magnitude)
    in_tail = magnitude >= _CDF_RATIONAL_LIMIT
    if in_tail.any():
        # Beyond the rational range, the continued fraction of the Mills ratio, evaluated on
        # those elements only (element-wise, so the subset does not change any bit).
        tail_magnitude = magnitude[in_tail]
        fraction = tail_magnitude + 0.0
        for k in range(_CDF_TAIL_DEPTH, 0, -1):
            fraction = tail_magnitude + k / fraction
        lower[in_tail] = gaussian[in_tail] / fraction / SQRT_TWO_PI
    lower = np.where(np.abs(value) >= _CDF_ZERO_BEYOND, 0.0, lower)
    return np.where(value > 0.0, 1.0 - lower, lower).reshape(shape)
