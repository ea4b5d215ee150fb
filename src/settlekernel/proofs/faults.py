"""Planted faults: the proofs must catch each, and its counterexample must replay (SK-PROOF-6).

A fault is a change to a transition, made twice and kept in step: once in the z3 model (so
the theorem over it fails) and once in the kernel's code, patched in only while a replay
runs (so the counterexample, replayed as events, shows the same violation on real code).
A rule-set fault changes only the rules. None of this is ever active in the kernel itself:
``settlekernel verify --fault NAME`` and the tests switch one on, for one replay.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Final

import attrs
import z3

from settlekernel.core.arith import compute_collateral_value_minor
from settlekernel.core.events import Expire, Liquidate, Trade, Transfer
from settlekernel.core.model import Account, State, replace_state
from settlekernel.core.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, touch
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import FEE_ACCOUNT, INSURANCE_ACCOUNT
from settlekernel.kernel import dispatch as kernel
from settlekernel.kernel.ledger import with_balance
from settlekernel.kernel.transitions import expiry as kernel_expiry
from settlekernel.kernel.transitions import liquidation as kernel_liquidation
from settlekernel.kernel.transitions import trading as kernel_trading
from settlekernel.kernel.transitions.collateral import process_transfer
from settlekernel.kernel.transitions.liquidation import process_liquidate
from settlekernel.kernel.transitions.trading import process_trade
from settlekernel.proofs import expiry_model as expiry
from settlekernel.proofs import liquidation_model as liquidation
from settlekernel.proofs import transitions
from settlekernel.proofs.symbolic import Ledger
from settlekernel.proofs.transitions import INSURANCE, Consult, ModelStep


@attrs.frozen
class Fault:
    """A planted fault: its model, its code, its rules, and the theorem that must catch it."""

    name: str
    description: str
    caught_by: str
    models: Mapping[type, transitions.Model] = attrs.field(factory=dict)
    rules: Callable[[RuleSet], RuleSet] | None = None
    code: Callable[[], AbstractContextManager[Any]] | None = None


@contextmanager
def patched(cls: type, processor: Callable[[State, Any], Outcome]) -> Iterator[None]:
    """Route ``cls`` events to ``processor`` inside the block (replays of a fault only)."""
    original = kernel._PROCESSORS[cls]  # noqa: SLF001 (the one dispatch table to patch)
    kernel._PROCESSORS[cls] = processor  # noqa: SLF001
    try:
        yield
    finally:
        kernel._PROCESSORS[cls] = original  # noqa: SLF001


def _model_dropping_credit(  # noqa: PLR0913, PLR0917 (the fault, then the model's own arguments)
    model: transitions.Model,
    account: Any,
    asset: Callable[[RuleSet, Ledger, dict[str, Any]], Any],
    rules: RuleSet,
    s: Ledger,
    e: dict[str, Any],
    c: Consult,
) -> ModelStep:
    """The modelled fault: ``model`` with ``account``'s balance of the asset left unchanged."""
    step = model(rules, s, e, c)
    held = asset(rules, s, e)
    post = transitions.write_balances(step.post, [(account, held, s.bal(account, held))])
    return attrs.evolve(step, post=post)


def _venue_fee_account(s: Ledger, e: dict[str, Any]) -> Any:
    """Return the fee account of the trade's venue: the fee pool's account (SK-VENUE-3)."""
    return z3.Select(s.venue_fee_account, e["principal"])


def _model_dropping_fee(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """The modelled fault: the trade model with the venue's fee account left unchanged."""
    step = transitions.trade(rules, s, e, c)
    account, asset = _venue_fee_account(s, e), _settlement_asset(rules, s, e)
    post = transitions.write_balances(step.post, [(account, asset, s.bal(account, asset))])
    return attrs.evolve(step, post=post)


@contextmanager
def _trade_ignores_grants() -> Iterator[None]:
    """The fault in the code: a trade skips SK-VENUE-2, so a revoked grant does not stop it."""
    name = "check_venue_grants"
    original = getattr(kernel_trading, name)

    def ignore(*args: object) -> None:
        del args

    setattr(kernel_trading, name, ignore)
    try:
        yield
    finally:
        setattr(kernel_trading, name, original)


def _code_dropping_credit(
    processor: Callable[[State, Any], Outcome], account_id: str, state: State, event: object
) -> Outcome:
    """The planted fault: ``processor``'s outcome with ``account_id`` restored as it was."""
    outcome = processor(state, event)
    if not isinstance(outcome, Accepted):
        return outcome
    after = outcome.state
    return Accepted(
        replace_state(
            after,
            accounts=after.accounts.set(account_id, state.accounts[account_id]),
            commitment=touch(after.commitment, account_key(account_id)),
        ),
        outcome.postings,
    )


def _settlement_asset(rules: RuleSet, s: Ledger, e: dict[str, Any]) -> Any:
    del rules
    return z3.Select(s.settles_in, e["instrument"])


def _valuation_asset(rules: RuleSet, s: Ledger, e: dict[str, Any]) -> Any:
    del s, e
    return z3.StringVal(rules.valuation_asset)


def _transfer_double_credit(state: State, event: Transfer) -> Outcome:
    """The fault: no same-account guard; the credit, computed from the balance before, wins."""
    if event.source_account != event.target_account:
        return process_transfer(state, event)
    account = state.accounts.get(event.source_account)
    if account is None or event.principal != account.owner or event.amount_minor < 1:
        return process_transfer(state, event)
    if event.asset not in state.rules.asset_by_symbol:
        return process_transfer(state, event)
    balance = account.balance(event.asset)
    if balance < event.amount_minor:
        return Rejected(Reason.INSUFFICIENT_FUNDS, f"account {account.id} cannot pay")
    credited = with_balance(account, event.asset, balance + event.amount_minor)
    return Accepted(
        replace_state(
            state,
            accounts=state.accounts.set(account.id, credited),
            commitment=touch(state.commitment, account_key(account.id)),
        ),
        (Posting(account.id, account.id, event.asset, event.amount_minor, PostingCode.TRANSFER),),
    )


@contextmanager
def _expiry_socialises_solvent() -> Iterator[None]:
    """The fault in the code: every payer's whole shortfall counts as a true deficit."""
    name = "true_deficit_minor"
    original = getattr(kernel_expiry, name)

    def shortfall(state: State, account: Account, instrument_id: str, owed: int) -> int:
        del instrument_id
        return max(owed - account.balance(state.rules.valuation_asset), 0)

    setattr(kernel_expiry, name, shortfall)
    try:
        yield
    finally:
        setattr(kernel_expiry, name, original)


@contextmanager
def _adl_takes_either_side() -> Iterator[None]:
    """The fault in the code: the ranking lists every other holder, the account's side first."""
    name = "ranking"
    original = getattr(kernel_liquidation, name)

    def either_side(state: State, instrument: Any, side: int, excluded: str) -> list[Any]:
        same = original(state, instrument, -side, excluded)
        return [*same, *original(state, instrument, side, excluded)]

    setattr(kernel_liquidation, name, either_side)
    try:
        yield
    finally:
        setattr(kernel_liquidation, name, original)


@contextmanager
def _sale_below_discount() -> Iterator[None]:
    """The fault in the code: a liquidation sells collateral at three times its discount."""
    name = "collateral_value_minor"
    original = getattr(kernel_liquidation, name)

    def cheap(state: State, asset: str, units_minor: int, *, sale: bool = False) -> int:
        if not sale:
            return int(original(state, asset, units_minor))
        rules = state.rules.asset_by_symbol[asset]
        underlying = rules.price_underlying
        if underlying is None or underlying not in state.prices:
            return 0
        return compute_collateral_value_minor(
            units_minor,
            state.prices[underlying].price_ticks,
            state.rules.underlying_by_symbol[underlying].tick_value_minor,
            rules.decimals,
            min(3 * rules.liquidation_discount_ppm, 1_000_000),
        )

    setattr(kernel_liquidation, name, cheap)
    try:
        yield
    finally:
        setattr(kernel_liquidation, name, original)


def _maintenance_above_initial(rules: RuleSet) -> RuleSet:
    """The fault: the first underlying's initial margin is 80 % of its maintenance."""
    first = attrs.evolve(rules.underlyings[0], im_multiplier_ppm=800_000)
    return attrs.evolve(rules, underlyings=(first, *rules.underlyings[1:]))


FAULTS: Final[dict[str, Fault]] = {
    fault.name: fault
    for fault in (
        Fault(
            name="fee-not-credited",
            description="A trade charges both fees but credits the fee pool with nothing.",
            caught_by="Trade.conservation",
            models={Trade: _model_dropping_fee},
            code=functools.partial(
                patched, Trade, functools.partial(_code_dropping_credit, process_trade, FEE_ACCOUNT)
            ),
        ),
        Fault(
            name="trade-ignores-revoked-grant",
            description=(
                "A trade skips the venue grants (SK-VENUE-2): a venue the owner revoked or "
                "restricted still opens positions on the account."
            ),
            caught_by="Trade.venue-authorised",
            models={
                Trade: functools.partial(
                    transitions.trade, omit=frozenset({Reason.VENUE_NOT_AUTHORISED})
                )
            },
            code=_trade_ignores_grants,
        ),
        Fault(
            name="self-transfer-double-credit",
            description=(
                "A transfer to the source account itself is accepted; the credit, computed "
                "from the balance before the debit, overwrites it."
            ),
            caught_by="Transfer.conservation",
            models={
                Transfer: functools.partial(
                    transitions.transfer, omit=frozenset({Reason.TRANSFER_TO_SAME_ACCOUNT})
                )
            },
            code=functools.partial(patched, Transfer, _transfer_double_credit),
        ),
        Fault(
            name="liquidation-skips-insurance",
            description=("A liquidation charges the penalty but never credits the insurance fund."),
            caught_by="Liquidate.conservation",
            models={
                Liquidate: functools.partial(
                    _model_dropping_credit, liquidation.liquidate, INSURANCE, _valuation_asset
                )
            },
            code=functools.partial(
                patched,
                Liquidate,
                functools.partial(_code_dropping_credit, process_liquidate, INSURANCE_ACCOUNT),
            ),
        ),
        Fault(
            name="expiry-socialises-solvent",
            description=(
                "An expiry socialises a payer's whole cash shortfall, even when its "
                "collateral covers it (exploit 4 of v3), instead of making it a debtor."
            ),
            caught_by="Expire.socialise-only-deficit",
            models={Expire: functools.partial(expiry.expire, lose_all=True)},
            code=_expiry_socialises_solvent,
        ),
        Fault(
            name="adl-takes-either-side",
            description=(
                "A bankruptcy's ADL ranks every other holder of the instrument, the "
                "account's own side first, and reduces them away from zero."
            ),
            caught_by="Liquidate.adl-fairness",
            models={Liquidate: functools.partial(liquidation.liquidate, either_side=True)},
            code=_adl_takes_either_side,
        ),
        Fault(
            name="sale-below-discount",
            description=(
                "A liquidation sells the account's collateral at three times the asset's "
                "liquidation discount: the buyer gains more than the rules state."
            ),
            caught_by="Liquidate.liquidator-gain",
            models={Liquidate: functools.partial(liquidation.liquidate, discount_scale=3)},
            code=_sale_below_discount,
        ),
        Fault(
            name="maintenance-above-initial",
            description="A rule set whose initial margin multiplier is below 1 (80 %).",
            caught_by="rules.initial-covers-maintenance[BTC]",
            rules=_maintenance_above_initial,
        ),
    )
}
