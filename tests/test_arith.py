"""The contracted arithmetic against exact rationals (CrossHair proves the contracts too)."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from settlekernel.core.arith import (
    apply_transfer,
    ceil_div,
    compute_fee_split,
    compute_linear_margin_minor,
    compute_settlement_minor,
)
from settlekernel.kernel.transitions.waterfall import pro_rata_ceil, pro_rata_floor
from strategies import edge_ints

amounts = edge_ints(0, 2**96 - 1)
rates = edge_ints(0, 1_000_000)


@given(amounts, edge_ints(1, 2**64))
def test_ceil_div_is_the_exact_ceiling(numerator, denominator):
    """Equals the ceiling of the exact quotient."""
    assert ceil_div(numerator, denominator) == math.ceil(Fraction(numerator, denominator))


@given(amounts, rates)
def test_fee_split_rounds_against_the_account_and_loses_nothing(notional, rate):
    """Charges the ceiling, pools the floor, and leaves dust of 1 only when inexact."""
    exact = Fraction(notional * rate, 1_000_000)
    split = compute_fee_split(notional, rate)
    assert split.charged_minor == math.ceil(exact)
    assert split.pool_minor == math.floor(exact)
    assert split.charged_minor == split.pool_minor + split.residue_minor
    assert split.residue_minor == (0 if exact.denominator == 1 else 1)


@given(
    st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=8),
    edge_ints(1, 10**15),
    edge_ints(1, 10**15),
    edge_ints(1, 10**12),
)
def test_settlement_of_a_zero_sum_book_is_zero_sum(quantities, mark, reference, multiplier):
    """Pays out nothing in total when positions net to zero at one reference."""
    book = [*quantities, -sum(quantities)]
    flows = [compute_settlement_minor(q, mark, reference, multiplier) for q in book]
    assert sum(flows) == 0


@given(amounts, amounts, amounts)
def test_transfer_conserves(source, target, amount):
    """Keeps the sum of two balances when one pays the other."""
    if amount > source:
        return
    moved = apply_transfer(source, target, amount)
    assert moved.source_minor + moved.target_minor == source + target


@given(amounts, amounts, rates)
def test_margin_is_monotone_and_rounded_up(small, large, rate):
    """Never requires less for a larger notional, and never less than the exact amount."""
    low, high = sorted((small, large))
    assert compute_linear_margin_minor(low, rate) <= compute_linear_margin_minor(high, rate)
    assert compute_linear_margin_minor(low, rate) >= Fraction(low * rate, 1_000_000)


@given(
    total=st.integers(0, 10**30),
    weights=st.lists(st.integers(0, 10**20), min_size=1, max_size=8),
)
def test_pro_rata_splits_lose_or_add_less_than_one_unit_per_share(total, weights):
    """Splits a payment down and a loss up, off by less than one unit per positive weight."""
    positive = sum(1 for weight in weights if weight > 0)
    down, up = pro_rata_floor(total, weights), pro_rata_ceil(total, weights)
    if positive == 0:
        assert down == up == [0] * len(weights)
        return
    assert 0 <= total - sum(down) < positive
    assert 0 <= sum(up) - total < positive
    if total <= sum(weights):
        assert all(0 <= share <= weight for share, weight in zip(up, weights, strict=True))
