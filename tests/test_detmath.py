"""Deterministic elementary functions: accurate, and the same bits as a scalar evaluation.

The margin engine's floats must not depend on the CPU (SK-MARGIN-DET-1). The vectorised
functions are checked bit for bit against an independent scalar evaluation of the same
operation sequence with Python floats, which use no SIMD kernels, and against ``math`` for
accuracy. A tidy check keeps NumPy's transcendental functions out of the margin package.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from settlekernel.margin import detmath as dm

MARGIN = Path(__file__).resolve().parent.parent / "src" / "settlekernel" / "margin"
RNG = np.random.default_rng(20261121)


def scalar_exp(x: float) -> float:
    """The detmath.exp operation sequence on one Python float."""
    x = min(max(x, dm.EXP_ARGUMENT_MIN - 1.0), dm.EXP_ARGUMENT_MAX)
    k = math.floor(x * dm.INV_LN2 + 0.5)
    r = (x - k * dm.LN2_HI) - k * dm.LN2_LO
    p = dm._EXP_TERMS[-1]
    for c in dm._EXP_TERMS[-2::-1]:
        p = p * r + c
    return 0.0 if x < dm.EXP_ARGUMENT_MIN else math.ldexp(p, k)


def test_exp_and_log_are_accurate():
    """Stays within 1 ulp (exp) and 3 ulp (log) of the math module."""
    x = np.concatenate([RNG.uniform(-745, 709, 100_000), RNG.uniform(-2, 2, 100_000)])
    reference = np.array([math.exp(v) for v in x])
    ulps = np.abs(dm.exp(x) - reference) / np.spacing(reference)
    assert ulps[reference > 1e-300].max() <= 1.0
    y = np.exp(RNG.uniform(-700, 700, 100_000))
    reference = np.array([math.log(v) for v in y])
    ulps = np.abs(dm.log(y) - reference) / np.spacing(np.abs(reference))
    assert ulps[np.abs(reference) > 1e-3].max() <= 3.0


def test_norm_cdf_is_accurate_everywhere():
    """Stays within 2.3e-16 of erfc on the whole line and never returns nan."""
    z = np.concatenate([np.linspace(-40, 40, 100_001), RNG.normal(0, 3, 100_000)])
    reference = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    assert np.abs(dm.norm_cdf(z) - reference).max() <= 2.3e-16
    assert not np.isnan(dm.norm_cdf(np.array([1e308, -1e308, np.inf, -np.inf]))).any()


@given(st.lists(st.floats(-745, 709, allow_nan=False), min_size=1, max_size=64))
def test_vector_exp_equals_scalar_evaluation_bit_for_bit(values):
    """Gives the same bits as the scalar evaluation, whatever the array length or CPU."""
    vector = dm.exp(np.array(values))
    assert [v.hex() for v in vector.tolist()] == [scalar_exp(v).hex() for v in values]


def test_results_do_not_depend_on_batch_composition():
    """Gives an element the same bits alone, in a small batch and in a large one."""
    z = RNG.normal(0, 5, 10_001)
    whole = dm.norm_cdf(z)
    for index in (0, 17, 5_000, 10_000):
        assert dm.norm_cdf(z[index : index + 1])[0] == whole[index]
        assert dm.norm_cdf(np.float64(z[index])) == whole[index]


def test_margin_package_uses_no_cpu_dependent_functions():
    """Calls no NumPy transcendental function (exp, log, erf, power...) in the margin package."""
    banned = {
        "exp",
        "expm1",
        "exp2",
        "log",
        "log1p",
        "log2",
        "log10",
        "power",
        "sin",
        "cos",
        "tanh",
        "erf",
        "erfc",
        "float_power",
        "cbrt",
    }
    found = []
    for path in MARGIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "np"
                and node.attr in banned
            ):
                found.append(f"{path.name}: np.{node.attr}")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "math"
                and node.attr in banned
            ):
                found.append(f"{path.name}: math.{node.attr}")
    assert found == []
