"""Precedence, tested by behaviour: an event breaking several rules gets the first reason.

Each "breaker" changes a valid event (and sometimes the state) so that, alone, it is
rejected with one known reason. Hypothesis combines breakers that touch different fields;
the combined event must be rejected with the highest-precedence reason among them
(spec/20-reasons.md). `test_tidy.py` checks the same order statically in the source.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from hypothesis import assume, given
from hypothesis import strategies as st

import settlekernel as sk
from scenario import OK, USDC, deposit, market, open_account, price, run_table, trade, transfer

R = sk.Reason


@attrs.frozen
class Breaker:
    """A change that, alone, makes a valid event fail with ``reason``."""

    reason: sk.Reason
    fields: frozenset[str]
    event: dict[str, object] = attrs.field(factory=dict)
    state: Callable[[sk.State], sk.State] | None = None


def _later_clock(state: sk.State) -> sk.State:
    return run_table([(price("BTC", 9_000_000, 20_000), OK)], state=state)


TRADE_BASE = dict(
    principal="venue",
    trade_id="p1",
    buyer="alice",
    seller="bob",
    instrument="BTC-PERP",
    quantity_lots=10,
    price_ticks=9_010_000,
    buyer_fee_rate_ppm=0,
    seller_fee_rate_ppm=0,
)
TRADE_BREAKERS = {
    "venue": Breaker(R.PRINCIPAL_NOT_MATCHER, frozenset({"principal"}), {"principal": "alice"}),
    # A replay's reason names the first differing field, so it combines with no other
    # change of the payload (tests/test_scenarios.py covers each field).
    "replay": Breaker(
        R.TRADE_EXISTS_WITH_DIFFERENT_QUANTITY,
        frozenset(TRADE_BASE) | {"clock"},
        {"trade_id": "seed"},
    ),
    "quantity": Breaker(
        R.QUANTITY_NOT_POSITIVE, frozenset({"quantity_lots"}), {"quantity_lots": 0}
    ),
    "price": Breaker(R.PRICE_NOT_POSITIVE, frozenset({"price_ticks"}), {"price_ticks": -3}),
    "fee": Breaker(
        R.FEE_RATE_OUT_OF_RANGE, frozenset({"buyer_fee_rate_ppm"}), {"buyer_fee_rate_ppm": 10_001}
    ),
    "self": Breaker(R.SELF_TRADE, frozenset({"buyer", "seller"}), {"seller": "alice"}),
    "instrument": Breaker(R.INSTRUMENT_UNKNOWN, frozenset({"instrument"}), {"instrument": "NOPE"}),
    "buyer": Breaker(R.ACCOUNT_UNKNOWN, frozenset({"buyer"}), {"buyer": "ghost"}),
    "expired": Breaker(
        R.INSTRUMENT_EXPIRED,
        frozenset({"instrument", "clock"}),
        {"instrument": "BTC-FUT"},
        _later_clock,
    ),
    "unpriced": Breaker(R.PRICE_UNAVAILABLE, frozenset({"instrument"}), {"instrument": "SOL-PERP"}),
    "poor": Breaker(R.INSUFFICIENT_FUNDS, frozenset({"buyer"}), {"buyer": "poor"}),
    "thin": Breaker(R.MARGIN_INSUFFICIENT, frozenset({"buyer"}), {"buyer": "thin"}),
}


def trade_market() -> sk.State:
    """BTC-PERP referenced at 9,000,000; a SOL perpetual with no price; poor and thin buyers."""
    btc = sk.RuleSet.default().underlying_by_symbol["BTC"]
    rules = attrs.evolve(
        sk.RuleSet.default(),
        underlyings=(*sk.RuleSet.default().underlyings, attrs.evolve(btc, symbol="SOL")),
    )
    sol = sk.ListInstrument(
        principal="operator",
        instrument="SOL-PERP",
        kind=sk.InstrumentKind.PERPETUAL,
        underlying="SOL",
        settlement_asset="USDC",
        multiplier_minor=1,
    )
    return run_table(
        [
            (open_account("alice"), OK),
            (open_account("bob"), OK),
            (open_account("poor"), OK),
            (open_account("thin"), OK),
            (deposit("alice", 10**6 * USDC), OK),
            (deposit("bob", 10**6 * USDC), OK),
            (deposit("poor", 1), OK),
            # 10 lots at 9,010,000 against a 9,000,000 reference costs 1,000,000 minor; initial
            # margin on 10 lots at 9,000,000 is 900,000, so 1,500,000 pays but cannot margin.
            (deposit("thin", 1_500_000), OK),
            *[(event, OK) for event in market_listings()],
            (sol, OK),
            (price("BTC", 9_000_000, 1_000), OK),
            (price("ETH", 300_000, 1_000), OK),
            (trade("seed", "alice", "bob", 1, 9_000_000), OK),
        ],
        state=sk.genesis(rules),
    )


def market_listings() -> list[sk.ListInstrument]:
    from scenario import BTC_CALL, BTC_FUT, BTC_PERP, ETH_PERP  # noqa: PLC0415

    return [BTC_PERP, BTC_FUT, BTC_CALL, ETH_PERP]


TRADE_MARKET = trade_market()


def compatible(names: list[str], breakers: dict[str, Breaker]) -> bool:
    touched: set[str] = set()
    for name in names:
        if breakers[name].fields & touched:
            return False
        touched |= breakers[name].fields
    return True


@given(st.lists(st.sampled_from(sorted(TRADE_BREAKERS)), min_size=1, max_size=5, unique=True))
def test_trade_gets_the_highest_precedence_reason(names):
    """Returns, for any compatible set of trade breakers, the first reason among them."""
    assume(compatible(names, TRADE_BREAKERS))
    fields, state = dict(TRADE_BASE), TRADE_MARKET
    for name in names:
        breaker = TRADE_BREAKERS[name]
        fields.update(breaker.event)
        if breaker.state is not None:
            state = breaker.state(state)
    if "self" in names and "buyer" not in names:
        fields["seller"] = fields["buyer"]
    outcome = sk.step(state, sk.Trade(**fields))
    expected = min((TRADE_BREAKERS[n].reason for n in names), key=lambda r: r.precedence)
    assert isinstance(outcome, sk.Rejected), (names, outcome)
    assert outcome.reason is expected, (names, outcome)


def test_the_valid_trade_and_each_breaker_alone():
    """Accepts the base trade, and each breaker alone gives its own reason."""
    assert isinstance(sk.step(TRADE_MARKET, sk.Trade(**TRADE_BASE)), sk.Accepted)
    for name, breaker in TRADE_BREAKERS.items():
        state = breaker.state(TRADE_MARKET) if breaker.state else TRADE_MARKET
        fields = {**TRADE_BASE, **breaker.event}
        outcome = sk.step(state, sk.Trade(**fields))
        assert isinstance(outcome, sk.Rejected), name
        assert outcome.reason is breaker.reason, (name, outcome)


TRANSFER_BASE = dict(
    principal="alice",
    source_account="alice-1",
    target_account="alice-2",
    asset="USDC",
    amount_minor=5 * USDC,
)
TRANSFER_BREAKERS = {
    "amount": Breaker(R.AMOUNT_NOT_POSITIVE, frozenset({"amount_minor"}), {"amount_minor": 0}),
    "same": Breaker(
        R.TRANSFER_TO_SAME_ACCOUNT, frozenset({"target_account"}), {"target_account": "alice-1"}
    ),
    "asset": Breaker(R.ASSET_UNKNOWN, frozenset({"asset"}), {"asset": "DOGE"}),
    "target": Breaker(
        R.ACCOUNT_UNKNOWN, frozenset({"target_account"}), {"target_account": "ghost"}
    ),
    "principal": Breaker(R.PRINCIPAL_NOT_OWNER, frozenset({"principal"}), {"principal": "bob"}),
    "owner": Breaker(
        R.TRANSFER_OWNERS_DIFFER, frozenset({"target_account"}), {"target_account": "bob-1"}
    ),
    "funds": Breaker(
        R.INSUFFICIENT_FUNDS, frozenset({"amount_minor"}), {"amount_minor": 10**9 * USDC}
    ),
    "margin": Breaker(
        R.MARGIN_INSUFFICIENT, frozenset({"amount_minor"}), {"amount_minor": 999_000 * USDC}
    ),
}
TRANSFER_MARKET = market(
    [
        (open_account("alice", "alice-1"), OK),
        (open_account("alice", "alice-2"), OK),
        (open_account("bob", "bob-1"), OK),
        (deposit("alice-1", 1_000_000 * USDC), OK),
        (trade("m1", "alice-1", "bob", 1_000, 9_000_000), OK),
    ]
)


@given(st.lists(st.sampled_from(sorted(TRANSFER_BREAKERS)), min_size=1, max_size=4, unique=True))
def test_transfer_gets_the_highest_precedence_reason(names):
    """Returns, for any compatible set of transfer breakers, the first reason among them."""
    assume(compatible(names, TRANSFER_BREAKERS))
    fields = dict(TRANSFER_BASE)
    for name in names:
        fields.update(TRANSFER_BREAKERS[name].event)
    outcome = sk.step(TRANSFER_MARKET, sk.Transfer(**fields))
    expected = min((TRANSFER_BREAKERS[n].reason for n in names), key=lambda r: r.precedence)
    assert isinstance(outcome, sk.Rejected), (names, outcome)
    assert outcome.reason is expected, (names, outcome)


def test_the_valid_transfer_and_each_breaker_alone():
    """Accepts the base transfer, and each breaker alone gives its own reason."""
    assert isinstance(
        sk.step(TRANSFER_MARKET, transfer("alice-1", "alice-2", 5 * USDC)), sk.Accepted
    )
    for name, breaker in TRANSFER_BREAKERS.items():
        outcome = sk.step(TRANSFER_MARKET, sk.Transfer(**{**TRANSFER_BASE, **breaker.event}))
        assert isinstance(outcome, sk.Rejected), name
        assert outcome.reason is breaker.reason, (name, outcome)
