"""The built-in demo session: a short, realistic trading day through the kernel.

Two traders and a market maker deposit USDC; the operator lists BTC and ETH perpetuals and a
dated BTC future; the oracle prices them; the venue reports trades; BTC rallies and variation
margin flows from the shorts to the longs; a withdrawal that would breach initial margin is
refused; the venue's retry of an already-settled trade is refused as a duplicate.
"""

from __future__ import annotations

from typing import Final

import attrs

from settlekernel.events import (
    Deposit,
    Event,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    Trade,
    VariationMargin,
    Withdraw,
)
from settlekernel.model import InstrumentKind

USDC: Final = 10**6  # minor units per USDC
HOUR_MS: Final = 3_600_000
# 2026-11-21T00:00:00Z and the December future's expiry, 2026-12-25T08:00:00Z.
START_MS: Final = 1_795_305_600_000
DEC_EXPIRY_MS: Final = 1_798_272_000_000


@attrs.frozen
class DemoStep:
    """An event of the demo and a sentence that says what it shows."""

    note: str
    event: Event


def _trade(  # noqa: PLR0913, PLR0917 (a table-row helper: one positional column each)
    trade_id: str, buyer: str, seller: str, instrument: str, lots: int, price_ticks: int
) -> Trade:
    return Trade(
        principal="venue",
        trade_id=trade_id,
        buyer=buyer,
        seller=seller,
        instrument=instrument,
        quantity_lots=lots,
        price_ticks=price_ticks,
        buyer_fee_rate_ppm=500,
        seller_fee_rate_ppm=200,
    )


def demo_steps() -> list[DemoStep]:
    """Return the demo session in order."""
    return _opening() + _trading() + _rally()


def _listing(
    instrument: str,
    kind: InstrumentKind,
    underlying: str,
    multiplier_minor: int,
    expiry_ms: int | None = None,
) -> ListInstrument:
    return ListInstrument(
        principal="operator",
        instrument=instrument,
        kind=kind,
        underlying=underlying,
        settlement_asset="USDC",
        multiplier_minor=multiplier_minor,
        expiry_ms=expiry_ms,
    )


def _opening() -> list[DemoStep]:
    """Accounts open and fund; the operator lists; the oracle prices."""
    return [
        DemoStep("alice opens an account", OpenAccount(principal="alice", account="alice")),
        DemoStep("bob opens an account", OpenAccount(principal="bob", account="bob")),
        DemoStep("mm opens an account", OpenAccount(principal="mm", account="mm")),
        DemoStep(
            "alice deposits 50,000 USDC",
            Deposit(principal="alice", account="alice", asset="USDC", amount_minor=50_000 * USDC),
        ),
        DemoStep(
            "bob deposits 20,000 USDC",
            Deposit(principal="bob", account="bob", asset="USDC", amount_minor=20_000 * USDC),
        ),
        DemoStep(
            "mm deposits 500,000 USDC",
            Deposit(principal="mm", account="mm", asset="USDC", amount_minor=500_000 * USDC),
        ),
        DemoStep(
            "list BTC-PERP: lot 0.001 BTC, tick $0.01",
            _listing("BTC-PERP", InstrumentKind.PERPETUAL, "BTC", 10),
        ),
        DemoStep(
            "list ETH-PERP: lot 0.01 ETH, tick $0.01",
            _listing("ETH-PERP", InstrumentKind.PERPETUAL, "ETH", 100),
        ),
        DemoStep(
            "list the December BTC future",
            _listing("BTC-26DEC26", InstrumentKind.FUTURE, "BTC", 10, DEC_EXPIRY_MS),
        ),
        DemoStep(
            "BTC index 96,000.00",
            OraclePrice(
                principal="oracle", underlying="BTC", price_ticks=9_600_000, timestamp_ms=START_MS
            ),
        ),
        DemoStep(
            "ETH index 3,500.00",
            OraclePrice(
                principal="oracle", underlying="ETH", price_ticks=350_000, timestamp_ms=START_MS
            ),
        ),
    ]


def _trading() -> list[DemoStep]:
    """The venue reports trades; one is a retry of a settled trade."""
    return [
        DemoStep(
            "alice buys 2 BTC of BTC-PERP from mm",
            _trade("T-0001", "alice", "mm", "BTC-PERP", 2_000, 9_600_000),
        ),
        DemoStep(
            "bob sells 0.5 BTC of BTC-PERP to mm",
            _trade("T-0002", "mm", "bob", "BTC-PERP", 500, 9_601_000),
        ),
        DemoStep(
            "bob buys 20 ETH of ETH-PERP from mm",
            _trade("T-0003", "bob", "mm", "ETH-PERP", 2_000, 350_050),
        ),
        DemoStep(
            "alice sells 1 BTC of the December future to mm",
            _trade("T-0004", "mm", "alice", "BTC-26DEC26", 1_000, 9_750_000),
        ),
        DemoStep(
            "the venue retries T-0002: refused as a duplicate",
            _trade("T-0002", "mm", "bob", "BTC-PERP", 500, 9_601_000),
        ),
    ]


def _rally() -> list[DemoStep]:
    """BTC rallies, ETH slips, margin flows, withdrawals are tested against margin."""
    return [
        DemoStep(
            "BTC rallies to 99,500.00",
            OraclePrice(
                principal="oracle",
                underlying="BTC",
                price_ticks=9_950_000,
                timestamp_ms=START_MS + HOUR_MS,
            ),
        ),
        DemoStep(
            "ETH slips to 3,420.00",
            OraclePrice(
                principal="oracle",
                underlying="ETH",
                price_ticks=342_000,
                timestamp_ms=START_MS + HOUR_MS,
            ),
        ),
        DemoStep(
            "mark BTC-PERP: shorts pay longs",
            VariationMargin(principal="operator", instrument="BTC-PERP"),
        ),
        DemoStep(
            "mark ETH-PERP: bob pays mm",
            VariationMargin(principal="operator", instrument="ETH-PERP"),
        ),
        DemoStep(
            "mark the December future",
            VariationMargin(principal="operator", instrument="BTC-26DEC26"),
        ),
        DemoStep(
            "bob tries to withdraw 12,000 USDC: refused, below initial margin",
            Withdraw(principal="bob", account="bob", asset="USDC", amount_minor=12_000 * USDC),
        ),
        DemoStep(
            "mallory tries to withdraw from alice: refused, not the owner",
            Withdraw(principal="mallory", account="alice", asset="USDC", amount_minor=1 * USDC),
        ),
        DemoStep(
            "bob withdraws 2,000 USDC, which margin allows",
            Withdraw(principal="bob", account="bob", asset="USDC", amount_minor=2_000 * USDC),
        ),
        DemoStep(
            "a self-trade of alice against alice: refused",
            _trade("T-0005", "alice", "alice", "BTC-PERP", 1_000, 9_950_000),
        ),
        DemoStep(
            "bob buys back 0.5 BTC from alice, closing his short",
            _trade("T-0006", "bob", "alice", "BTC-PERP", 500, 9_949_000),
        ),
    ]
