"""A seeded population of accounts, their collateral and their books (SK-STRESS-2).

Four tiers, drawn with a numpy generator so a population is a pure function of its seed:

- ``retail``: USDC only, one perpetual at 2x to 8x leverage on its cash;
- ``pro``: USDC and BTC collateral, a perpetual or the dated future at 1x to 4x, half of
  them short a BTC strangle, the other half long a BTC put;
- ``collateral``: mostly ETH (or BTC) collateral and a thin USDC float, long the BTC
  perpetual at 1.5x to 3x the collateral's value after haircut: the cross-margin channel
  through which a collateral crash turns into BTC liquidations;
- ``maker``: a few well-funded market makers who take the other side of every trade.

Amounts become integer minor units here; leverage and premiums are floats only until they
are rounded (lots down, premium ticks half to even).
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np

from settlekernel.core.units import PPM
from settlekernel.margin.black76 import black76_price

USDC_MINOR: Final = 10**6
COIN_MINOR: Final = {"BTC": 10**8, "ETH": 10**18}
# Lot multipliers of the listed contracts (quote minor units per lot per tick).
MULTIPLIER_MINOR: Final = {"BTC": 10, "ETH": 100}
# The haircut a collateral-backed member sizes its position by (the built-in rules' values).
HAIRCUT_PPM: Final = {"BTC": 100_000, "ETH": 150_000}
TIERS: Final = ("retail", "pro", "collateral", "maker")
MAKERS: Final = 4
MAKER_CASH_MINOR: Final = 40_000_000 * USDC_MINOR
KEEPER: Final = "keeper"
KEEPER_CASH_MINOR: Final = 200_000_000 * USDC_MINOR
HOURS_PER_YEAR: Final = 24 * 365


@attrs.frozen
class Order:
    """A book entry to open at setup: signed lots (positive buys), and its price in ticks."""

    instrument: str
    lots: int
    price_ticks: int


@attrs.frozen
class Member:
    """One simulated account: its tier, deposits (asset, minor units) and opening orders."""

    account: str
    tier: str
    deposits: tuple[tuple[str, int], ...]
    orders: tuple[Order, ...]


@attrs.frozen
class Listing:
    """The instruments every path lists; futures and options expire at the path's end."""

    perpetuals: tuple[tuple[str, str], ...] = (("BTC-PERP", "BTC"), ("ETH-PERP", "ETH"))
    future: str = "BTC-FUT"
    call: str = "BTC-C"
    put: str = "BTC-P"
    call_strike_ppm: int = 1_150_000
    put_strike_ppm: int = 850_000


def strike_ticks(index_ticks: int, strike_ppm: int) -> int:
    """Return a strike at ``strike_ppm`` of the index, rounded down to a whole dollar."""
    return index_ticks * strike_ppm // 1_000_000 // 100 * 100


def option_premium_ticks(
    index_ticks: int, strike: int, hours: float, volatility: float, *, is_call: bool
) -> int:
    """Black-76 premium in ticks (the margin engine's own pricer), half to even, >= 1."""
    price = black76_price(index_ticks, strike, hours / HOURS_PER_YEAR, volatility, is_call)
    return max(int(np.rint(price)), 1)


def _lots(notional_minor: int, index_ticks: int, underlying: str) -> int:
    """Whole lots for a notional, rounded down, at least one."""
    return max(notional_minor // (index_ticks * MULTIPLIER_MINOR[underlying]), 1)


def _levered(amount_minor: int, leverage_ppm: int) -> int:
    """Return ``amount x leverage``, both exact: leverage is drawn in ppm, not as a float."""
    return amount_minor * leverage_ppm // PPM


def draw_population(  # noqa: PLR0913 (the population's shape, by keyword)
    rng: np.random.Generator,
    n_accounts: int,
    *,
    index_ticks: dict[str, int],
    volatility: dict[str, float],
    expiry_hours: float,
    listing: Listing = Listing(),
) -> list[Member]:
    """Return the market makers, then ``n_accounts`` members of the other three tiers."""
    members = [Member(f"mm-{k}", "maker", (("USDC", MAKER_CASH_MINOR),), ()) for k in range(MAKERS)]
    tiers = rng.choice(["retail", "pro", "collateral"], size=n_accounts, p=[0.6, 0.25, 0.15])
    for number, tier in enumerate(tiers):
        account = f"{str(tier)[0]}-{number:04d}"
        if tier == "retail":
            members.append(_retail(rng, account, index_ticks, listing))
        elif tier == "pro":
            members.append(_pro(rng, account, index_ticks, volatility, expiry_hours, listing))
        else:
            members.append(_collateral(rng, account, index_ticks))
    return members


def _retail(
    rng: np.random.Generator, account: str, index_ticks: dict[str, int], listing: Listing
) -> Member:
    cash_minor = int(rng.integers(2_000, 25_000)) * USDC_MINOR
    instrument, underlying = listing.perpetuals[int(rng.integers(0, len(listing.perpetuals)))]
    leverage_ppm = int(rng.integers(2 * PPM, 8 * PPM if underlying == "BTC" else 6_500_000))
    side = 1 if rng.random() < 0.6 else -1
    lots = _lots(_levered(cash_minor, leverage_ppm), index_ticks[underlying], underlying)
    order = Order(instrument, side * lots, index_ticks[underlying])
    return Member(account, "retail", (("USDC", cash_minor),), (order,))


def _pro(  # noqa: PLR0913, PLR0917 (one member's inputs, a private helper)
    rng: np.random.Generator,
    account: str,
    index_ticks: dict[str, int],
    volatility: dict[str, float],
    expiry_hours: float,
    listing: Listing,
) -> Member:
    btc = index_ticks["BTC"]
    cash_minor = int(rng.integers(50_000, 400_000)) * USDC_MINOR
    coins_minor = int(rng.integers(1, 10)) * COIN_MINOR["BTC"]
    leverage_ppm = int(rng.integers(1 * PPM, 4 * PPM))
    side = 1 if rng.random() < 0.5 else -1
    linear = listing.future if rng.random() < 0.4 else listing.perpetuals[0][0]
    orders = [Order(linear, side * _lots(_levered(cash_minor, leverage_ppm), btc, "BTC"), btc)]
    option_lots = _lots(cash_minor // 2, btc, "BTC")
    call_strike = strike_ticks(btc, listing.call_strike_ppm)
    put_strike = strike_ticks(btc, listing.put_strike_ppm)
    put_ticks = option_premium_ticks(
        btc, put_strike, expiry_hours, volatility["BTC"], is_call=False
    )
    if rng.random() < 0.5:  # A short strangle: premium now, tail risk later.
        call_ticks = option_premium_ticks(
            btc, call_strike, expiry_hours, volatility["BTC"], is_call=True
        )
        orders += [
            Order(listing.call, -option_lots, call_ticks),
            Order(listing.put, -option_lots, put_ticks),
        ]
    else:  # A protective put.
        orders.append(Order(listing.put, option_lots, put_ticks))
    deposits = (("USDC", cash_minor), ("BTC", coins_minor))
    return Member(account, "pro", deposits, tuple(orders))


def _collateral(rng: np.random.Generator, account: str, index_ticks: dict[str, int]) -> Member:
    btc = index_ticks["BTC"]
    asset = "ETH" if rng.random() < 0.8 else "BTC"
    coins = int(rng.integers(5, 60)) if asset == "ETH" else int(rng.integers(1, 4))
    # One tick of one coin is 0.01 USDC: value in USDC minor = coins * index * 10_000, after
    # the population's own haircut (not the rules': every rule set in a sweep must face the
    # same members).
    value_minor = coins * index_ticks[asset] * 10_000 * (PPM - HAIRCUT_PPM[asset]) // PPM
    float_minor = value_minor // 20 // USDC_MINOR * USDC_MINOR
    leverage_ppm = int(rng.integers(4 * PPM, 9 * PPM))
    lots = _lots(_levered(value_minor, leverage_ppm), btc, "BTC")
    deposits = ((asset, coins * COIN_MINOR[asset]), ("USDC", max(float_minor, USDC_MINOR)))
    return Member(account, "collateral", deposits, (Order("BTC-PERP", lots, btc),))
