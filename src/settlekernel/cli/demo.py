"""The built-in demo session: a short, realistic trading day through the kernel.

Two traders and a market maker deposit USDC, and an options trader posts one BTC as
collateral; the operator lists BTC and ETH perpetuals, a December BTC future and two
December BTC options; two oracle sources report prices (the index needs both) and implied
volatilities; the venue reports trades, among them a short strangle; BTC rallies, variation
margin flows from the shorts to the longs, and the strangle's seller hedges her new delta
with the future. Withdrawals that
would breach initial margin are refused (one of them of BTC collateral, checked against the
whole account), and so is the venue's retry of an already-settled trade. The governor then
admits a second venue; an account hedges a perpetual bought on the house venue with a future
sold on the new one and is margined once for both, and the new venue cannot trade on an
account whose owner never authorised it.
"""

from __future__ import annotations

from typing import Final

import attrs

from settlekernel.core.events import (
    AdmitVenue,
    AuthorizeVenue,
    Deposit,
    Event,
    Expire,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    Trade,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.kinds import InstrumentKind, OptionType

USDC: Final = 10**6  # minor units per USDC
BTC: Final = 10**8  # minor units per BTC
HOUR_MS: Final = 3_600_000
# 2026-11-21T00:00:00Z and the December future's expiry, 2026-12-25T08:00:00Z.
START_MS: Final = 1_795_305_600_000
DEC_EXPIRY_MS: Final = 1_798_272_000_000


@attrs.frozen
class DemoStep:
    """An event of the demo, a sentence that says what it shows, and its chapter."""

    note: str
    event: Event
    chapter: str = "A trading day"


def _trade(  # noqa: PLR0913, PLR0917 (a table-row helper: one positional column each)
    trade_id: str,
    buyer: str,
    seller: str,
    instrument: str,
    lots: int,
    price_ticks: int,
    venue: str = "venue",
) -> Trade:
    return Trade(
        principal=venue,
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
    """Return the demo session in order: a trading day, two venues, a crash, an expiry."""
    return _opening() + _trading() + _venues() + _rally() + _crash() + _expiry()


def _listing(  # noqa: PLR0913 (a listing, field by field)
    instrument: str,
    kind: InstrumentKind,
    multiplier_minor: int,
    *,
    underlying: str = "BTC",
    expiry_ms: int | None = None,
    strike_ticks: int | None = None,
    option_type: OptionType | None = None,
) -> ListInstrument:
    return ListInstrument(
        principal="operator",
        instrument=instrument,
        kind=kind,
        underlying=underlying,
        settlement_asset="USDC",
        multiplier_minor=multiplier_minor,
        expiry_ms=expiry_ms,
        strike_ticks=strike_ticks,
        option_type=option_type,
    )


def _deposit(owner: str, amount_minor: int, asset: str = "USDC") -> Deposit:
    return Deposit(principal=owner, account=owner, asset=asset, amount_minor=amount_minor)


def _report(underlying: str, price_ticks: int, at_ms: int, source: str) -> OraclePrice:
    return OraclePrice(
        principal=source, underlying=underlying, price_ticks=price_ticks, timestamp_ms=at_ms
    )


def _oracle(underlying: str, price_ticks: int, volatility_ppm: int, at_ms: int) -> list[Event]:
    """Two sources report the same price (the quorum is two), then the volatility."""
    return [
        _report(underlying, price_ticks, at_ms, "oracle-a"),
        _report(underlying, price_ticks, at_ms, "oracle-b"),
        OracleVolatility(
            principal="oracle-a",
            underlying=underlying,
            volatility_ppm=volatility_ppm,
            timestamp_ms=at_ms,
        ),
    ]


def _opening() -> list[DemoStep]:
    """Accounts open and fund; the operator lists; the oracle prices."""
    btc_index = _oracle("BTC", 9_600_000, 550_000, START_MS)
    eth_index = _oracle("ETH", 350_000, 700_000, START_MS)
    return [
        *(
            DemoStep(f"{name} opens an account", OpenAccount(principal=name, account=name))
            for name in ("alice", "bob", "carol", "mm", "hal", "ivy")
        ),
        DemoStep("alice deposits 50,000 USDC", _deposit("alice", 50_000 * USDC)),
        DemoStep("bob deposits 20,000 USDC", _deposit("bob", 20_000 * USDC)),
        DemoStep("carol posts 1 BTC as collateral (10 % haircut)", _deposit("carol", BTC, "BTC")),
        DemoStep("carol deposits 2,000 USDC for fees", _deposit("carol", 2_000 * USDC)),
        DemoStep("mm deposits 500,000 USDC", _deposit("mm", 500_000 * USDC)),
        DemoStep("hal posts 0.5 BTC as collateral", _deposit("hal", BTC // 2, "BTC")),
        DemoStep("hal deposits 100 USDC for fees", _deposit("hal", 100 * USDC)),
        DemoStep("ivy deposits 12,000 USDC", _deposit("ivy", 12_000 * USDC)),
        DemoStep(
            "list BTC-PERP: lot 0.001 BTC, tick $0.01",
            _listing("BTC-PERP", InstrumentKind.PERPETUAL, 10),
        ),
        DemoStep(
            "list ETH-PERP: lot 0.01 ETH, tick $0.01",
            _listing("ETH-PERP", InstrumentKind.PERPETUAL, 100, underlying="ETH"),
        ),
        DemoStep(
            "list the December BTC future",
            _listing("BTC-25DEC26", InstrumentKind.FUTURE, 10, expiry_ms=DEC_EXPIRY_MS),
        ),
        DemoStep(
            "list the December BTC 110,000 call",
            _listing(
                "BTC-25DEC26-110000-C",
                InstrumentKind.OPTION,
                10,
                expiry_ms=DEC_EXPIRY_MS,
                strike_ticks=11_000_000,
                option_type=OptionType.CALL,
            ),
        ),
        DemoStep(
            "list the December BTC 85,000 put",
            _listing(
                "BTC-25DEC26-85000-P",
                InstrumentKind.OPTION,
                10,
                expiry_ms=DEC_EXPIRY_MS,
                strike_ticks=8_500_000,
                option_type=OptionType.PUT,
            ),
        ),
        DemoStep("oracle-a reports BTC at 96,000.00: one source, no index yet", btc_index[0]),
        DemoStep("oracle-b agrees: two fresh sources, BTC index 96,000.00", btc_index[1]),
        DemoStep("BTC implied volatility 55 %", btc_index[2]),
        DemoStep("oracle-a reports ETH at 3,500.00", eth_index[0]),
        DemoStep("oracle-b agrees: ETH index 3,500.00", eth_index[1]),
        DemoStep("ETH implied volatility 70 %", eth_index[2]),
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
            _trade("T-0004", "mm", "alice", "BTC-25DEC26", 1_000, 9_750_000),
        ),
        DemoStep(
            "carol sells mm 1 BTC of the 110,000 call at 2,050.00",
            _trade("T-0005", "mm", "carol", "BTC-25DEC26-110000-C", 1_000, 205_000),
        ),
        DemoStep(
            "carol sells mm 1 BTC of the 85,000 put at 2,090.00: a short strangle",
            _trade("T-0006", "mm", "carol", "BTC-25DEC26-85000-P", 1_000, 209_000),
        ),
        DemoStep(
            "ivy buys 1 BTC of BTC-PERP from mm",
            _trade("T-0010", "ivy", "mm", "BTC-PERP", 1_000, 9_600_000),
        ),
        DemoStep(
            "ivy sells mm 1 BTC of the December future: a calendar spread",
            _trade("T-0011", "mm", "ivy", "BTC-25DEC26", 1_000, 9_600_000),
        ),
        DemoStep(
            "ivy withdraws 9,000 USDC: the hedged pair needs far less than either leg",
            Withdraw(principal="ivy", account="ivy", asset="USDC", amount_minor=9_000 * USDC),
        ),
        DemoStep(
            "ivy tries to withdraw 1,000 more: refused, the spread's basis risk needs margin",
            Withdraw(principal="ivy", account="ivy", asset="USDC", amount_minor=1_000 * USDC),
        ),
        DemoStep(
            "the venue retries T-0002: refused as a duplicate",
            _trade("T-0002", "mm", "bob", "BTC-PERP", 500, 9_601_000),
        ),
        DemoStep(
            "carol tries to withdraw 0.95 BTC: refused, the strangle needs it",
            Withdraw(principal="carol", account="carol", asset="BTC", amount_minor=95 * BTC // 100),
        ),
    ]


VENUES: Final = "Two venues, one clearing"


def _venues() -> list[DemoStep]:
    """A second venue is admitted; an account hedged across both venues is margined once."""
    dex = AdmitVenue(
        principal="governor",
        venue="dex",
        fee_account="dex-fees",
        open_interest_max_lots=500_000,
        notional_max_minor=5_000_000 * USDC,
        fee_rate_max_ppm=1_000,
    )
    steps: list[tuple[str, Event]] = [
        (
            "dex, a second venue, opens the account its fees go to",
            OpenAccount(principal="dex", account="dex-fees"),
        ),
        (
            "mallory tries to admit dex: refused, only the governor admits",
            attrs.evolve(dex, principal="mallory"),
        ),
        ("the governor admits dex: fees up to 0.1 %, its own open-interest and notional caps", dex),
        ("jay opens an account", OpenAccount(principal="jay", account="jay")),
        ("jay deposits 12,000 USDC", _deposit("jay", 12_000 * USDC)),
        (
            "jay authorises dex on his account",
            AuthorizeVenue(principal="jay", account="jay", venue="dex"),
        ),
        ("mm authorises dex too", AuthorizeVenue(principal="mm", account="mm", venue="dex")),
        (
            "jay buys 1 BTC of BTC-PERP from mm on the house venue",
            _trade("T-0201", "jay", "mm", "BTC-PERP", 1_000, 9_600_000),
        ),
        (
            "jay tries to withdraw 9,000 USDC: refused, the perpetual alone needs it",
            Withdraw(principal="jay", account="jay", asset="USDC", amount_minor=9_000 * USDC),
        ),
        (
            "jay sells mm 1 BTC of the December future on dex: the hedge is on another venue",
            _trade("T-0202", "mm", "jay", "BTC-25DEC26", 1_000, 9_600_000, venue="dex"),
        ),
        (
            "jay withdraws 9,000 USDC: one account, one margin, the legs net across venues",
            Withdraw(principal="jay", account="jay", asset="USDC", amount_minor=9_000 * USDC),
        ),
        (
            "dex books a trade on bob's account: refused, bob never authorised dex",
            _trade("T-0203", "bob", "mm", "BTC-PERP", 100, 9_600_000, venue="dex"),
        ),
    ]
    return [DemoStep(note, event, VENUES) for note, event in steps]


def _rally() -> list[DemoStep]:
    """BTC rallies, ETH slips, margin flows, withdrawals are tested against margin."""
    later = START_MS + HOUR_MS
    btc_rally = _oracle("BTC", 9_950_000, 600_000, later)
    eth_slip = _oracle("ETH", 342_000, 720_000, later)
    return [
        DemoStep("oracle-a: BTC at 99,500.00 an hour later", btc_rally[0]),
        DemoStep("oracle-b agrees: BTC index rallies to 99,500.00", btc_rally[1]),
        DemoStep("BTC implied volatility rises to 60 %", btc_rally[2]),
        DemoStep("oracle-a: ETH at 3,420.00", eth_slip[0]),
        DemoStep("oracle-b agrees: ETH index slips to 3,420.00", eth_slip[1]),
        DemoStep("ETH implied volatility 72 %", eth_slip[2]),
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
            VariationMargin(principal="operator", instrument="BTC-25DEC26"),
        ),
        DemoStep(
            "carol buys 0.15 BTC of the future to hedge her strangle's delta",
            _trade("T-0007", "carol", "mm", "BTC-25DEC26", 150, 9_951_000),
        ),
        DemoStep(
            "hal, with BTC and almost no USDC, buys 0.1 BTC of the future from mm",
            _trade("T-0012", "hal", "mm", "BTC-25DEC26", 100, 9_951_000),
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
            _trade("T-0008", "alice", "alice", "BTC-PERP", 1_000, 9_950_000),
        ),
        DemoStep(
            "bob buys back 0.5 BTC from alice, closing his short",
            _trade("T-0009", "bob", "alice", "BTC-PERP", 500, 9_949_000),
        ),
    ]


CRASH: Final = "A BTC crash: cascade, insurance fund, auto-deleveraging"
EXPIRY: Final = "Christmas: the December contracts expire"
CRASH_MS: Final = START_MS + 2 * HOUR_MS


def _quorum(
    underlying: str, price_ticks: int, at_ms: int, note: str, chapter: str
) -> list[DemoStep]:
    """Both sources report the same price: the second report completes the quorum."""
    return [
        DemoStep(
            f"oracle-a: {underlying} at {price_ticks // 100:,}",
            _report(underlying, price_ticks, at_ms, "oracle-a"),
            chapter,
        ),
        DemoStep(note, _report(underlying, price_ticks, at_ms, "oracle-b"), chapter),
    ]


def _liquidate(account: str, note: str) -> DemoStep:
    return DemoStep(
        note, Liquidate(principal="keeper", account=account, liquidator="keeper"), CRASH
    )


def _crash() -> list[DemoStep]:
    """Two levered longs, a thin insurance fund, an orderly fall, then a gap."""
    people = (
        ("dave", 40_000, "a levered long"),
        ("erin", 11_000, "a more levered long"),
        ("fay", 25_000, "a levered short"),
        ("gus", 1_000_000, "a well-funded short"),
        ("keeper", 2_000_000, "a liquidator"),
    )
    return [
        *(
            DemoStep(note, event, CRASH)
            for name, amount, who in people
            for note, event in (
                (f"{name}, {who}, opens an account", OpenAccount(principal=name, account=name)),
                (f"{name} deposits {amount:,} USDC", _deposit(name, amount * USDC)),
            )
        ),
        DemoStep(
            "the operator seeds the insurance fund with 3,000 USDC",
            FundInsurance(principal="operator", asset="USDC", amount_minor=3_000 * USDC),
            CRASH,
        ),
        *_quorum("BTC", 9_950_000, CRASH_MS, "BTC index 99,500.00, fresh", CRASH),
        DemoStep(
            "dave buys 2 BTC of BTC-PERP from fay (about 7x levered)",
            _trade("T-0101", "dave", "fay", "BTC-PERP", 2_000, 9_950_000),
            CRASH,
        ),
        DemoStep(
            "dave buys 1 BTC more from gus",
            _trade("T-0102", "dave", "gus", "BTC-PERP", 1_000, 9_950_000),
            CRASH,
        ),
        DemoStep(
            "erin buys 1 BTC from gus (about 9x levered)",
            _trade("T-0103", "erin", "gus", "BTC-PERP", 1_000, 9_950_000),
            CRASH,
        ),
        *_quorum(
            "BTC",
            9_550_000,
            CRASH_MS + 10_000,
            "BTC falls 4 % to 95,500: valid, erin is below maintenance",
            CRASH,
        ),
        _liquidate("erin", "keeper liquidates erin: the smallest share that restores her margin"),
        *_quorum(
            "BTC",
            8_200_000,
            CRASH_MS + 20_000,
            "BTC gaps to 82,000: the index moves 5 %, no more (too volatile)",
            CRASH,
        ),
        _liquidate("dave", "keeper tries dave: refused, no liquidation on a too-volatile index"),
        *_quorum(
            "BTC",
            8_200_000,
            CRASH_MS + 30_000,
            "the sources confirm 82,000: the index follows, valid again",
            CRASH,
        ),
        _liquidate("erin", "erin is bankrupt: the insurance fund covers her shortfall"),
        _liquidate("dave", "dave is bankrupt beyond the fund: ADL hits the most levered winners"),
        _liquidate("gus", "keeper tries gus, a winner: refused, he is not below maintenance"),
    ]


def _expiry() -> list[DemoStep]:
    """The index around the December expiry, its TWAP, and settlement of every holder."""
    before = DEC_EXPIRY_MS - HOUR_MS // 2
    return [
        *_quorum(
            "BTC",
            8_300_000,
            before,
            "Christmas morning, half an hour before expiry: BTC 83,000",
            EXPIRY,
        ),
        *_quorum(
            "BTC", 8_400_000, before + 15 * 60_000, "a quarter of an hour later: 84,000", EXPIRY
        ),
        DemoStep(
            "the operator tries to settle early: refused",
            Expire(principal="operator", instrument="BTC-25DEC26"),
            EXPIRY,
        ),
        *_quorum(
            "BTC",
            8_450_000,
            DEC_EXPIRY_MS + 60_000,
            "a minute after expiry: the first index fixes the TWAP",
            EXPIRY,
        ),
        DemoStep(
            "settle the December future: every holder at once; hal, short of USDC but "
            "solvent, owes the fund the rest and the shorts hold claims",
            Expire(principal="operator", instrument="BTC-25DEC26"),
            EXPIRY,
        ),
        DemoStep(
            "a keeper collects hal's debt: it buys just enough of her BTC; the fund pays claims",
            Liquidate(principal="keeper", account="hal", liquidator="keeper"),
            EXPIRY,
        ),
        DemoStep(
            "settle the 110,000 call: expires worthless",
            Expire(principal="operator", instrument="BTC-25DEC26-110000-C"),
            EXPIRY,
        ),
        DemoStep(
            "settle the 85,000 put: in the money, carol pays mm",
            Expire(principal="operator", instrument="BTC-25DEC26-85000-P"),
            EXPIRY,
        ),
        DemoStep(
            "settle the future again: refused, settled once",
            Expire(principal="operator", instrument="BTC-25DEC26"),
            EXPIRY,
        ),
    ]
