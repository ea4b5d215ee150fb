"""Integer helpers of the loss waterfall: collateral at haircut value, pro-rata splits.

Shared by expiry settlement (``expiry.py``) and liquidation (``liquidation.py``). Every
function is pure integer arithmetic over the state it is given; none writes anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from settlekernel.arith import ceil_div, compute_collateral_value_minor
from settlekernel.units import PPM

if TYPE_CHECKING:
    from collections.abc import Sequence

    from settlekernel.model import Account, State


class Lot(NamedTuple):
    """Units of one collateral asset and their value at its haircut, in valuation minor units."""

    asset: str
    units_minor: int
    value_minor: int


def collateral_value_minor(state: State, asset: str, units_minor: int) -> int:
    """Return ``units_minor`` of an asset at its index less its haircut (SK-COLLATERAL-1).

    Rounded down; 0 for an asset that is not priced (no underlying, or no index yet).
    """
    rules = state.rules.asset_by_symbol[asset]
    underlying = rules.price_underlying
    if underlying is None or underlying not in state.prices:
        return 0
    return compute_collateral_value_minor(
        units_minor,
        state.prices[underlying].price_ticks,
        state.rules.underlying_by_symbol[underlying].tick_value_minor,
        rules.decimals,
        rules.haircut_ppm,
    )


def units_worth(state: State, asset: str, value_minor: int) -> int | None:
    """Return the fewest units of ``asset`` worth at least ``value_minor`` at haircut value.

    ``value(u) = floor(u * X / Y)`` with ``X = price * tick_value * (1e6 - haircut)`` and
    ``Y = 10**decimals * 1e6``, so ``value(u) >= v`` exactly when ``u >= v * Y / X``: the answer
    is ``ceil(v * Y / X)``. None for a worthless asset (no price, or a 100 % haircut).
    """
    rules = state.rules.asset_by_symbol[asset]
    underlying = rules.price_underlying
    if underlying is None or underlying not in state.prices:
        return None
    per_tick = state.rules.underlying_by_symbol[underlying].tick_value_minor
    numerator = state.prices[underlying].price_ticks * per_tick * (PPM - rules.haircut_ppm)
    if numerator == 0:
        return None
    return ceil_div(value_minor * 10**rules.decimals * PPM, numerator)


def seizable(state: State, account: Account, value_minor: int) -> list[Lot]:
    """Return the collateral to take from ``account`` to cover ``value_minor`` (SK-WATERFALL-1).

    Non-valuation assets in symbol order, each as far as needed: the fewest units worth the
    rest of the value, or the whole balance. Worthless assets are not taken. The lots' values
    sum to at least ``value_minor`` unless the account's priced collateral is worth less.
    """
    lots: list[Lot] = []
    remaining = value_minor
    for asset in sorted(account.balances):
        if remaining <= 0 or asset == state.rules.valuation_asset:
            continue
        needed = units_worth(state, asset, remaining)
        if needed is None:
            continue
        units = min(needed, account.balance(asset))
        value = collateral_value_minor(state, asset, units)
        lots.append(Lot(asset, units, value))
        remaining -= value
    return lots


def pro_rata_floor(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``, each share rounded down (SK-WATERFALL-2).

    The shares sum to at most ``total``; the remainder, less than the number of positive
    weights, is the caller's to post to the rounding residue.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0 for _ in weights]
    return [total * weight // weight_sum for weight in weights]


def pro_rata_ceil(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``, each share rounded up (SK-WATERFALL-2).

    For a loss charged to the weights' owners: the shares sum to at least ``total``, so the
    loss is always covered, by less than one unit more per owner; never more than a weight
    when ``total <= sum(weights)``.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0 for _ in weights]
    return [ceil_div(total * weight, weight_sum) for weight in weights]
