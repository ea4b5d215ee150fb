"""Pure integer arithmetic of the kernel, with contracts that CrossHair checks.

Every function here is loop-free, takes and returns plain ``int``s, and states its contract
as PEP 316 ``pre:``/``post:`` lines. ``make test`` runs ``crosshair check`` over this module
with a per-condition timeout; ``tests/test_crosshair.py`` plants a bug in a copy of each
function once to show that the check can fail.

Rounding rule (SK-ROUND-1): a division rounds in the system's favour. An amount the account
pays is rounded up; the part above the exact floor is dust that goes to the rounding-residue
account, so nothing is lost and conservation stays exact.
"""

from __future__ import annotations

from typing import NamedTuple

from settlekernel.core.units import PPM


def ceil_div(numerator: int, denominator: int) -> int:
    """Return the ceiling of ``numerator / denominator`` for a positive denominator.

    pre: numerator >= 0
    pre: denominator > 0
    post: __return__ * denominator >= numerator
    post: (__return__ - 1) * denominator < numerator or __return__ == 0
    """
    return -((-numerator) // denominator)


def compute_notional_minor(quantity_lots: int, price_ticks: int, multiplier_minor: int) -> int:
    """Return the exact notional ``|quantity| * price * multiplier`` in settlement minor units.

    pre: price_ticks >= 0
    pre: multiplier_minor > 0
    post: __return__ >= 0
    post: __return__ == abs(quantity_lots) * price_ticks * multiplier_minor
    """
    return abs(quantity_lots) * price_ticks * multiplier_minor


class FeeSplit(NamedTuple):
    """A fee charged to an account, split between the fee pool and the rounding residue."""

    charged_minor: int
    pool_minor: int
    residue_minor: int


def compute_fee_split(notional_minor: int, fee_rate_ppm: int) -> FeeSplit:
    """Split the fee on ``notional_minor`` at ``fee_rate_ppm`` (SK-ROUND-1, SK-TRADE-FEE).

    The account is charged the ceiling of the exact fee; the fee pool receives its floor and
    the rounding residue the difference, which is 0 or 1 minor unit.

    pre: notional_minor >= 0
    pre: 0 <= fee_rate_ppm <= 1_000_000
    post: __return__.charged_minor == __return__.pool_minor + __return__.residue_minor
    post: __return__.charged_minor * 1_000_000 >= notional_minor * fee_rate_ppm
    post: __return__.pool_minor * 1_000_000 <= notional_minor * fee_rate_ppm
    post: 0 <= __return__.residue_minor <= 1
    post: __return__.charged_minor <= notional_minor
    """
    exact_numerator = notional_minor * fee_rate_ppm
    pool_minor = exact_numerator // PPM
    charged_minor = ceil_div(exact_numerator, PPM)
    return FeeSplit(charged_minor, pool_minor, charged_minor - pool_minor)


def compute_settlement_minor(
    quantity_lots: int, price_ticks: int, reference_ticks: int, multiplier_minor: int
) -> int:
    """Return the cash a holder of ``quantity_lots`` receives when moved to ``price_ticks``.

    This is the single settlement formula of the kernel (SK-SETTLE-1): variation margin,
    trade-date settlement against the instrument's reference price, and option premium (an
    option's reference is 0) are all ``quantity * (price - reference) * multiplier``. A
    negative result is a payment by the holder.

    pre: multiplier_minor > 0
    post: __return__ == quantity_lots * (price_ticks - reference_ticks) * multiplier_minor
    post: (quantity_lots == 0 or price_ticks == reference_ticks) == (__return__ == 0)
    """
    return quantity_lots * (price_ticks - reference_ticks) * multiplier_minor


class Transfer(NamedTuple):
    """Two balances after moving an amount from one to the other."""

    source_minor: int
    target_minor: int


def apply_transfer(source_minor: int, target_minor: int, amount_minor: int) -> Transfer:
    """Move ``amount_minor`` from a source balance to a target balance (SK-CONS-1).

    pre: amount_minor >= 0
    pre: source_minor >= amount_minor
    post: __return__.source_minor + __return__.target_minor == source_minor + target_minor
    post: __return__.source_minor >= 0
    post: __return__.target_minor >= target_minor
    """
    return Transfer(source_minor - amount_minor, target_minor + amount_minor)


def compute_linear_margin_minor(notional_minor: int, rate_ppm: int) -> int:
    """Return the margin ``notional * rate``, rounded up against the account (SK-MARGIN-1).

    pre: notional_minor >= 0
    pre: rate_ppm >= 0
    post: __return__ * 1_000_000 >= notional_minor * rate_ppm
    post: (__return__ - 1) * 1_000_000 < notional_minor * rate_ppm or __return__ == 0
    """
    return ceil_div(notional_minor * rate_ppm, PPM)


def compute_collateral_value_minor(
    amount_minor: int, price_ticks: int, tick_value_minor: int, decimals: int, haircut_ppm: int
) -> int:
    """Value ``amount_minor`` of an asset in valuation minor units after a haircut.

    ``price_ticks`` prices one whole unit of the asset (``10**decimals`` minor units), and one
    tick is worth ``tick_value_minor``. One division, rounded down: against the account
    (SK-COLLATERAL-1).

    pre: amount_minor >= 0
    pre: price_ticks >= 0
    pre: tick_value_minor >= 0
    pre: 0 <= decimals <= 30
    pre: 0 <= haircut_ppm <= 1_000_000
    post: __return__ >= 0
    post: __return__ * 10**decimals * 10**6 <= amount_minor * price_ticks * tick_value_minor * (10**6 - haircut_ppm)
    post: (__return__ + 1) * 10**decimals * 10**6 > amount_minor * price_ticks * tick_value_minor * (10**6 - haircut_ppm)
    """  # noqa: E501 (a contract is one line, and these products are long)
    numerator = amount_minor * price_ticks * tick_value_minor * (PPM - haircut_ppm)
    denominator: int = 10**decimals * PPM
    return numerator // denominator


def compute_intrinsic_ticks(*, is_call: bool, index_ticks: int, strike_ticks: int) -> int:
    """Return an option's intrinsic value per unit of underlying, in ticks.

    pre: index_ticks >= 0
    pre: strike_ticks >= 0
    post: __return__ >= 0
    post: __return__ <= max(index_ticks, strike_ticks)
    """
    if is_call:
        return max(index_ticks - strike_ticks, 0)
    return max(strike_ticks - index_ticks, 0)


def ceil_ratio(numerator: int, denominator: int) -> int:
    """Return the ceiling of ``numerator / denominator`` for any numerator (SK-LIQ-3).

    pre: denominator > 0
    post: __return__ * denominator >= numerator
    post: (__return__ - 1) * denominator < numerator
    """
    return (numerator + denominator - 1) // denominator


def compute_premium_ppm(price_ticks: int, index_ticks: int, band_ppm: int) -> int:
    """Return a price's premium over the index in ppm, toward zero, within +-band (SK-MARK-1).

    pre: price_ticks >= 0
    pre: index_ticks > 0
    pre: band_ppm >= 0
    post: -band_ppm <= __return__ <= band_ppm
    post: abs(__return__) * index_ticks <= abs(price_ticks - index_ticks) * 1_000_000
    post: __return__ == 0 or (__return__ > 0) == (price_ticks > index_ticks)
    """
    difference = price_ticks - index_ticks
    magnitude = abs(difference) * PPM // index_ticks
    premium = magnitude if difference >= 0 else -magnitude
    return min(max(premium, -band_ppm), band_ppm)


def share_down(total: int, weight: int, weight_sum: int) -> int:
    """Return ``weight``'s share of ``total``, rounded down (SK-WATERFALL-2).

    Summed over weights that add up to ``weight_sum``, the shares fall short of ``total`` by
    less than one unit per positive weight: each loses less than one.

    pre: total >= 0
    pre: weight_sum > 0
    pre: 0 <= weight <= weight_sum
    post: __return__ * weight_sum <= total * weight
    post: total * weight < (__return__ + 1) * weight_sum
    post: 0 <= __return__ <= total
    """
    return total * weight // weight_sum


def share_up(total: int, weight: int, weight_sum: int) -> int:
    """Return ``weight``'s share of a loss ``total``, rounded up (SK-WATERFALL-2).

    Summed, the shares cover the loss, by less than one unit more per positive weight; while
    the loss is at most ``weight_sum``, no share exceeds its weight.

    pre: total >= 0
    pre: weight_sum > 0
    pre: 0 <= weight <= weight_sum
    post: __return__ * weight_sum >= total * weight
    post: (__return__ - 1) * weight_sum < total * weight
    post: total > weight_sum or 0 <= __return__ <= weight
    """
    return ceil_div(total * weight, weight_sum)


def compute_band_move(accepted_ticks: int, median_ticks: int, band_ppm: int) -> int:
    """Return the index an oracle update accepts: the median, or a band-limited move (SK-ORACLE-3).

    Within ``band_ppm`` of the last accepted index the median is accepted; beyond it the index
    moves toward the median by ``floor(accepted * band / 1e6)`` ticks, no further, and never
    below one tick.

    pre: accepted_ticks >= 1
    pre: median_ticks >= 1
    pre: 0 <= band_ppm < 1_000_000
    post: __return__ >= 1
    post: abs(__return__ - accepted_ticks) * 1_000_000 <= accepted_ticks * band_ppm
    post: (__return__ - accepted_ticks) * (median_ticks - accepted_ticks) >= 0
    post: abs(median_ticks - accepted_ticks) * 1_000_000 > accepted_ticks * band_ppm or __return__ == median_ticks
    """  # noqa: E501 (a contract is one line)
    if abs(median_ticks - accepted_ticks) * PPM <= accepted_ticks * band_ppm:
        return median_ticks
    limit = accepted_ticks * band_ppm // PPM
    moved = accepted_ticks + (limit if median_ticks > accepted_ticks else -limit)
    return max(moved, 1)


def compute_mark_ticks(index_ticks: int, premium_ppm: int) -> int:
    """Return the mark: the index shifted by the premium, rounded down, at least 1 (SK-MARK-1).

    pre: index_ticks >= 1
    pre: -1_000_000 < premium_ppm < 1_000_000
    post: __return__ >= 1
    post: __return__ == 1 or (__return__ - index_ticks) * 1_000_000 <= index_ticks * premium_ppm
    post: index_ticks * premium_ppm < (__return__ - index_ticks + 1) * 1_000_000
    """
    return max(index_ticks + index_ticks * premium_ppm // PPM, 1)


def compute_funding_charge(  # noqa: PLR0913, PLR0917 (one charge's figures, named one by one)
    index_ticks: int,
    premium_ppm: int,
    clamp_ppm: int,
    reference_ticks: int,
    price_ticks_max: int,
    intervals: int,
) -> int:
    """Return the reference shift of ``intervals`` funding intervals, in ticks (SK-FUNDING-2).

    Each interval's rate is the premium clamped to ``+-clamp_ppm`` and shifts the reference by
    ``index * |rate| / 1e6`` ticks, rounded toward zero, signed as the rate; the total keeps
    the reference within ``[1, price_ticks_max]``.

    pre: index_ticks >= 1
    pre: clamp_ppm >= 0
    pre: intervals >= 0
    pre: 1 <= reference_ticks <= price_ticks_max
    post: abs(__return__) * 1_000_000 <= intervals * index_ticks * clamp_ppm
    post: 1 <= reference_ticks + __return__ <= price_ticks_max
    post: __return__ == 0 or (__return__ > 0) == (premium_ppm > 0)
    """
    rate_ppm = min(max(premium_ppm, -clamp_ppm), clamp_ppm)
    magnitude = index_ticks * abs(rate_ppm) // PPM * intervals
    shifted = reference_ticks + (magnitude if rate_ppm >= 0 else -magnitude)
    return min(max(shifted, 1), price_ticks_max) - reference_ticks


def compute_average_ppm(integral_ppm_ms: int, elapsed_ms: int) -> int:
    """Return a time integral's average, rounded toward zero; 0 over no time (SK-FUNDING-2).

    post: elapsed_ms <= 0 or abs(__return__) * elapsed_ms <= abs(integral_ppm_ms)
    post: elapsed_ms <= 0 or abs(integral_ppm_ms) < (abs(__return__) + 1) * elapsed_ms
    post: __return__ == 0 or (__return__ > 0) == (integral_ppm_ms > 0)
    """
    if elapsed_ms <= 0:
        return 0
    magnitude = abs(integral_ppm_ms) // elapsed_ms
    return magnitude if integral_ppm_ms >= 0 else -magnitude


def compute_capped_penalty(charged_minor: int, pool_minor: int, cap_minor: int) -> FeeSplit:
    """Return a liquidation penalty capped by what the account can bear (SK-LIQ-3).

    The full penalty splits as a fee does (pool and residue); a capped penalty goes to the
    fund whole, with no dust, and is never negative.

    pre: 0 <= pool_minor <= charged_minor
    post: __return__.charged_minor == __return__.pool_minor + __return__.residue_minor
    post: 0 <= __return__.charged_minor <= charged_minor
    post: __return__.charged_minor <= max(cap_minor, 0)
    post: __return__.pool_minor >= 0 and __return__.residue_minor >= 0
    post: __return__.charged_minor == charged_minor or __return__.charged_minor == max(cap_minor, 0)
    """
    penalty = max(0, min(charged_minor, cap_minor))
    if penalty < charged_minor:
        return FeeSplit(penalty, penalty, 0)
    return FeeSplit(charged_minor, pool_minor, charged_minor - pool_minor)
