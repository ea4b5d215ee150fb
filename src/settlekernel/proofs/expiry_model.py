"""The z3 model of ``Expire`` and its claims, written from spec/30-transitions.md (SK-EXPIRY).

Every holder of the instrument is closed at the settlement price and paid through the
waterfall of SK-DEBT-1: payers in account-id order pay from cash; of the rest, the part that
is a true deficit the fund pays as far as its cash goes and the remainder is socialised; of
what the payer could still cover the fund advances what it can and defers the rest, and the
payer owes the fund both. Receivers are paid their due less a cut rounded up of the
socialised and deferred total, and hold a claim rounded down on the deferred part.

The holders are unbounded. The loop over them is a recurrence over their ranks (SK-PROOF-15):
``holder[i]`` is the ``i``-th holder in account-id order, ``rank`` its inverse, and arrays
indexed by rank hold the running totals (the fund's cash before holder ``i``, what was
socialised, deferred, owed, due, cut before it). One theorem proves the invariant tying the
totals together inductive (``Expire.waterfall-inductive``: it holds at rank 0 and each
holder's step keeps it); the others assume it at every rank, which is what induction over
the ranks gives, and derive the invariants of 60-invariants.md from it. In a concrete ledger
the loop is unrolled over the real holders, so the differential checks compare the same
formulas with ``step``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

import attrs
import z3

from settlekernel.core.reasons import Reason
from settlekernel.core.rules import RuleSet
from settlekernel.proofs.engine import evaluate
from settlekernel.proofs.symbolic import INT, NO_EXPIRY, STRING, Ledger
from settlekernel.proofs.transitions import (
    INSURANCE,
    RESIDUE,
    Consult,
    ModelStep,
    OracleConsult,
    cascade,
    write_balances,
)

ANY_ACCOUNT: Final = z3.String("any.account")
ANY_ASSET: Final = z3.String("any.asset")
ANY_INSTRUMENT: Final = z3.String("any.instrument")
# The rank a proof's induction step is taken at.
ANY_RANK: Final = z3.Int("any.rank")

SHARE_UP: Final = z3.Function("share_up", INT, INT, INT, INT)
SHARE_DOWN: Final = z3.Function("share_down", INT, INT, INT, INT)


class ExpiryConsult(Protocol):
    """What the expiry model asks about: the fixed settlement price, the payer's other value."""

    def settlement(self, instrument: Any) -> tuple[Any, Any]:
        """Return (is the settlement price fixed?, the price) for ``instrument``'s expiry."""

    def rest_value(self, account: Any, instrument: Any) -> Any:
        """Return the account's value at liquidation without the expiring position."""


def _min(a: Any, b: Any) -> Any:
    return z3.If(a <= b, a, b)


def _max0(a: Any) -> Any:
    return z3.If(a >= 0, a, 0)


@attrs.frozen
class Leg:
    """One holder's part of the waterfall, computed from its flow, cash, deficit and the fund."""

    flow: Any
    owed: Any
    due: Any
    paid: Any
    short: Any
    lost: Any
    cover: Any
    advance: Any
    deficit: Any

    @property
    def socialised(self) -> Any:
        """Return what of this payer's loss the fund could not pay."""
        return self.lost - self.cover

    @property
    def deferred(self) -> Any:
        """Return what of this payer's shortfall the fund could neither cover nor advance."""
        return self.short - self.lost - self.advance


def expiry_leg(flow: Any, cash: Any, deficit: Any, fund: Any, *, lose_all: bool = False) -> Leg:
    """Return a holder's tiers as ``debt.collect`` computes them (SK-DEBT-1).

    ``lose_all`` is the planted fault ``expiry-socialises-solvent``: the whole shortfall is
    lost, whatever the payer's true deficit.
    """
    owed = z3.If(flow < 0, -flow, 0)
    paid = _min(owed, cash)
    short = owed - paid
    lost = short if lose_all else _min(short, deficit)
    cover = _min(lost, fund)
    advance = _min(short - lost, fund - cover)
    return Leg(flow, owed, _max0(flow), paid, short, lost, cover, advance, deficit)


def _share(s: Ledger, total: Any, weight: Any, weight_sum: Any, *, up: bool) -> Any:
    """Return ``pro_rata_ceil`` / ``pro_rata_floor``'s share: exact if concrete (SK-PROOF-12)."""
    if s.universe is None:
        share = (SHARE_UP if up else SHARE_DOWN)(total, weight, weight_sum)
    else:
        exact = total * weight
        share = -((-exact) / weight_sum) if up else exact / weight_sum
    return z3.If(weight_sum > 0, share, 0)


@attrs.frozen
class Waterfall:
    """The recurrence over the holders' ranks: the symbolic form of the loop over holders."""

    count: Any
    holder: Any
    rank: Any
    fund_before: Any
    totals: dict[str, Any]
    fund0: Any
    leg: Any
    cut: Any
    claim: Any
    asset: Any
    instrument: Any

    def total(self, name: str, index: Any) -> Any:
        """Return the running total ``name`` over the holders ranked below ``index``."""
        return z3.Select(self.totals[name], index)

    def invariant(self, k: Any) -> Any:
        """Return the waterfall invariant after the holders ranked below ``k``.

        Their balances changed by their flows plus their shortfalls less their cuts; every
        unit of shortfall was paid by the fund, socialised or deferred; the fund's cash is in
        ``[0, fund0]``; nothing socialised exceeds the true deficits; the flows are the dues
        less the amounts owed.
        """
        t = self.total
        return z3.And(
            t("change", k) == t("flow", k) + t("short", k) - t("cut", k),
            t("short", k)
            == self.fund0 - z3.Select(self.fund_before, k) + t("social", k) + t("deferred", k),
            z3.Select(self.fund_before, k) >= 0,
            z3.Select(self.fund_before, k) <= self.fund0,
            t("social", k) >= 0,
            t("deferred", k) >= 0,
            t("short", k) <= t("owed", k),
            t("social", k) <= t("deficit", k),
            t("flow", k) == t("due", k) - t("owed", k),
        )

    def everywhere(self) -> Any:
        """Return the invariant at every rank ``0..count``: what induction over ranks gives."""
        k = z3.Int("waterfall.k")
        return z3.ForAll([k], z3.Implies(z3.And(k >= 0, k <= self.count), self.invariant(k)))

    def premises(self) -> Any:
        """Return what the derived claims assume: the invariant everywhere, flows summing to 0."""
        return z3.And(
            self.everywhere(),
            self.invariant(self.count),
            self.total("flow", self.count) == 0,
        )


_TOTALS: Final = ("social", "deferred", "short", "owed", "due", "flow", "cut", "change", "deficit")


def _per_lot(s: Ledger, instrument: Any, price: Any) -> Any:
    """Return SK-EXPIRY-1's amount per lot: ``(S - reference) * m``, or ``intrinsic(S) * m``."""
    strike = z3.Select(s.strike, instrument)
    intrinsic = z3.If(z3.Select(s.call, instrument), _max0(price - strike), _max0(strike - price))
    linear = price - z3.Select(s.reference, instrument)
    return s.mul(
        z3.If(z3.Select(s.linear, instrument), linear, intrinsic),
        z3.Select(s.multiplier, instrument),
    )


def expire(
    rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult, *, lose_all: bool = False
) -> ModelStep:
    """SK-EXPIRY: close every holder at the settlement price, paying through SK-DEBT-1."""
    instrument = e["instrument"]
    consult: ExpiryConsult = c  # type: ignore[assignment]
    oracle: OracleConsult = c  # type: ignore[assignment]
    fixed, price = consult.settlement(instrument)
    expiry = z3.Select(s.expiry, instrument)
    accepted, reason = cascade(
        [
            (e["principal"] != z3.StringVal(rules.roles.operator), Reason.PRINCIPAL_NOT_OPERATOR),
            (z3.Not(z3.Select(s.listed, instrument)), Reason.INSTRUMENT_UNKNOWN),
            (z3.Select(s.settled, instrument), Reason.INSTRUMENT_ALREADY_SETTLED),
            (z3.Or(expiry == NO_EXPIRY, s.clock < expiry), Reason.INSTRUMENT_NOT_EXPIRED),
            (z3.Not(fixed), Reason.SETTLEMENT_PRICE_UNAVAILABLE),
            (
                z3.Not(oracle.admits(z3.Select(s.underlying, instrument), "settlement")),
                Reason.ORACLE_NOT_ADMISSIBLE,
            ),
        ]
    )
    asset = z3.StringVal(rules.valuation_asset)
    per_lot = _per_lot(s, instrument, price)

    def leg(account: Any, fund: Any) -> Leg:
        flow = s.mul(s.pos(instrument, account), per_lot)
        owed = z3.If(flow < 0, -flow, 0)
        deficit = _max0(owed - consult.rest_value(account, instrument))
        return expiry_leg(flow, s.bal(account, asset), deficit, fund, lose_all=lose_all)

    if s.universe is None:
        return _symbolic(s, instrument, asset, leg, accepted, reason)
    return _concrete(s, instrument, asset, leg, accepted, reason)


def _closed(s: Ledger, post: Ledger, instrument: Any, asset: Any, social: Any) -> Ledger:
    """Return ``post`` with every position of ``instrument`` closed and it settled."""
    return attrs.evolve(
        post,
        positions=z3.Store(s.positions, instrument, z3.K(STRING, z3.IntVal(0))),
        open_interest=z3.Store(s.open_interest, instrument, z3.IntVal(0)),
        settled=z3.Store(s.settled, instrument, z3.BoolVal(True)),
        socialised=z3.Store(s.socialised, asset, z3.Select(s.socialised, asset) + social),
    )


def _step(  # noqa: PLR0913, PLR0917 (the outcome's parts)
    s: Ledger,
    post: Ledger,
    instrument: Any,
    asset: Any,
    accepted: Any,
    reason: Any,
    defines: tuple[Any, ...] = (),
    waterfall: Waterfall | None = None,
) -> ModelStep:
    return ModelStep(
        accepted,
        reason,
        post,
        writes=((INSURANCE, asset), (RESIDUE, asset)),
        defines=defines,
        waterfall=waterfall,
        assumes=(z3.Select(s.multiplier, instrument) >= 1,),
    )


def _concrete(  # noqa: PLR0913, PLR0917 (the model's parts)
    s: Ledger, instrument: Any, asset: Any, leg: Any, accepted: Any, reason: Any
) -> ModelStep:
    """Unroll the waterfall over the real holders in account-id order (SK-PROOF-2)."""
    assert s.universe is not None
    holders = [
        z3.StringVal(a)
        for a in s.universe
        if z3.is_true(z3.simplify(s.pos(instrument, z3.StringVal(a)) != 0))
    ]
    fund = evaluate(s.bal(INSURANCE, asset))
    legs = []
    for holder in holders:
        part = leg(holder, fund)
        legs.append(part)
        fund = evaluate(fund - part.cover - part.advance)
    social = evaluate(z3.Sum(z3.IntVal(0), *[p.socialised for p in legs]))
    deferred = evaluate(z3.Sum(z3.IntVal(0), *[p.deferred for p in legs]))
    due = evaluate(z3.Sum(z3.IntVal(0), *[p.due for p in legs]))
    balance, credit, counts = [], s.claim_net, s.position_count
    cuts: Any = z3.IntVal(0)
    for holder, part in zip(holders, legs, strict=True):
        cut = evaluate(_share(s, social + deferred, part.due, due, up=True))
        claim = _share(s, deferred, part.due, due, up=False)
        cuts = evaluate(cuts + cut)
        cash = s.bal(holder, asset) - part.paid + part.due - cut
        balance.append((holder, asset, evaluate(cash)))
        credit = z3.Store(
            credit,
            holder,
            evaluate(z3.Select(s.claim_net, holder) + claim - part.short + part.lost),
        )
        counts = z3.Store(counts, holder, z3.Select(s.position_count, holder) - 1)
    residue = s.bal(RESIDUE, asset) + cuts - social - deferred
    post = write_balances(s, [*balance, (INSURANCE, asset, fund), (RESIDUE, asset, residue)])
    post = attrs.evolve(post, claim_net=credit, position_count=counts)
    post = _closed(s, post, instrument, asset, social)
    return _step(s, post, instrument, asset, accepted, reason)


def _symbolic(  # noqa: PLR0913, PLR0917 (the model's parts)
    s: Ledger, instrument: Any, asset: Any, leg: Any, accepted: Any, reason: Any
) -> ModelStep:
    """Write the loop over holders as a recurrence over their ranks (SK-PROOF-15)."""
    count = z3.Int("expire.holders")
    holder = z3.Array("expire.holder", INT, STRING)
    rank = z3.Function("expire.rank", STRING, INT)
    fund_before = z3.Array("expire.fund", INT, INT)
    totals = {name: z3.Array(f"expire.{name}", INT, INT) for name in _TOTALS}

    def at(name: str, index: Any) -> Any:
        return z3.Select(totals[name], index)

    social, deferred, due = at("social", count), at("deferred", count), at("due", count)

    def cut(part: Leg) -> Any:
        return _share(s, social + deferred, part.due, due, up=True)

    def claim(part: Leg) -> Any:
        return _share(s, deferred, part.due, due, up=False)

    def leg_of(account: Any) -> Leg:
        part: Leg = leg(account, z3.Select(fund_before, rank(account)))
        return part

    account = z3.String("expire.account")
    holds = s.pos(instrument, account) != 0
    row = z3.Select(s.balance, account)
    part = leg_of(account)
    paid_row = z3.Store(row, asset, z3.Select(row, asset) - part.paid + part.due - cut(part))
    post = attrs.evolve(
        s,
        balance=z3.Lambda([account], z3.If(holds, paid_row, row)),
        claim_net=z3.Lambda(
            [account],
            z3.If(
                holds,
                z3.Select(s.claim_net, account) + claim(part) - part.short + part.lost,
                z3.Select(s.claim_net, account),
            ),
        ),
        position_count=z3.Lambda(
            [account],
            z3.If(
                holds,
                z3.Select(s.position_count, account) - 1,
                z3.Select(s.position_count, account),
            ),
        ),
    )
    fund0 = s.bal(INSURANCE, asset)
    residue = s.bal(RESIDUE, asset) + at("cut", count) - social - deferred
    post = write_balances(
        post, [(INSURANCE, asset, z3.Select(fund_before, count)), (RESIDUE, asset, residue)]
    )
    post = _closed(s, post, instrument, asset, social)
    waterfall = Waterfall(
        count, holder, rank, fund_before, totals, fund0, leg_of, cut, claim, asset, instrument
    )
    defines = _recurrence(s, post, waterfall)
    return _step(s, post, instrument, asset, accepted, reason, defines, waterfall)


def _recurrence(s: Ledger, post: Ledger, w: Waterfall) -> tuple[Any, ...]:
    """Return the definitions of the ranks and running totals, and the share functions' facts."""
    i = z3.Int("expire.i")
    a = z3.String("expire.a")
    instrument, asset, count = w.instrument, w.asset, w.count
    who = z3.Select(w.holder, i)
    part = w.leg(who)
    steps = {
        "social": part.socialised,
        "deferred": part.deferred,
        "short": part.short,
        "owed": part.owed,
        "due": part.due,
        "flow": part.flow,
        "cut": w.cut(part),
        "change": post.bal(who, asset) - s.bal(who, asset),
        "deficit": part.deficit,
    }
    within = z3.And(i >= 0, i < count)
    recurrence = [
        z3.Select(w.fund_before, i + 1) == z3.Select(w.fund_before, i) - part.cover - part.advance,
        *[w.total(name, i + 1) == w.total(name, i) + value for name, value in steps.items()],
    ]
    total, weight, weight_sum = z3.Ints("share.total share.weight share.sum")
    up = SHARE_UP(total, weight, weight_sum)
    down = SHARE_DOWN(total, weight, weight_sum)
    bounded = z3.And(total >= 0, total <= weight_sum, weight >= 0, weight_sum >= 1)
    social, deferred, due = (
        w.total("social", count),
        w.total("deferred", count),
        w.total("due", count),
    )
    return (
        count >= 0,
        # The holder index lists exactly the accounts with a position, each once.
        z3.ForAll(
            [i],
            z3.Implies(within, z3.And(s.pos(instrument, who) != 0, w.rank(who) == i)),
        ),
        z3.ForAll(
            [a],
            z3.Implies(
                s.pos(instrument, a) != 0,
                z3.And(w.rank(a) >= 0, w.rank(a) < count, z3.Select(w.holder, w.rank(a)) == a),
            ),
        ),
        # INV-NONNEGATIVE-BALANCES before the step, at every account.
        z3.ForAll([a], s.bal(a, asset) >= 0),
        z3.Select(w.fund_before, 0) == w.fund0,
        *[w.total(name, 0) == 0 for name in _TOTALS],
        z3.ForAll([i], z3.Implies(within, z3.And(*recurrence))),
        # share_up / share_down's contracts (core/arith.py, checked by CrossHair), and the
        # sums of pro_rata_ceil / pro_rata_floor over all receivers (SK-WATERFALL-2).
        z3.ForAll(
            [total, weight, weight_sum],
            z3.Implies(bounded, z3.And(up >= 0, up <= weight, down >= 0, down <= up)),
            patterns=[up],
        ),
        z3.ForAll(
            [total, weight, weight_sum],
            z3.Implies(bounded, z3.And(down >= 0, down <= weight)),
            patterns=[down],
        ),
        z3.Implies(due > 0, w.total("cut", count) >= social + deferred),
        z3.Implies(due == 0, w.total("cut", count) == 0),
    )


def vacuity_witness(pre: Ledger, step: ModelStep) -> tuple[Any, ...]:
    """Return the simplest pre-state for the vacuity check: nothing held, no holders."""
    w: Waterfall = step.waterfall
    return (
        pre.positions == z3.K(STRING, z3.K(STRING, z3.IntVal(0))),
        pre.balance == z3.K(STRING, z3.K(STRING, z3.IntVal(0))),
        w.count == 0,
    )


def search_witness(pre: Ledger, step: ModelStep) -> tuple[Any, ...]:
    """Return a small pre-state for z3's model search: a long and a short, nothing else held.

    The long holds nothing (so it is short of cash if the price falls); every other balance
    is zero and the fund is empty. Used for the vacuity check and, when the search over all
    states is inconclusive, for a counterexample: a witness inside the hypotheses is a
    genuine one.
    """
    w: Waterfall = step.waterfall
    long, short = z3.StringVal("long"), z3.StringVal("short")
    row = z3.Store(z3.Store(z3.K(STRING, z3.IntVal(0)), long, 1), short, -1)
    return (
        pre.positions == z3.Store(z3.K(STRING, z3.K(STRING, z3.IntVal(0))), w.instrument, row),
        pre.balance == z3.K(STRING, z3.K(STRING, z3.IntVal(0))),
        w.count == 2,
        w.holder == z3.Store(z3.Store(z3.K(INT, z3.StringVal("")), 0, long), 1, short),
        w.rank(long) == 0,
        w.rank(short) == 1,
    )


def _premised(step: ModelStep, claim: Any) -> Any:
    w: Waterfall = step.waterfall
    return z3.Implies(z3.And(step.accepted, w.premises()), claim)


def waterfall_inductive(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """The waterfall invariant holds before the first holder and each holder's step keeps it."""
    del rules, pre, event
    w: Waterfall = step.waterfall
    k = ANY_RANK
    return z3.And(
        w.invariant(z3.IntVal(0)),
        z3.Implies(z3.And(k >= 0, k < w.count, w.invariant(k)), w.invariant(k + 1)),
    )


def conservation(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-CONSERVATION at expiry: only holders, the fund and the residue change, summing to 0.

    Every balance of another asset, of a non-holder or of another system account is
    unchanged, custody is unchanged, and the holders' changes (the running total ``change``
    over all ranks), the fund's and the residue's add up to zero.
    """
    del rules, event
    w: Waterfall = step.waterfall
    asset, post = w.asset, step.post
    written = z3.And(
        asset == ANY_ASSET,
        z3.Or(
            pre.pos(w.instrument, ANY_ACCOUNT) != 0,
            ANY_ACCOUNT == INSURANCE,
            ANY_ACCOUNT == RESIDUE,
        ),
    )
    frame = z3.Implies(
        z3.Not(written), post.bal(ANY_ACCOUNT, ANY_ASSET) == pre.bal(ANY_ACCOUNT, ANY_ASSET)
    )
    fund = post.bal(INSURANCE, asset) - pre.bal(INSURANCE, asset)
    residue = post.bal(RESIDUE, asset) - pre.bal(RESIDUE, asset)
    return _premised(
        step,
        z3.And(
            frame,
            z3.Select(post.custody, ANY_ASSET) == z3.Select(pre.custody, ANY_ASSET),
            w.total("change", w.count) + fund + residue == 0,
        ),
    )


def nonnegative(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-NONNEGATIVE-BALANCES at expiry: no holder, fund or residue balance goes negative."""
    del rules, pre, event
    return _premised(step, step.post.bal(ANY_ACCOUNT, ANY_ASSET) >= 0)


def insurance(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-INSURANCE-NONNEGATIVE at expiry: the fund stays >= 0, paying only shortfalls."""
    del rules, event
    w: Waterfall = step.waterfall
    after = step.post.bal(INSURANCE, w.asset)
    return _premised(
        step,
        z3.And(after >= 0, pre.bal(INSURANCE, w.asset) - after <= w.total("short", w.count)),
    )


def socialise_only_deficit(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """INV-SOCIALISE-ONLY-DEFICIT at expiry: only true deficits are socialised.

    Each payer's socialised part is at most its true deficit (none for a solvent payer), and
    ``socialised_loss`` grows by the total, at most the sum of the true deficits.
    """
    del rules
    w: Waterfall = step.waterfall
    part = w.leg(ANY_ACCOUNT)
    social = w.total("social", w.count)
    grown = z3.Select(step.post.socialised, w.asset) - z3.Select(pre.socialised, w.asset)
    del event
    return _premised(
        step,
        z3.And(
            z3.Implies(pre.pos(w.instrument, ANY_ACCOUNT) != 0, part.socialised <= part.deficit),
            grown == social,
            social <= w.total("deficit", w.count),
        ),
    )


def open_interest(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-OPEN-INTEREST-ZERO-SUM at expiry: every position of the instrument is closed.

    Its positions and open interest are zero and it is settled; every other instrument's
    positions and open interest are unchanged.
    """
    del rules
    instrument, post = event["instrument"], step.post
    other = instrument != ANY_INSTRUMENT
    return z3.Implies(
        step.accepted,
        z3.And(
            post.pos(instrument, ANY_ACCOUNT) == 0,
            z3.Select(post.open_interest, instrument) == 0,
            z3.Select(post.settled, instrument),
            z3.Implies(
                other,
                z3.And(
                    post.pos(ANY_INSTRUMENT, ANY_ACCOUNT) == pre.pos(ANY_INSTRUMENT, ANY_ACCOUNT),
                    z3.Select(post.open_interest, ANY_INSTRUMENT)
                    == z3.Select(pre.open_interest, ANY_INSTRUMENT),
                ),
            ),
        ),
    )
