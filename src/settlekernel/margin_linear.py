"""Linear initial margin, per settlement asset (spec/50-margin.md, SK-MARGIN-1..4).

This is the foundation's margin model; the scenario portfolio-margin engine replaces it.
Until then every account has one margin pool per settlement asset it holds positions in:

- equity = balance + unrealised settlement of linear positions at the index price
  (``quantity * (index - settled) * multiplier``) - intrinsic value of short options;
- requirement = sum of ``ceil(|quantity| * index * multiplier * rate / 1e6)`` over linear
  positions (``im_rate_ppm``) and short options (``option_short_im_rate_ppm``, placeholder);
- long options count for nothing in equity and need nothing.

Everything is an exact integer; requirements round up, against the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from settlekernel.arith import (
    compute_intrinsic_ticks,
    compute_linear_margin_minor,
    compute_notional_minor,
    compute_settlement_minor,
)
from settlekernel.model import InstrumentKind, OptionType

if TYPE_CHECKING:
    from immutables import Map

    from settlekernel.model import Account, IndexPrice, Instrument, RuleSet


@attrs.frozen
class MarginPool:
    """An account's equity and initial-margin requirement in one settlement asset."""

    asset: str
    equity_minor: int
    requirement_minor: int

    @property
    def is_sufficient(self) -> bool:
        """Return whether equity covers the requirement (INV-MARGIN-AFTER-ACCEPT)."""
        return self.equity_minor >= self.requirement_minor


def compute_margin_pool(
    account: Account,
    asset: str,
    *,
    instruments: Map[str, Instrument],
    prices: Map[str, IndexPrice],
    rules: RuleSet,
) -> MarginPool:
    """Return ``account``'s margin pool in ``asset`` at the current index prices."""
    equity_minor = account.balances.get(asset, 0)
    requirement_minor = 0
    underlyings = rules.underlying_by_symbol
    for instrument_id, position in account.positions.items():
        instrument = instruments[instrument_id]
        if instrument.settlement_asset != asset:
            continue
        # A position can only exist once its underlying has an index price (SK-MARGIN-3).
        index_ticks = prices[instrument.underlying].price_ticks
        quantity_lots = position.quantity_lots
        multiplier_minor = instrument.multiplier_minor
        notional_minor = compute_notional_minor(quantity_lots, index_ticks, multiplier_minor)
        if instrument.kind is not InstrumentKind.OPTION:
            equity_minor += compute_settlement_minor(
                quantity_lots, index_ticks, position.settled_price_ticks, multiplier_minor
            )
            requirement_minor += compute_linear_margin_minor(
                notional_minor, underlyings[instrument.underlying].im_rate_ppm
            )
        elif quantity_lots < 0:
            assert instrument.strike_ticks is not None
            intrinsic_ticks = compute_intrinsic_ticks(
                is_call=instrument.option_type is OptionType.CALL,
                index_ticks=index_ticks,
                strike_ticks=instrument.strike_ticks,
            )
            equity_minor += quantity_lots * intrinsic_ticks * multiplier_minor
            requirement_minor += compute_linear_margin_minor(
                notional_minor, underlyings[instrument.underlying].option_short_im_rate_ppm
            )
    return MarginPool(asset, equity_minor, requirement_minor)
