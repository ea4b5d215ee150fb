"""Invariant claims over a modelled step: what "the invariant is inductive" means for it.

A state invariant that sums over every account (conservation, zero-sum open interest)
cannot be written over an unbounded array; it is proved by frame reasoning instead
(SK-PROOF-4): (1) every cell the step does not list as written is unchanged, and (2) the
changes of the written cells, each counted once even when two names alias, add up to what
the invariant needs (the custody change, zero lots). A finite sum over all accounts then
changes by exactly the changes at the written cells, which is the one fact about sums the
proofs take for granted. The claims quantify over every account, asset and instrument
through fresh constants: a counterexample is a particular cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import z3

from settlekernel.core.rules import RuleSet
from settlekernel.core.units import PPM, VALUE_LIMIT
from settlekernel.proofs.symbolic import Ledger
from settlekernel.proofs.transitions import INSURANCE, ModelStep

ANY_ACCOUNT: Final = z3.String("any.account")
ANY_ASSET: Final = z3.String("any.asset")
ANY_INSTRUMENT: Final = z3.String("any.instrument")
ANY_TRADE: Final = z3.String("any.trade")


def _distinct_before(pairs: tuple[tuple[Any, Any], ...], index: int) -> Any:
    """Return whether pair ``index`` differs from every pair listed before it."""
    a, x = pairs[index]
    return z3.And(z3.BoolVal(True), *[z3.Not(z3.And(a == b, x == y)) for b, y in pairs[:index]])


def _listed(pairs: tuple[tuple[Any, Any], ...], a: Any, x: Any) -> Any:
    return z3.Or(z3.BoolVal(False), *[z3.And(a == b, x == y) for b, y in pairs])


def balance_frame(pre: Ledger, step: ModelStep) -> Any:
    """Every balance the step does not list as written is unchanged."""
    return z3.Implies(
        z3.Not(_listed(step.writes, ANY_ACCOUNT, ANY_ASSET)),
        step.post.bal(ANY_ACCOUNT, ANY_ASSET) == pre.bal(ANY_ACCOUNT, ANY_ASSET),
    )


def written_change(pre: Ledger, step: ModelStep, asset: Any) -> Any:
    """Return the total change of the written balances of ``asset``, each cell once."""
    total = z3.IntVal(0)
    for index, (account, written_asset) in enumerate(step.writes):
        change = step.post.bal(account, written_asset) - pre.bal(account, written_asset)
        total += z3.If(
            z3.And(written_asset == asset, _distinct_before(step.writes, index)), change, 0
        )
    return total


def conservation(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-CONSERVATION: untouched balances unchanged; per asset, changes equal custody's.

    A step that pays every holder (``per_lot``) instead changes each account's balance by
    its position times one per-lot amount, and custody not at all: summed over accounts
    that is the amount times the sum of positions, zero by INV-OPEN-INTEREST-ZERO-SUM.
    """
    del rules, event
    custody_change = z3.Select(step.post.custody, ANY_ASSET) - z3.Select(pre.custody, ANY_ASSET)
    if step.per_lot is not None:
        asset, instrument, amount = step.per_lot
        change = step.post.bal(ANY_ACCOUNT, ANY_ASSET) - pre.bal(ANY_ACCOUNT, ANY_ASSET)
        expected = z3.If(asset == ANY_ASSET, pre.mul(pre.pos(instrument, ANY_ACCOUNT), amount), 0)
        return z3.Implies(step.accepted, z3.And(change == expected, custody_change == 0))
    return z3.Implies(
        step.accepted,
        z3.And(balance_frame(pre, step), custody_change == written_change(pre, step, ANY_ASSET)),
    )


def nonnegative_hypotheses(pre: Ledger, step: ModelStep) -> list[Any]:
    """Return the pre-state invariant at the cells the claim and the step read.

    Every balance is non-negative and at most its asset's custody (a corollary of
    INV-CONSERVATION and INV-NONNEGATIVE-BALANCES), custody is below 2**96.
    """
    cells = ((ANY_ACCOUNT, ANY_ASSET), *step.writes)
    facts: list[Any] = []
    for account, asset in cells:
        balance = pre.bal(account, asset)
        custody = z3.Select(pre.custody, asset)
        facts += [balance >= 0, balance <= custody, custody < VALUE_LIMIT]
    return facts


def nonnegative(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-NONNEGATIVE-BALANCES: every balance and custody total stays in [0, 2**96)."""
    del rules, pre, event
    custody = z3.Select(step.post.custody, ANY_ASSET)
    return z3.Implies(
        step.accepted,
        z3.And(step.post.bal(ANY_ACCOUNT, ANY_ASSET) >= 0, custody >= 0, custody < VALUE_LIMIT),
    )


def insurance_not_debited(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """INV-INSURANCE-NONNEGATIVE: outside expiry and liquidation the fund is never debited."""
    del rules, event
    return z3.Implies(
        step.accepted, step.post.bal(INSURANCE, ANY_ASSET) >= pre.bal(INSURANCE, ANY_ASSET)
    )


def margin_checked(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-MARGIN-AFTER-ACCEPT: the margin guard passed on exactly the post-state it writes."""
    del rules, pre, event
    return z3.Implies(step.accepted, z3.And(z3.BoolVal(True), *step.checks))


def open_interest(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-OPEN-INTEREST-ZERO-SUM: positions still sum to zero; the index follows the longs."""
    del rules, event
    writes = step.position_writes
    frame = z3.Implies(
        z3.Not(_listed(writes, ANY_INSTRUMENT, ANY_ACCOUNT)),
        step.post.pos(ANY_INSTRUMENT, ANY_ACCOUNT) == pre.pos(ANY_INSTRUMENT, ANY_ACCOUNT),
    )
    lots = z3.IntVal(0)
    longs = z3.IntVal(0)
    for index, (instrument, account) in enumerate(writes):
        before, after = pre.pos(instrument, account), step.post.pos(instrument, account)
        counted = z3.And(instrument == ANY_INSTRUMENT, _distinct_before(writes, index))
        lots += z3.If(counted, after - before, 0)
        longs += z3.If(counted, z3.If(after > 0, after, 0) - z3.If(before > 0, before, 0), 0)
    index_change = z3.Select(step.post.open_interest, ANY_INSTRUMENT) - z3.Select(
        pre.open_interest, ANY_INSTRUMENT
    )
    return z3.Implies(step.accepted, z3.And(frame, lots == 0, index_change == longs))


def settled_once(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-NO-DOUBLE-SETTLEMENT: only a new id is accepted; it is recorded; none forgotten."""
    del rules
    trade_id = event["trade_id"]
    return z3.Implies(
        step.accepted,
        z3.And(
            z3.Not(z3.Select(pre.trades, trade_id)),
            z3.Select(step.post.trades, trade_id),
            z3.Implies(
                trade_id != ANY_TRADE,
                z3.Select(step.post.trades, ANY_TRADE) == z3.Select(pre.trades, ANY_TRADE),
            ),
        ),
    )


def opened_empty(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-CANONICAL-FORM: a new account is the principal's, empty, and replaces nothing."""
    del rules
    account, principal = event["account"], event["principal"]
    return z3.Implies(
        step.accepted,
        z3.And(
            z3.Not(z3.Select(pre.exists, account)),
            z3.Select(step.post.exists, account),
            z3.Select(step.post.owner, account) == principal,
            step.post.bal(account, ANY_ASSET) == 0,
        ),
    )


def reference_positive(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """INV-UNIFORM-REFERENCE: a traded perpetual or future keeps a positive reference."""
    del rules
    instrument = event["instrument"]
    before = z3.Select(pre.reference, instrument)
    after = z3.Select(step.post.reference, instrument)
    return z3.Implies(step.accepted, z3.Or(after >= 1, z3.And(before == 0, after == 0)))


def oracle_band(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-ORACLE-ADMISSIBLE, its oracle part: the index moves within the band (SK-ORACLE-3).

    An accepted report moves the index at most ``band_ppm`` of the last accepted index, a
    first index is positive, and the clock never goes back.
    """
    underlying = event["underlying"]
    before = z3.Select(pre.index, underlying)
    after = z3.Select(step.post.index, underlying)
    move = z3.If(after >= before, after - before, before - after)
    within = z3.Or(
        *[
            z3.And(underlying == z3.StringVal(entry.symbol), move * PPM <= before * entry.band_ppm)
            for entry in rules.underlyings
        ]
    )
    priced = z3.Select(pre.has_price, underlying)
    return z3.Implies(
        step.accepted,
        z3.And(
            z3.Implies(priced, within),
            z3.Implies(z3.Select(step.post.has_price, underlying), after >= 1),
            step.post.clock >= pre.clock,
        ),
    )


def clock_tick(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-PRICE-FRESH's clock: an accepted tick moves the clock strictly forward, to its time.

    So staleness, measured on this clock, only grows while sources are silent (SK-TICK).
    """
    del rules
    return z3.Implies(
        step.accepted,
        z3.And(step.post.clock > pre.clock, step.post.clock == event["timestamp_ms"]),
    )


def listed_empty(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-OPEN-INTEREST-ZERO-SUM and INV-UNIFORM-REFERENCE hold for a new instrument.

    It was not listed before; it is listed with reference 0, no open interest, no position
    in any account, a positive multiplier, and settles in the valuation asset (SK-LIST).
    """
    instrument = event["instrument"]
    post = step.post
    return z3.Implies(
        step.accepted,
        z3.And(
            z3.Not(z3.Select(pre.listed, instrument)),
            z3.Select(post.listed, instrument),
            z3.Select(post.reference, instrument) == 0,
            z3.Select(post.open_interest, instrument) == 0,
            post.pos(instrument, ANY_ACCOUNT) == 0,
            z3.Select(post.multiplier, instrument) >= 1,
            z3.Select(post.settles_in, instrument) == z3.StringVal(rules.valuation_asset),
        ),
    )


def volatility_report(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """INV-ORACLE-ADMISSIBLE, its volatility part: within [0, 1000 %], time only forward.

    An accepted volatility is in range and stamped after the one it replaces, and a
    volatility report never moves the clock (it has no quorum behind it).
    """
    del rules
    underlying = event["underlying"]
    after = z3.Select(step.post.volatility, underlying)
    return z3.Implies(
        step.accepted,
        z3.And(
            after >= 0,
            after <= 10 * PPM,
            z3.Implies(
                z3.Select(pre.has_volatility, underlying),
                z3.Select(step.post.volatility_time, underlying)
                > z3.Select(pre.volatility_time, underlying),
            ),
            step.post.clock == pre.clock,
        ),
    )
