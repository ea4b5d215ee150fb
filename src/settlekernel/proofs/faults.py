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

from settlekernel import kernel
from settlekernel.collateral import process_transfer
from settlekernel.commitment import account_key, touch
from settlekernel.events import Liquidate, Trade, Transfer
from settlekernel.ledger import with_balance
from settlekernel.liquidation import process_liquidate
from settlekernel.model import RuleSet, State, replace_state
from settlekernel.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.proofs import transitions
from settlekernel.proofs.symbolic import Ledger
from settlekernel.proofs.transitions import FEES, INSURANCE, Consult, ModelStep
from settlekernel.reasons import Reason
from settlekernel.trading import process_trade
from settlekernel.units import FEE_ACCOUNT, INSURANCE_ACCOUNT


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


def _trade_fee_not_credited_model(
    rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult
) -> ModelStep:
    step = transitions.trade(rules, s, e, c)
    asset = z3.Select(s.settles_in, e["instrument"])
    post = transitions.write_balances(step.post, [(FEES, asset, s.bal(FEES, asset))])
    return attrs.evolve(step, post=post)


def _trade_fee_not_credited(state: State, event: Trade) -> Outcome:
    """The fault: both fees are charged, the fee pool's credit is dropped."""
    outcome = process_trade(state, event)
    if not isinstance(outcome, Accepted):
        return outcome
    after = outcome.state
    return Accepted(
        replace_state(
            after,
            accounts=after.accounts.set(FEE_ACCOUNT, state.accounts[FEE_ACCOUNT]),
            commitment=touch(after.commitment, account_key(FEE_ACCOUNT)),
        ),
        outcome.postings,
    )


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


def _liquidation_skips_fund_model(
    rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult
) -> ModelStep:
    step = transitions.liquidate(rules, s, e, c)
    asset = z3.StringVal(rules.valuation_asset)
    post = transitions.write_balances(step.post, [(INSURANCE, asset, s.bal(INSURANCE, asset))])
    return attrs.evolve(step, post=post)


def _liquidation_skips_fund(state: State, event: Liquidate) -> Outcome:
    """The fault: the account pays its penalty, the insurance fund is never credited."""
    outcome = process_liquidate(state, event)
    if not isinstance(outcome, Accepted):
        return outcome
    after = outcome.state
    return Accepted(
        replace_state(
            after,
            accounts=after.accounts.set(INSURANCE_ACCOUNT, state.accounts[INSURANCE_ACCOUNT]),
            commitment=touch(after.commitment, account_key(INSURANCE_ACCOUNT)),
        ),
        outcome.postings,
    )


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
            models={Trade: _trade_fee_not_credited_model},
            code=functools.partial(patched, Trade, _trade_fee_not_credited),
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
            models={Liquidate: _liquidation_skips_fund_model},
            code=functools.partial(patched, Liquidate, _liquidation_skips_fund),
        ),
        Fault(
            name="maintenance-above-initial",
            description="A rule set whose initial margin multiplier is below 1 (80 %).",
            caught_by="rules.initial-covers-maintenance[BTC]",
            rules=_maintenance_above_initial,
        ),
    )
}
