"""A table runner: one line per event with its expected result, TigerBeetle style.

Every row is stepped through the kernel; the outcome must match the expected reason (or
``OK``); every accepted step must pass ``check_step`` and every state ``check_invariants``;
every rejection must leave the state's root and content unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import settlekernel as sk
from settlekernel.core.root import all_leaf_keys, encode_leaf, state_root

OK: Final = "ok"
K = sk.InstrumentKind
USDC: Final = 10**6

# BTC quoted in cents; BTC-PERP lot 0.001 BTC, so 1 lot x 1 tick = 10 USDC minor units.
BTC_PERP = sk.ListInstrument(
    principal="operator",
    instrument="BTC-PERP",
    kind=K.PERPETUAL,
    underlying="BTC",
    settlement_asset="USDC",
    multiplier_minor=10,
)
BTC_FUT = sk.ListInstrument(
    principal="operator",
    instrument="BTC-FUT",
    kind=K.FUTURE,
    underlying="BTC",
    settlement_asset="USDC",
    multiplier_minor=10,
    expiry_ms=10_000,
)
BTC_CALL = sk.ListInstrument(
    principal="operator",
    instrument="BTC-C-100K",
    kind=K.OPTION,
    underlying="BTC",
    settlement_asset="USDC",
    multiplier_minor=10,
    expiry_ms=10_000,
    strike_ticks=10_000_000,
    option_type=sk.OptionType.CALL,
)
ETH_PERP = sk.ListInstrument(
    principal="operator",
    instrument="ETH-PERP",
    kind=K.PERPETUAL,
    underlying="ETH",
    settlement_asset="USDC",
    multiplier_minor=100,
)


def open_account(owner: str, account: str | None = None) -> sk.OpenAccount:
    return sk.OpenAccount(principal=owner, account=account or owner)


def deposit(
    account: str, amount: int, asset: str = "USDC", principal: str | None = None
) -> sk.Deposit:
    return sk.Deposit(
        principal=principal or account.split("-", maxsplit=1)[0],
        account=account,
        asset=asset,
        amount_minor=amount,
    )


def withdraw(
    account: str, amount: int, asset: str = "USDC", principal: str | None = None
) -> sk.Withdraw:
    return sk.Withdraw(
        principal=principal or account.split("-", maxsplit=1)[0],
        account=account,
        asset=asset,
        amount_minor=amount,
    )


def transfer(
    source: str, target: str, amount: int, asset: str = "USDC", principal: str | None = None
) -> sk.Transfer:
    return sk.Transfer(
        principal=principal or source.split("-", maxsplit=1)[0],
        source_account=source,
        target_account=target,
        asset=asset,
        amount_minor=amount,
    )


QUORUM: Final = ("oracle-a", "oracle-b")


def report(underlying: str, ticks: int, at_ms: int, principal: str) -> sk.OraclePrice:
    """Return one source's price report."""
    return sk.OraclePrice(
        principal=principal, underlying=underlying, price_ticks=ticks, timestamp_ms=at_ms
    )


def price(
    underlying: str, ticks: int, at_ms: int, principal: str | None = None
) -> tuple[sk.OraclePrice, ...]:
    """Return the reports that move the index: two sources agreeing (``min_sources`` is 2).

    With ``principal``, only that one report. ``run_table`` steps every report of a row and
    expects each to give the row's result.
    """
    sources = QUORUM if principal is None else (principal,)
    return tuple(report(underlying, ticks, at_ms, source) for source in sources)


def walk(underlying: str, ticks: int, start_ms: int, rounds: int = 4, step_ms: int = 100) -> list:
    """Return rows of quorum reports at ``ticks``: the band-limited index walks towards it."""
    return [(price(underlying, ticks, start_ms + i * step_ms), OK) for i in range(rounds)]


def expire(instrument: str, principal: str = "operator") -> sk.Expire:
    return sk.Expire(principal=principal, instrument=instrument)


def fund_insurance(
    amount: int, asset: str = "USDC", principal: str = "operator"
) -> sk.FundInsurance:
    return sk.FundInsurance(principal=principal, asset=asset, amount_minor=amount)


def trade(
    trade_id: str,
    buyer: str,
    seller: str,
    lots: int,
    ticks: int,
    *,
    instrument: str = "BTC-PERP",
    buyer_fee_ppm: int = 0,
    seller_fee_ppm: int = 0,
    principal: str = "venue",
) -> sk.Trade:
    return sk.Trade(
        principal=principal,
        trade_id=trade_id,
        buyer=buyer,
        seller=seller,
        instrument=instrument,
        quantity_lots=lots,
        price_ticks=ticks,
        buyer_fee_rate_ppm=buyer_fee_ppm,
        seller_fee_rate_ppm=seller_fee_ppm,
    )


def volatility(
    underlying: str, ppm: int, at_ms: int, principal: str = "oracle-a"
) -> sk.OracleVolatility:
    return sk.OracleVolatility(
        principal=principal, underlying=underlying, volatility_ppm=ppm, timestamp_ms=at_ms
    )


def mark(instrument: str, principal: str = "operator") -> sk.VariationMargin:
    return sk.VariationMargin(principal=principal, instrument=instrument)


def snapshot(state: sk.State) -> list[bytes | None]:
    """Return every leaf encoding plus the derived indexes: a deep, order-free picture."""
    leaves = [encode_leaf(state, key) for key in sorted(all_leaf_keys(state))]
    indexes = repr(sorted(state.open_interest.items())) + repr(
        sorted((k, sorted(v)) for k, v in state.holders.items())
    )
    return [*leaves, indexes.encode(), repr(sorted(state.custody.items())).encode()]


def apply_checked(state: sk.State, event: object) -> sk.Outcome:
    """Step with every check: purity, atomic rejects, step and state invariants."""
    root_before, picture_before = state_root(state), snapshot(state)
    outcome = sk.step(state, event)
    # INV-ATOMIC-REJECT and purity: the input state is unchanged whatever the outcome.
    assert state_root(state) == root_before
    assert snapshot(state) == picture_before
    if isinstance(outcome, sk.Accepted):
        assert sk.check_step(state, event, outcome) == []
        assert sk.check_invariants(outcome.state) == []
    return outcome


def run_table(rows: Iterable[tuple[object, str]], state: sk.State | None = None) -> sk.State:
    """Apply each (event, expected) row; expected is ``OK`` or a ``Reason`` value."""
    state = state or sk.genesis(sk.RuleSet.default())
    for number, (row_events, expected) in enumerate(rows, start=1):
        for event in row_events if isinstance(row_events, tuple) else (row_events,):
            outcome = apply_checked(state, event)
            got = OK if isinstance(outcome, sk.Accepted) else outcome.reason.value
            detail = "" if isinstance(outcome, sk.Accepted) else f" ({outcome.message})"
            assert got == expected, (
                f"row {number}: {event!r}\n expected {expected}, got {got}{detail}"
            )
            if isinstance(outcome, sk.Accepted):
                state = outcome.state
    return state


def balances(state: sk.State, account: str) -> dict[str, int]:
    return dict(state.accounts[account].balances)


def position(state: sk.State, account: str, instrument: str) -> tuple[int, int] | None:
    held = state.accounts[account].positions.get(instrument)
    return None if held is None else (held.quantity_lots, held.settled_price_ticks)


def market(
    extra: Sequence[tuple[object, str]] = (), rules: sk.RuleSet | None = None
) -> sk.State:
    """Return a state with alice and bob funded, BTC and ETH listed, priced and volatile.

    Under ``rules`` if given, else the built-in rules.
    """
    return run_table(
        [
            (open_account("alice"), OK),
            (open_account("bob"), OK),
            (deposit("alice", 1_000_000 * USDC), OK),
            (deposit("bob", 1_000_000 * USDC), OK),
            (BTC_PERP, OK),
            (BTC_FUT, OK),
            (BTC_CALL, OK),
            (ETH_PERP, OK),
            (price("BTC", 9_000_000, 1_000), OK),
            (price("ETH", 300_000, 1_000), OK),
            (volatility("BTC", 600_000, 1_000), OK),
            (volatility("ETH", 700_000, 1_000), OK),
            *extra,
        ],
        state=None if rules is None else sk.genesis(rules),
    )
