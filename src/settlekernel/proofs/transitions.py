"""z3 models of the foundation transitions, written from spec/30-transitions.md.

Each model takes a rule set (its numbers are constants of the model), a ledger, the event's
fields and a ``Consult`` for the guards the model does not reimplement, and returns a
``ModelStep``: whether the event is accepted, the rejection reason, the post-ledger and the
(account, asset) pairs the step may write. The guard cascades follow the spec's precedence;
every value a step writes is computed from the pre-state, as the kernel computes it.

What the models do not reimplement is *consulted* (SK-PROOF-3): whether the oracle admits a
margin check, and whether an account meets its margin requirement. In a proof a consulted
guard is an uninterpreted predicate, so the theorem holds whatever margin engine and oracle
decide; in the differential checks it is answered by the kernel itself for the exact
arguments the model asks about, so a model that asks about the wrong balance disagrees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs
import z3

from settlekernel.core.reasons import Reason
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import (
    FEE_ACCOUNT,
    INSURANCE_ACCOUNT,
    PPM,
    RESIDUE_ACCOUNT,
    VALUE_LIMIT,
)
from settlekernel.proofs.symbolic import NO_EXPIRY, STRING, Ledger

FEES: Final = z3.StringVal(FEE_ACCOUNT)
RESIDUE: Final = z3.StringVal(RESIDUE_ACCOUNT)
INSURANCE: Final = z3.StringVal(INSURANCE_ACCOUNT)
ACCEPTED: Final = z3.StringVal("")


class Consult(Protocol):
    """The guards a model asks about instead of reimplementing them."""

    def margin_admissible(self, account: Any) -> Any:
        """Return whether the oracle admits margining ``account`` (SK-ORACLE-5)."""

    def initial_margin_ok(self, account: Any, asset: Any, balance: Any) -> Any:
        """Return whether ``account`` holding ``balance`` of ``asset`` meets initial margin."""

    def trade_admissible(self, instrument: Any, buyer: Any, seller: Any) -> Any:
        """Return whether the oracle admits this trade and both margin checks."""

    def trade_margin_ok(
        self, account: Any, balance: Any, instrument: Any, quantity: Any, reference: Any
    ) -> Any:
        """Return whether a trade leg passes SK-MARGIN-3 with this balance and position."""


class OracleConsult(Protocol):
    """Whether the oracle of an underlying admits an action now (SK-ORACLE-4)."""

    def admits(self, underlying: Any, action: str) -> Any:
        """Return whether ``underlying``'s validity admits ``action`` (an ``Action`` value)."""

    def vm_solvent(self, instrument: Any) -> Any:
        """Return whether every holder's mark is covered by all it holds (SK-VM-3)."""


class QuorumConsult(Protocol):
    """The oracle's evaluation of the reports once a new one is stored (SK-ORACLE-2)."""

    def quorum(
        self, underlying: Any, source: Any, price: Any, timestamp: Any
    ) -> tuple[Any, Any, Any]:
        """Return (an index would be accepted?, the median of the fresh reports, quorum time)."""


class LiquidationConsult(Protocol):
    """The liquidation decisions a model asks about: validity, the ladder's choice."""

    def liquidation_admissible(self, account: Any, liquidator: Any) -> Any:
        """Return whether the oracle admits liquidating with both accounts' prices."""

    def liquidatable(self, account: Any) -> Any:
        """Return whether the account's equity is below its maintenance margin (SK-PM-6)."""

    def liquidator_rejection(self, account: Any, liquidator: Any) -> Any:
        """Return the SK-LIQ-5 rejection reason of the liquidator, "" when it qualifies."""


class SymbolicConsult:
    """Consulted guards as uninterpreted predicates: the proofs hold for any answers."""

    def __init__(self) -> None:
        """Declare one uninterpreted predicate per consulted guard."""
        integer = z3.IntSort()
        boolean = z3.BoolSort()
        self._admissible = z3.Function("margin_admissible", STRING, boolean)
        self._initial = z3.Function("initial_margin_ok", STRING, STRING, integer, boolean)
        self._trade_admissible = z3.Function("trade_admissible", STRING, STRING, STRING, boolean)
        self._trade_margin = z3.Function(
            "trade_margin_ok", STRING, integer, STRING, integer, integer, boolean
        )
        self._liquidation_admissible = z3.Function(
            "liquidation_admissible", STRING, STRING, boolean
        )
        self._liquidatable = z3.Function("liquidatable", STRING, boolean)
        self._admits = z3.Function("admits", STRING, STRING, boolean)
        self._vm_solvent = z3.Function("vm_solvent", STRING, boolean)
        self._quorum = tuple(
            z3.Function(f"quorum.{name}", STRING, STRING, integer, integer, sort)
            for name, sort in (("candidate", boolean), ("median", integer), ("time", integer))
        )
        self._liquidator_rejection = z3.Function("liquidator_rejection", STRING, STRING, STRING)
        self._settlement = (
            z3.Function("settlement.fixed", STRING, boolean),
            z3.Function("settlement.price", STRING, integer),
        )
        self._rest_value = z3.Function("rest_value", STRING, STRING, integer)
        self._plan = tuple(
            z3.Function(f"plan.{name}", STRING, STRING, sort)
            for name, sort in (("bankrupt", boolean), ("rung", integer), ("cap", integer))
        )
        self._transfer_price = z3.Function("transfer_price", STRING, integer, integer)
        self._sold = z3.Function("sold", STRING, STRING, STRING, integer)
        self._ratio_kept = z3.Function("ratio_kept", STRING, STRING, boolean)

    def plan(self, account: Any, liquidator: Any) -> tuple[Any, Any, Any]:
        """Return the ladder's plan as uninterpreted functions; the rung is in 0..10."""
        bankrupt, rung, cap = (f(account, liquidator) for f in self._plan)
        return bankrupt, z3.If(z3.And(rung >= 0, rung <= 10), rung, 10), cap

    def transfer_price(self, instrument: Any, lots: Any) -> Any:
        """Return a transfer price, uninterpreted and non-negative (SK-LIQ-2)."""
        price = self._transfer_price(instrument, lots)
        return z3.If(price >= 0, price, 0)

    def sold(self, account: Any, asset: str, slot: str) -> Any:
        """Return the units a buyer takes, uninterpreted (affordable_units decides them)."""
        return self._sold(account, z3.StringVal(asset), z3.StringVal(slot))

    def ratio_kept(self, account: Any, liquidator: Any) -> Any:
        """Return the ladder's ratio check on the post-state, uninterpreted."""
        return self._ratio_kept(account, liquidator)

    def ranking(self, instrument: str, lots: int, account: str) -> list[str]:
        """A concrete ranking only: a symbolic model writes it as a recurrence."""
        raise NotImplementedError(f"no concrete ranking of {instrument} {lots} {account}")

    def settlement(self, instrument: Any) -> tuple[Any, Any]:
        """Return whether the instrument's settlement price is fixed, and the price."""
        return self._settlement[0](instrument), self._settlement[1](instrument)

    def rest_value(self, account: Any, instrument: Any) -> Any:
        """Return the account's value at liquidation without the position, uninterpreted."""
        return self._rest_value(account, instrument)

    def admits(self, underlying: Any, action: str) -> Any:
        """Return the admissibility predicate of ``underlying`` for ``action``."""
        return self._admits(underlying, z3.StringVal(action))

    def vm_solvent(self, instrument: Any) -> Any:
        """Return the SK-VM-3 predicate of ``instrument``."""
        return self._vm_solvent(instrument)

    def quorum(
        self, underlying: Any, source: Any, price: Any, timestamp: Any
    ) -> tuple[Any, Any, Any]:
        """Return the evaluation as uninterpreted functions of the new report."""
        return tuple(f(underlying, source, price, timestamp) for f in self._quorum)

    def liquidation_admissible(self, account: Any, liquidator: Any) -> Any:
        """Return the predicate applied to both accounts."""
        return self._liquidation_admissible(account, liquidator)

    def liquidatable(self, account: Any) -> Any:
        """Return the predicate applied to ``account``."""
        return self._liquidatable(account)

    def liquidator_rejection(self, account: Any, liquidator: Any) -> Any:
        """Return the reason as an uninterpreted string function."""
        return self._liquidator_rejection(account, liquidator)

    def margin_admissible(self, account: Any) -> Any:
        """Return the predicate applied to ``account``."""
        return self._admissible(account)

    def initial_margin_ok(self, account: Any, asset: Any, balance: Any) -> Any:
        """Return the predicate applied to the would-be balance."""
        return self._initial(account, asset, balance)

    def trade_admissible(self, instrument: Any, buyer: Any, seller: Any) -> Any:
        """Return the predicate applied to the trade's parties."""
        return self._trade_admissible(instrument, buyer, seller)

    def trade_margin_ok(
        self, account: Any, balance: Any, instrument: Any, quantity: Any, reference: Any
    ) -> Any:
        """Return the predicate applied to the would-be leg."""
        return self._trade_margin(account, balance, instrument, quantity, reference)


@attrs.frozen
class ModelStep:
    """A modelled outcome: acceptance, reason ("" when accepted), post-ledger, writes.

    ``writes`` lists the (account, asset) balances the step may change; ``custody_assets``
    the custody totals. Everything not listed must be unchanged (the frame).
    """

    accepted: Any
    reason: Any
    post: Ledger
    writes: tuple[tuple[Any, Any], ...]
    custody_assets: tuple[Any, ...] = ()
    position_writes: tuple[tuple[Any, Any], ...] = ()
    checks: tuple[Any, ...] = ()
    # Facts about consulted values the proofs assume (a transfer price is positive); the
    # differential checks confirm each on every accepted concrete case.
    assumes: tuple[Any, ...] = ()
    # A step that pays every holder of an instrument: (asset, instrument, per-lot amount).
    # Every account's balance of the asset changes by its position times the amount.
    per_lot: tuple[Any, Any, Any] | None = None
    # Definitions of the model's own auxiliary functions (a loop over holders written as a
    # recurrence over their ranks): hypotheses of every theorem, empty in a concrete ledger.
    defines: tuple[Any, ...] = ()
    # The waterfall's running totals, for the claims about it (``proofs/expiry_model.py``).
    waterfall: Any = None


def cascade(
    guards: list[tuple[Any, Any]], omit: frozenset[Reason] = frozenset()
) -> tuple[Any, Any]:
    """Return (accepted, reason) for guards in precedence order: the first failing one wins.

    ``omit`` drops guards by reason: only the planted faults use it (SK-PROOF-6).
    """
    guards = [(fails, rejection) for fails, rejection in guards if rejection not in omit]
    reason = ACCEPTED
    for fails, rejection in reversed(guards):
        term = z3.StringVal(rejection.value) if isinstance(rejection, Reason) else rejection
        reason = z3.If(fails, term, reason)
    return z3.Not(z3.Or(*[fails for fails, _ in guards])), reason


def _known_asset(rules: RuleSet, asset: Any) -> Any:
    return z3.Or(*[asset == z3.StringVal(a.symbol) for a in rules.assets])


def _one_of(value: Any, names: tuple[str, ...]) -> Any:
    return z3.Or(*[value == z3.StringVal(name) for name in names])


def _amount_guards(amount: Any) -> list[tuple[Any, Reason]]:
    return [
        (amount < 1, Reason.AMOUNT_NOT_POSITIVE),
        (amount > VALUE_LIMIT - 1, Reason.AMOUNT_TOO_LARGE),
    ]


def write_balances(ledger: Ledger, writes: list[tuple[Any, Any, Any]]) -> Ledger:
    """Store each (account, asset, new value) in turn; values are computed beforehand."""
    balance = ledger.balance
    for account, asset, value in writes:
        balance = z3.Store(balance, account, z3.Store(z3.Select(balance, account), asset, value))
    return attrs.evolve(ledger, balance=balance)


def open_account(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-OPEN: a fresh id, room for it; the new account is the principal's and empty."""
    del c
    account = e["account"]
    accepted, reason = cascade(
        [
            (z3.Select(s.exists, account), Reason.ACCOUNT_EXISTS),
            (s.account_count >= rules.accounts_max, Reason.ACCOUNT_LIMIT_REACHED),
        ]
    )
    post = attrs.evolve(
        s,
        exists=z3.Store(s.exists, account, z3.BoolVal(True)),
        owner=z3.Store(s.owner, account, e["principal"]),
        account_count=s.account_count + 1,
    )
    return ModelStep(accepted, reason, post, writes=())


def deposit(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-DEPOSIT: credit an account and custody together, below 2**96."""
    del c
    account, asset, amount = e["account"], e["asset"], e["amount_minor"]
    custody = z3.Select(s.custody, asset) + amount
    owner = z3.Select(s.owner, account)
    accepted, reason = cascade(
        [
            *_amount_guards(amount),
            (z3.Not(_known_asset(rules, asset)), Reason.ASSET_UNKNOWN),
            (z3.Not(z3.Select(s.exists, account)), Reason.ACCOUNT_UNKNOWN),
            (
                z3.And(
                    e["principal"] != owner, e["principal"] != z3.StringVal(rules.roles.operator)
                ),
                Reason.PRINCIPAL_NOT_OWNER,
            ),
            (custody >= VALUE_LIMIT, Reason.CUSTODY_LIMIT_EXCEEDED),
        ]
    )
    post = write_balances(s, [(account, asset, s.bal(account, asset) + amount)])
    post = attrs.evolve(post, custody=z3.Store(s.custody, asset, custody))
    return ModelStep(accepted, reason, post, writes=((account, asset),), custody_assets=(asset,))


def withdraw(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-WITHDRAW: the owner takes out what it holds and still meets initial margin."""
    account, asset, amount = e["account"], e["asset"], e["amount_minor"]
    balance = s.bal(account, asset)
    remaining = balance - amount
    accepted, reason = cascade(
        [
            *_amount_guards(amount),
            (z3.Not(_known_asset(rules, asset)), Reason.ASSET_UNKNOWN),
            (z3.Not(z3.Select(s.exists, account)), Reason.ACCOUNT_UNKNOWN),
            (e["principal"] != z3.Select(s.owner, account), Reason.PRINCIPAL_NOT_OWNER),
            (z3.Not(c.margin_admissible(account)), Reason.ORACLE_NOT_ADMISSIBLE),
            (balance < amount, Reason.INSUFFICIENT_FUNDS),
            (z3.Not(c.initial_margin_ok(account, asset, remaining)), Reason.MARGIN_INSUFFICIENT),
        ]
    )
    post = write_balances(s, [(account, asset, remaining)])
    post = attrs.evolve(
        post, custody=z3.Store(s.custody, asset, z3.Select(s.custody, asset) - amount)
    )
    check = c.initial_margin_ok(account, asset, post.bal(account, asset))
    return ModelStep(
        accepted, reason, post, writes=((account, asset),), custody_assets=(asset,), checks=(check,)
    )


def transfer(
    rules: RuleSet,
    s: Ledger,
    e: dict[str, Any],
    c: Consult,
    omit: frozenset[Reason] = frozenset(),
) -> ModelStep:
    """SK-TRANSFER: between two accounts of one owner; the source meets initial margin."""
    source, target = e["source_account"], e["target_account"]
    asset, amount = e["asset"], e["amount_minor"]
    source_balance = s.bal(source, asset)
    owner = z3.Select(s.owner, source)
    accepted, reason = cascade(
        [
            *_amount_guards(amount),
            (source == target, Reason.TRANSFER_TO_SAME_ACCOUNT),
            (z3.Not(_known_asset(rules, asset)), Reason.ASSET_UNKNOWN),
            (z3.Not(z3.Select(s.exists, source)), Reason.ACCOUNT_UNKNOWN),
            (z3.Not(z3.Select(s.exists, target)), Reason.ACCOUNT_UNKNOWN),
            (e["principal"] != owner, Reason.PRINCIPAL_NOT_OWNER),
            (z3.Select(s.owner, target) != owner, Reason.TRANSFER_OWNERS_DIFFER),
            (z3.Not(c.margin_admissible(source)), Reason.ORACLE_NOT_ADMISSIBLE),
            (source_balance < amount, Reason.INSUFFICIENT_FUNDS),
            (
                z3.Not(c.initial_margin_ok(source, asset, source_balance - amount)),
                Reason.MARGIN_INSUFFICIENT,
            ),
        ],
        omit,
    )
    post = write_balances(
        s,
        [
            (source, asset, source_balance - amount),
            (target, asset, s.bal(target, asset) + amount),
        ],
    )
    check = c.initial_margin_ok(source, asset, post.bal(source, asset))
    return ModelStep(
        accepted, reason, post, writes=((source, asset), (target, asset)), checks=(check,)
    )


def fund_insurance(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-INSURANCE-1: the operator credits the insurance fund and custody together."""
    del c
    asset, amount = e["asset"], e["amount_minor"]
    custody = z3.Select(s.custody, asset) + amount
    accepted, reason = cascade(
        [
            (e["principal"] != z3.StringVal(rules.roles.operator), Reason.PRINCIPAL_NOT_OPERATOR),
            *_amount_guards(amount),
            (z3.Not(_known_asset(rules, asset)), Reason.ASSET_UNKNOWN),
            (custody >= VALUE_LIMIT, Reason.CUSTODY_LIMIT_EXCEEDED),
        ]
    )
    post = write_balances(s, [(INSURANCE, asset, s.bal(INSURANCE, asset) + amount)])
    post = attrs.evolve(post, custody=z3.Store(s.custody, asset, custody))
    return ModelStep(accepted, reason, post, writes=((INSURANCE, asset),), custody_assets=(asset,))


def ceil_div_ppm(numerator: Any) -> Any:
    """Return the ceiling of a non-negative numerator over 10**6, as the kernel rounds fees.

    z3's integer division is Euclidean; for a positive divisor it agrees with Python's
    floor division, and ``-((-n) // d)`` is the ceiling in both.
    """
    return -((-numerator) / PPM)


@attrs.frozen
class TradeFigures:
    """The amounts one trade moves, computed from the pre-state as SK-TRADE states them."""

    reference: Any
    settlement: Any
    notional: Any
    buyer_fee: Any
    buyer_pool: Any
    seller_fee: Any
    seller_pool: Any


def trade_figures(s: Ledger, e: dict[str, Any]) -> TradeFigures:
    """Return the settlement (SK-SETTLE-1,2) and both fees (SK-ROUND-1) of a trade."""
    instrument = e["instrument"]
    quantity, price = e["quantity_lots"], e["price_ticks"]
    multiplier = z3.Select(s.multiplier, instrument)
    held = z3.Select(s.reference, instrument)
    reference = z3.If(z3.Select(s.linear, instrument), z3.If(held == 0, price, held), 0)
    notional = s.mul(quantity, price, multiplier)
    buyer_exact = s.mul(notional, e["buyer_fee_rate_ppm"])
    seller_exact = s.mul(notional, e["seller_fee_rate_ppm"])
    return TradeFigures(
        reference=reference,
        settlement=s.mul(quantity, price - reference, multiplier),
        notional=notional,
        buyer_fee=ceil_div_ppm(buyer_exact),
        buyer_pool=buyer_exact / PPM,
        seller_fee=ceil_div_ppm(seller_exact),
        seller_pool=seller_exact / PPM,
    )


def _trade_range_guards(rules: RuleSet, e: dict[str, Any]) -> list[tuple[Any, Reason]]:
    quantity, price = e["quantity_lots"], e["price_ticks"]
    fees = (e["buyer_fee_rate_ppm"], e["seller_fee_rate_ppm"])
    return [
        (quantity < 1, Reason.QUANTITY_NOT_POSITIVE),
        (quantity > rules.position_lots_max, Reason.QUANTITY_TOO_LARGE),
        (price < 1, Reason.PRICE_NOT_POSITIVE),
        (price > rules.price_ticks_max, Reason.PRICE_TOO_LARGE),
        *[
            (z3.Or(rate < 0, rate > rules.fee_rate_max_ppm), Reason.FEE_RATE_OUT_OF_RANGE)
            for rate in fees
        ],
    ]


def _trade_party_guards(s: Ledger, e: dict[str, Any]) -> list[tuple[Any, Reason]]:
    instrument, buyer, seller = e["instrument"], e["buyer"], e["seller"]
    return [
        (buyer == seller, Reason.SELF_TRADE),
        (z3.Not(z3.Select(s.listed, instrument)), Reason.INSTRUMENT_UNKNOWN),
        (z3.Not(z3.Select(s.exists, buyer)), Reason.ACCOUNT_UNKNOWN),
        (z3.Not(z3.Select(s.exists, seller)), Reason.ACCOUNT_UNKNOWN),
    ]


def _trade_market_guards(s: Ledger, e: dict[str, Any], c: Consult) -> list[tuple[Any, Reason]]:
    instrument, buyer, seller = e["instrument"], e["buyer"], e["seller"]
    underlying = z3.Select(s.underlying, instrument)
    expiry = z3.Select(s.expiry, instrument)
    return [
        (z3.And(expiry != NO_EXPIRY, expiry <= s.clock), Reason.INSTRUMENT_EXPIRED),
        (z3.Not(z3.Select(s.has_price, underlying)), Reason.PRICE_UNAVAILABLE),
        (
            z3.And(
                z3.Not(z3.Select(s.linear, instrument)),
                z3.Not(z3.Select(s.has_volatility, underlying)),
            ),
            Reason.PRICE_UNAVAILABLE,
        ),
        (z3.Not(c.trade_admissible(instrument, buyer, seller)), Reason.ORACLE_NOT_ADMISSIBLE),
    ]


FULL: Final = z3.StringVal("full")
REDUCE_ONLY: Final = z3.StringVal("reduce_only")
ACTIVE: Final = z3.StringVal("active")


def effective_grant(s: Ledger, account: Any, venue: Any) -> Any:
    """Return what ``venue`` may do on ``account``: the recorded grant, else its default.

    The default is ``full`` for a house venue and ``none`` for an admitted one (SK-VENUE-2).
    """
    recorded = s.grant(account, venue)
    default = z3.If(z3.Select(s.venue_house, venue), FULL, z3.StringVal("none"))
    return z3.If(recorded == z3.StringVal(""), default, recorded)


def reduces(before: Any, after: Any) -> Any:
    """Return whether a position moves strictly toward zero without passing it (SK-VENUE-2)."""
    same_side = z3.Or(z3.And(before >= 0, after >= 0), z3.And(before <= 0, after <= 0))
    return z3.And(_abs(after) < _abs(before), same_side)


def grant_allows(s: Ledger, account: Any, venue: Any, before: Any, after: Any) -> Any:
    """Return whether the account's grant lets the venue move its position from before to after."""
    grant = effective_grant(s, account, venue)
    return z3.Or(grant == FULL, z3.And(grant == REDUCE_ONLY, reduces(before, after)))


def _venue_guards(
    s: Ledger, e: dict[str, Any], legs: tuple[tuple[Any, Any, Any, Any], ...]
) -> tuple[list[tuple[Any, Reason]], list[tuple[Any, Reason]]]:
    """Return the venue's fee-ceiling guard (SK-VENUE-3) and the grant guards (SK-VENUE-2)."""
    venue = e["principal"]
    ceiling = z3.Select(s.venue_fee_max, venue)
    fee = [
        (
            z3.Or(e["buyer_fee_rate_ppm"] > ceiling, e["seller_fee_rate_ppm"] > ceiling),
            Reason.FEE_RATE_OUT_OF_RANGE,
        )
    ]
    grants = [
        (z3.Not(grant_allows(s, who, venue, held, after)), Reason.VENUE_NOT_AUTHORISED)
        for who, held, after, _ in legs
    ]
    return fee, grants


def _venue_limit(
    s: Ledger, e: dict[str, Any], legs: tuple[tuple[Any, Any, Any, Any], ...], added: Any
) -> Any:
    """Return whether the trade takes an admitted venue past a limit (SK-VENUE-4)."""
    venue, instrument = e["principal"], e["instrument"]
    open_lots = z3.Select(z3.Select(s.venue_open_lots, venue), instrument) + added
    notional_max = z3.Select(s.venue_notional_max, venue)
    multiplier = z3.Select(s.multiplier, instrument)
    grown = [
        z3.And(
            _abs(after) > _abs(held),
            s.mul(_abs(after), e["price_ticks"], multiplier) > notional_max,
        )
        for _, held, after, _ in legs
    ]
    return z3.And(
        z3.Not(z3.Select(s.venue_house, venue)),
        z3.Or(z3.And(added > 0, open_lots > z3.Select(s.venue_oi_max, venue)), *grown),
    )


def _abs(value: Any) -> Any:
    return z3.If(value >= 0, value, -value)


def _count_after(s: Ledger, account: Any, before: Any, after: Any) -> Any:
    count = z3.Select(s.position_count, account)
    return count + z3.If(after != 0, 1, 0) - z3.If(before != 0, 1, 0)


def _trade_leg_guards(  # noqa: PLR0913, PLR0917 (both legs and what they are checked against)
    rules: RuleSet,
    s: Ledger,
    instrument: Any,
    reference: Any,
    legs: tuple[tuple[Any, Any, Any, Any], ...],
    c: Consult,
    limit: Any,
) -> list[tuple[Any, Reason]]:
    """Return the position-limit, funds, venue-limit and margin guards of both legs, in order."""
    count_max = rules.positions_per_account_max
    return [
        *[
            (
                z3.And(held == 0, z3.Select(s.position_count, who) >= count_max),
                Reason.POSITION_COUNT_EXCEEDED,
            )
            for who, held, _, _ in legs
        ],
        *[
            (_abs(after) > rules.position_lots_max, Reason.POSITION_TOO_LARGE)
            for _, _, after, _ in legs
        ],
        *[(cash < 0, Reason.INSUFFICIENT_FUNDS) for _, _, _, cash in legs],
        (limit, Reason.VENUE_LIMIT_EXCEEDED),
        *[
            (
                z3.Not(c.trade_margin_ok(who, cash, instrument, after, reference)),
                Reason.MARGIN_INSUFFICIENT,
            )
            for who, _, after, cash in legs
        ],
    ]


def move_positions(
    s: Ledger, post: Ledger, instrument: Any, changes: list[tuple[Any, Any, Any]]
) -> Ledger:
    """Return ``post`` with positions set and open interest moved by the change in longs.

    ``changes`` lists (account, position before, position after), read from the pre-state.
    """
    row = z3.Select(s.positions, instrument)
    longs: Any = z3.IntVal(0)
    for account, before, after in changes:
        row = z3.Store(row, account, after)
        longs += z3.If(after > 0, after, 0) - z3.If(before > 0, before, 0)
    open_interest = z3.Select(s.open_interest, instrument) + longs
    return attrs.evolve(
        post,
        positions=z3.Store(s.positions, instrument, row),
        open_interest=z3.Store(s.open_interest, instrument, open_interest),
    )


def _longs_added(legs: tuple[tuple[Any, Any, Any, Any], ...]) -> Any:
    """Return the change in long lots of the legs: the trade's open interest (SK-VENUE-4)."""
    added: Any = z3.IntVal(0)
    for _, before, after, _ in legs:
        added += z3.If(after > 0, after, 0) - z3.If(before > 0, before, 0)
    return added


def _trade_guards(
    rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult, reference: Any
) -> tuple[list[tuple[Any, Any]], Any]:
    """Return the trade's guards in precedence order and its open-interest addition."""
    legs = _trade_legs(s, e)
    fee, grants = _venue_guards(s, e, legs)
    added = _longs_added(legs)
    status = z3.Select(s.venue_status, e["principal"])
    return [
        (status == z3.StringVal(""), Reason.PRINCIPAL_NOT_MATCHER),
        (z3.Select(s.trades, e["trade_id"]), Reason.TRADE_EXISTS),
        (status != ACTIVE, Reason.VENUE_SUSPENDED),
        *_trade_range_guards(rules, e),
        *fee,
        *_trade_party_guards(s, e),
        *grants,
        *_trade_market_guards(s, e, c),
        *_trade_leg_guards(
            rules, s, e["instrument"], reference, legs, c, _venue_limit(s, e, legs, added)
        ),
    ], added


def _trade_legs(s: Ledger, e: dict[str, Any]) -> tuple[tuple[Any, Any, Any, Any], ...]:
    """Return (account, position before, after, cash after settlement and fee) of both legs."""
    instrument, buyer, seller, quantity = (
        e["instrument"],
        e["buyer"],
        e["seller"],
        e["quantity_lots"],
    )
    asset = z3.Select(s.settles_in, instrument)
    f = trade_figures(s, e)
    held_b, held_s = s.pos(instrument, buyer), s.pos(instrument, seller)
    cash_b = s.bal(buyer, asset) - f.settlement - f.buyer_fee
    cash_s = s.bal(seller, asset) + f.settlement - f.seller_fee
    return (buyer, held_b, held_b + quantity, cash_b), (seller, held_s, held_s - quantity, cash_s)


def _trade_cash(s: Ledger, e: dict[str, Any], f: TradeFigures) -> tuple[Ledger, Any, Any]:
    """Return the ledger with both legs' cash, the venue's fee pool and the residue written.

    The fee pool is credited to the venue's fee account after the legs are written, so a fee
    account that is a party of its own venue's trade gets both (SK-VENUE-3).
    """
    asset = z3.Select(s.settles_in, e["instrument"])
    fee_account = z3.Select(s.venue_fee_account, e["principal"])
    (buyer, _, _, cash_b), (seller, _, _, cash_s) = _trade_legs(s, e)
    pool = f.buyer_pool + f.seller_pool
    post = write_balances(s, [(buyer, asset, cash_b), (seller, asset, cash_s)])
    post = post.credit(fee_account, asset, pool)
    dust = (f.buyer_fee - f.buyer_pool) + (f.seller_fee - f.seller_pool)
    return post.credit(RESIDUE, asset, dust), fee_account, pool


def trade(
    rules: RuleSet,
    s: Ledger,
    e: dict[str, Any],
    c: Consult,
    omit: frozenset[Reason] = frozenset(),
) -> ModelStep:
    """SK-TRADE and SK-VENUE: novate both legs, settle, charge both fees to the venue's account.

    ``omit`` drops guards by reason: only the planted faults use it (SK-PROOF-6).
    """
    instrument, venue = e["instrument"], e["principal"]
    asset = z3.Select(s.settles_in, instrument)
    f = trade_figures(s, e)
    guards, added = _trade_guards(rules, s, e, c, f.reference)
    accepted, reason = cascade(guards, omit)
    post, fee_account, pool = _trade_cash(s, e, f)
    legs = _trade_legs(s, e)
    post = move_positions(s, post, instrument, [(who, held, after) for who, held, after, _ in legs])
    counts = s.position_count
    for who, held, after, _ in legs:
        counts = z3.Store(counts, who, _count_after(s, who, held, after))
    lots = z3.Select(s.venue_open_lots, venue)
    counted = z3.If(
        z3.Or(z3.Select(s.venue_house, venue), added == 0),
        lots,
        z3.Store(
            lots,
            instrument,
            z3.If(z3.Select(lots, instrument) + added > 0, z3.Select(lots, instrument) + added, 0),
        ),
    )
    post = attrs.evolve(
        post,
        position_count=counts,
        trades=z3.Store(s.trades, e["trade_id"], z3.BoolVal(True)),
        reference=z3.Store(s.reference, instrument, f.reference),
        venue_open_lots=z3.Store(s.venue_open_lots, venue, counted),
    )
    # The margin check passed on each leg before its venue's fee credit (more cash only).
    checks = tuple(
        c.trade_margin_ok(
            who,
            post.bal(who, asset) - z3.If(who == fee_account, pool, 0),
            instrument,
            post.pos(instrument, who),
            f.reference,
        )
        for who, _, _, _ in legs
    )
    return ModelStep(
        accepted,
        reason,
        post,
        writes=tuple((who, asset) for who in (legs[0][0], legs[1][0], fee_account, RESIDUE)),
        position_writes=((instrument, legs[0][0]), (instrument, legs[1][0])),
        checks=checks,
    )


# A step the model does not cover (a mark in which a holder is short of cash). The
# differential checks skip it; the theorems exclude it (SK-PROOF-10).
OUTSIDE: Final = z3.StringVal("outside_model")


def _mark(s: Ledger, instrument: Any) -> Any:
    """Return the mark as ``compute_mark_ticks`` does: index shifted by the premium (SK-MARK-1)."""
    index = z3.Select(s.index, z3.Select(s.underlying, instrument))
    mark = index + s.mul(index, z3.Select(s.premium, instrument)) / PPM
    return z3.If(mark >= 1, mark, 1)


def variation_margin(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-VM: every holder is paid position x (mark - reference) x multiplier, at once."""
    instrument = e["instrument"]
    oracle: OracleConsult = c  # type: ignore[assignment]
    underlying = z3.Select(s.underlying, instrument)
    asset = z3.Select(s.settles_in, instrument)
    mark = _mark(s, instrument)
    per_lot = s.mul(mark - z3.Select(s.reference, instrument), z3.Select(s.multiplier, instrument))

    def flow(account: Any) -> Any:
        return s.mul(s.pos(instrument, account), per_lot)

    accepted, reason = cascade(
        [
            (e["principal"] != z3.StringVal(rules.roles.operator), Reason.PRINCIPAL_NOT_OPERATOR),
            (z3.Not(z3.Select(s.listed, instrument)), Reason.INSTRUMENT_UNKNOWN),
            (z3.Select(s.settled, instrument), Reason.INSTRUMENT_ALREADY_SETTLED),
            (z3.Not(z3.Select(s.linear, instrument)), Reason.INSTRUMENT_NOT_MARKED_TO_MARKET),
            (z3.Not(z3.Select(s.has_price, underlying)), Reason.PRICE_UNAVAILABLE),
            (
                z3.Not(oracle.admits(underlying, "variation_margin")),
                Reason.ORACLE_NOT_ADMISSIBLE,
            ),
            # [SK-VM-3] A holder that cannot pay with all it holds stops the mark (consulted);
            # [SK-DEBT-1] one merely short of cash becomes a debtor: outside the model.
            (z3.Not(oracle.vm_solvent(instrument)), Reason.VARIATION_MARGIN_SHORTFALL),
            (z3.Not(s.every_account(lambda a: s.bal(a, asset) + flow(a) >= 0)), OUTSIDE),
        ]
    )
    account = z3.String("vm.account")
    row = z3.Select(s.balance, account)
    paid = z3.Lambda([account], z3.Store(row, asset, z3.Select(row, asset) + flow(account)))
    post = attrs.evolve(
        s,
        balance=paid,
        reference=z3.Store(s.reference, instrument, mark),
    )
    return ModelStep(accepted, reason, post, writes=(), per_lot=(asset, instrument, per_lot))


def _funding_interval(rules: RuleSet, underlying: Any) -> Any:
    interval: Any = z3.IntVal(0)
    for entry in rules.underlyings:
        interval = z3.If(
            underlying == z3.StringVal(entry.symbol), entry.funding_interval_ms, interval
        )
    return interval


def _funding_clamp(rules: RuleSet, underlying: Any) -> Any:
    clamp: Any = z3.IntVal(0)
    for entry in rules.underlyings:
        clamp = z3.If(underlying == z3.StringVal(entry.symbol), entry.funding_clamp_ppm, clamp)
    return clamp


def funding(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-FUNDING: the whole intervals due shift the reference at once; no cash moves now.

    The time-averaged premium is consulted (``funding_premium``); the model clamps it per
    interval, counts the intervals due (at most ``funding_intervals_max``) and moves the
    schedule by them.
    """
    instrument = e["instrument"]
    oracle: OracleConsult = c  # type: ignore[assignment]
    underlying = z3.Select(s.underlying, instrument)
    reference = z3.Select(s.reference, instrument)
    clamp = _funding_clamp(rules, underlying)
    interval = _funding_interval(rules, underlying)
    last = z3.Select(s.last_funding, instrument)
    elapsed = (s.clock - last) / interval
    due = z3.If(
        elapsed > rules.funding_intervals_max,
        rules.funding_intervals_max,
        z3.If(elapsed < 0, 0, elapsed),
    )
    premium = z3.Select(s.funding_premium, instrument)
    rate = z3.If(premium > clamp, clamp, z3.If(premium < -clamp, -clamp, premium))
    per_interval = s.mul(z3.Select(s.index, underlying), z3.If(rate >= 0, rate, -rate)) / PPM
    magnitude = s.mul(per_interval, due)
    shifted = reference + z3.If(rate >= 0, magnitude, -magnitude)
    bounded = z3.If(
        shifted < 1, 1, z3.If(shifted > rules.price_ticks_max, rules.price_ticks_max, shifted)
    )
    accepted, reason = cascade(
        [
            (e["principal"] != z3.StringVal(rules.roles.operator), Reason.PRINCIPAL_NOT_OPERATOR),
            (z3.Not(z3.Select(s.listed, instrument)), Reason.INSTRUMENT_UNKNOWN),
            (z3.Not(z3.Select(s.perpetual, instrument)), Reason.INSTRUMENT_NOT_PERPETUAL),
            (z3.Not(z3.Select(s.has_price, underlying)), Reason.PRICE_UNAVAILABLE),
            (z3.Not(oracle.admits(underlying, "funding")), Reason.ORACLE_NOT_ADMISSIBLE),
            (
                s.clock
                < z3.Select(s.last_funding, instrument) + _funding_interval(rules, underlying),
                Reason.FUNDING_TOO_EARLY,
            ),
        ]
    )
    post = attrs.evolve(
        s,
        reference=z3.Store(s.reference, instrument, z3.If(reference == 0, 0, bounded)),
        last_funding=z3.Store(s.last_funding, instrument, last + s.mul(due, interval)),
    )
    return ModelStep(accepted, reason, post, writes=())


def band_move(rules: RuleSet, underlying: Any, accepted: Any, median: Any) -> Any:
    """Return ``compute_band_move`` with the underlying's band: one linear branch per band."""
    moved: Any = median
    for entry in rules.underlyings:
        band = entry.band_ppm
        beyond = z3.If(median >= accepted, median - accepted, accepted - median) * PPM > (
            accepted * band
        )
        limit = accepted * band / PPM
        step = z3.If(median > accepted, accepted + limit, accepted - limit)
        branch = z3.If(beyond, z3.If(step >= 1, step, 1), median)
        moved = z3.If(underlying == z3.StringVal(entry.symbol), branch, moved)
    return moved


def oracle_price(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-ORACLE: store the report; a quorum moves the clock; the index moves within the band."""
    underlying, source = e["underlying"], e["principal"]
    price, timestamp = e["price_ticks"], e["timestamp_ms"]
    oracle: QuorumConsult = c  # type: ignore[assignment]
    candidate, median, quorum_ms = oracle.quorum(underlying, source, price, timestamp)
    known = z3.Or(*[underlying == z3.StringVal(u.symbol) for u in rules.underlyings])
    last = z3.Select(z3.Select(s.last_report, underlying), source)
    accepted, reason = cascade(
        [
            (z3.Not(_one_of(source, rules.roles.oracles)), Reason.PRINCIPAL_NOT_ORACLE),
            (price < 0, Reason.PRICE_NOT_POSITIVE),
            (price > rules.price_ticks_max, Reason.PRICE_TOO_LARGE),
            (z3.Or(timestamp < 0, timestamp > 2**63 - 1), Reason.TIMESTAMP_OUT_OF_RANGE),
            (z3.Not(known), Reason.UNDERLYING_UNKNOWN),
            (z3.And(last >= 0, timestamp <= last), Reason.ORACLE_TIMESTAMP_NOT_NEWER),
        ]
    )
    index = z3.Select(s.index, underlying)
    priced = z3.Select(s.has_price, underlying)
    new_index = z3.If(priced, band_move(rules, underlying, index, median), median)
    row = z3.Store(z3.Select(s.last_report, underlying), source, timestamp)
    post = attrs.evolve(
        s,
        last_report=z3.Store(s.last_report, underlying, row),
        index=z3.If(candidate, z3.Store(s.index, underlying, new_index), s.index),
        has_price=z3.If(
            candidate, z3.Store(s.has_price, underlying, z3.BoolVal(True)), s.has_price
        ),
        clock=z3.If(quorum_ms > s.clock, quorum_ms, s.clock),
    )
    return ModelStep(
        accepted, reason, post, writes=(), assumes=(z3.Implies(candidate, median >= 1),)
    )


def oracle_volatility(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-VOL: an oracle's implied volatility, newer than the accepted one; no clock move."""
    del c
    underlying, volatility, timestamp = e["underlying"], e["volatility_ppm"], e["timestamp_ms"]
    known = z3.Or(*[underlying == z3.StringVal(u.symbol) for u in rules.underlyings])
    accepted, reason = cascade(
        [
            (z3.Not(_one_of(e["principal"], rules.roles.oracles)), Reason.PRINCIPAL_NOT_ORACLE),
            (z3.Or(volatility < 0, volatility > 10 * PPM), Reason.VOLATILITY_OUT_OF_RANGE),
            (z3.Or(timestamp < 0, timestamp > 2**63 - 1), Reason.TIMESTAMP_OUT_OF_RANGE),
            (z3.Not(known), Reason.UNDERLYING_UNKNOWN),
            (
                z3.And(
                    z3.Select(s.has_volatility, underlying),
                    timestamp <= z3.Select(s.volatility_time, underlying),
                ),
                Reason.ORACLE_TIMESTAMP_NOT_NEWER,
            ),
        ]
    )
    post = attrs.evolve(
        s,
        volatility=z3.Store(s.volatility, underlying, volatility),
        volatility_time=z3.Store(s.volatility_time, underlying, timestamp),
        has_volatility=z3.Store(s.has_volatility, underlying, z3.BoolVal(True)),
    )
    return ModelStep(accepted, reason, post, writes=())


def tick(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-TICK: the sequencer moves the clock strictly forward; nothing else changes."""
    del c
    timestamp = e["timestamp_ms"]
    accepted, reason = cascade(
        [
            (e["principal"] != z3.StringVal(rules.roles.sequencer), Reason.PRINCIPAL_NOT_SEQUENCER),
            (z3.Or(timestamp < 0, timestamp > 2**63 - 1), Reason.TIMESTAMP_OUT_OF_RANGE),
            (timestamp <= s.clock, Reason.TICK_NOT_NEWER),
        ]
    )
    return ModelStep(accepted, reason, attrs.evolve(s, clock=timestamp), writes=())


# Which of (expiry, strike, option type) each kind requires (SK-LIST-3).
_REQUIRED: Final = {
    "perpetual": (False, False, False),
    "future": (True, False, False),
    "option": (True, True, True),
}


def _spec_invalid(rules: RuleSet, s: Ledger, e: dict[str, Any]) -> Any:
    """Return whether the instrument's fields break SK-LIST-3 for its kind."""
    present = (e["expiry_ms?"], e["strike_ticks?"], e["option_type"] != z3.StringVal(""))
    mismatch = z3.Or(
        *[
            z3.And(
                e["kind"] == z3.StringVal(kind),
                z3.Or(*[p != n for p, n in zip(present, needs, strict=True)]),
            )
            for kind, needs in _REQUIRED.items()
        ]
    )
    return z3.Or(
        e["multiplier_minor"] < 1,
        e["multiplier_minor"] > rules.multiplier_minor_max,
        mismatch,
        z3.And(e["expiry_ms?"], e["expiry_ms"] <= s.clock),
        e["settlement_asset"] != z3.StringVal(rules.valuation_asset),
    )


def list_instrument(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-LIST: a new instrument, empty: reference 0, no positions, nothing open."""
    del c
    instrument, kind = e["instrument"], e["kind"]
    strike, expiry = e["strike_ticks"], e["expiry_ms"]
    accepted, reason = cascade(
        [
            (e["principal"] != z3.StringVal(rules.roles.operator), Reason.PRINCIPAL_NOT_OPERATOR),
            (z3.And(e["strike_ticks?"], strike < 1), Reason.PRICE_NOT_POSITIVE),
            (z3.And(e["strike_ticks?"], strike > rules.price_ticks_max), Reason.PRICE_TOO_LARGE),
            (
                z3.And(e["expiry_ms?"], z3.Or(expiry < 0, expiry > 2**63 - 1)),
                Reason.TIMESTAMP_OUT_OF_RANGE,
            ),
            (_spec_invalid(rules, s, e), Reason.INSTRUMENT_SPEC_INVALID),
            (z3.Select(s.listed, instrument), Reason.INSTRUMENT_EXISTS),
            (z3.Not(_known_asset(rules, e["settlement_asset"])), Reason.ASSET_UNKNOWN),
            (
                z3.Not(_one_of(e["underlying"], tuple(u.symbol for u in rules.underlyings))),
                Reason.UNDERLYING_UNKNOWN,
            ),
            (s.instrument_count >= rules.instruments_max, Reason.INSTRUMENT_LIMIT_REACHED),
        ]
    )
    store = {
        "listed": z3.BoolVal(True),
        "linear": kind != z3.StringVal("option"),
        "perpetual": kind == z3.StringVal("perpetual"),
        "settles_in": e["settlement_asset"],
        "underlying": e["underlying"],
        "multiplier": e["multiplier_minor"],
        "reference": z3.IntVal(0),
        "expiry": z3.If(e["expiry_ms?"], expiry, NO_EXPIRY),
        "settled": z3.BoolVal(False),
        "premium": z3.IntVal(0),
        "last_funding": s.clock,
        "open_interest": z3.IntVal(0),
    }
    post = attrs.evolve(
        s,
        **{name: z3.Store(getattr(s, name), instrument, value) for name, value in store.items()},
        instrument_count=s.instrument_count + 1,
    )
    return ModelStep(accepted, reason, post, writes=())


Model = Callable[[RuleSet, Ledger, dict[str, Any], Consult], ModelStep]
