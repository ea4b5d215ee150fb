"""The state transition function: ``genesis``, ``step``, ``apply_batch`` (spec/30-transitions.md).

``step`` is total and pure: for any state produced by ``genesis``/``step`` and any object
as the event, it returns ``Accepted`` or ``Rejected`` and never raises; it does no I/O,
reads no clock, draws no random numbers and mutates nothing it was given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from immutables import Map

from settlekernel.core.events import (
    AdmitVenue,
    ApplyRules,
    AuthorizeVenue,
    Backstop,
    CancelInstruction,
    CancelRulesChange,
    ChangeRules,
    Deposit,
    Expire,
    Funding,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    RegisterTopUp,
    RemoveVenue,
    RestrictVenue,
    ResumeVenue,
    RevokeVenue,
    RunInstructions,
    SuspendVenue,
    Tick,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.guards import check_shape
from settlekernel.core.model import EMPTY_BALANCES, EMPTY_POSITIONS, Account, Commitment, State
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import DIRTY_LEAVES_MAX, ZERO_LATTICE, account_key, fold, venue_key
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import SYSTEM_ACCOUNTS, SYSTEM_OWNER
from settlekernel.kernel.transitions.backstop import process_backstop
from settlekernel.kernel.transitions.clock import process_tick
from settlekernel.kernel.transitions.collateral import (
    process_deposit,
    process_fund_insurance,
    process_open_account,
    process_transfer,
    process_withdraw,
)
from settlekernel.kernel.transitions.debt import settle_debts
from settlekernel.kernel.transitions.expiry import process_expire
from settlekernel.kernel.transitions.funding import process_funding
from settlekernel.kernel.transitions.governance import (
    process_apply_rules,
    process_cancel_rules_change,
    process_change_rules,
)
from settlekernel.kernel.transitions.instructions import (
    process_cancel_instruction,
    process_register_top_up,
    process_run_instructions,
    run_after_mark,
)
from settlekernel.kernel.transitions.liquidation import process_liquidate
from settlekernel.kernel.transitions.market import (
    process_list_instrument,
    process_oracle_price,
    process_oracle_volatility,
)
from settlekernel.kernel.transitions.trading import process_trade
from settlekernel.kernel.transitions.variation import process_variation_margin
from settlekernel.kernel.transitions.venues import (
    house_venues,
    process_admit_venue,
    process_grant,
    process_venue_status,
)

_PROCESSORS: Final[dict[type, Callable[[State, Any], Outcome]]] = {
    OpenAccount: process_open_account,
    Deposit: process_deposit,
    Withdraw: process_withdraw,
    Transfer: process_transfer,
    ListInstrument: process_list_instrument,
    OraclePrice: process_oracle_price,
    OracleVolatility: process_oracle_volatility,
    Trade: process_trade,
    VariationMargin: process_variation_margin,
    Funding: process_funding,
    Expire: process_expire,
    FundInsurance: process_fund_insurance,
    Liquidate: process_liquidate,
    Backstop: process_backstop,
    Tick: process_tick,
    AdmitVenue: process_admit_venue,
    SuspendVenue: process_venue_status,
    ResumeVenue: process_venue_status,
    RemoveVenue: process_venue_status,
    AuthorizeVenue: process_grant,
    RestrictVenue: process_grant,
    RevokeVenue: process_grant,
    ChangeRules: process_change_rules,
    CancelRulesChange: process_cancel_rules_change,
    ApplyRules: process_apply_rules,
    RegisterTopUp: process_register_top_up,
    CancelInstruction: process_cancel_instruction,
    RunInstructions: process_run_instructions,
}


def genesis(rules: RuleSet) -> State:
    """Return the initial state under ``rules``: the system accounts and house venues only.

    Raises:
        ValueError: ``rules`` fail their checks (``RuleSet.problems``); a kernel never
            starts on rules it cannot honour.
    """
    problems = rules.problems()
    if problems:
        raise ValueError("unsound rule set: " + "; ".join(problems))
    accounts = Map(
        {
            account_id: Account(account_id, SYSTEM_OWNER, EMPTY_BALANCES, EMPTY_POSITIONS)
            for account_id in SYSTEM_ACCOUNTS
        }
    )
    venues = house_venues(rules)
    dirty = [account_key(a) for a in SYSTEM_ACCOUNTS] + [venue_key(v) for v in venues]
    state = State(
        rules=rules,
        accounts=accounts,
        instruments=Map(),
        prices=Map(),
        volatilities=Map(),
        reports=Map(),
        history=Map(),
        settlement_prices=Map(),
        trades=Map(),
        custody=Map(),
        clock_ms=0,
        socialized_loss=Map(),
        open_interest=Map(),
        holders=Map(),
        pending_expiries=Map(),
        debtors=Map(),
        claimants=Map(),
        venues=venues,
        grants=Map(),
        proposal=None,
        grace=None,
        instructions=Map(),
        commitment=Commitment(ZERO_LATTICE, Map(), Map(dict.fromkeys(dirty))),
        margins=Map(),
    )
    return fold(state)


def step(state: State, event: object) -> Outcome:
    """Apply one event to ``state``: ``Accepted(state', postings)`` or ``Rejected(reason)``."""
    processor = _PROCESSORS.get(type(event))
    if processor is None:
        return Rejected(
            Reason.EVENT_TYPE_UNKNOWN,
            f"{type(event).__name__} is not a settlekernel event",
        )
    rejection = check_shape(event)  # type: ignore[arg-type]  # dispatch proved the type
    if rejection is not None:
        return rejection
    outcome = processor(state, event)
    if type(outcome) is Accepted and type(event) is VariationMargin:
        # [SK-INSTR-4] The mark executes its holders' standing top-ups, a bounded number.
        outcome = run_after_mark(outcome, event.instrument)
    if type(outcome) is Accepted and (outcome.state.debtors or outcome.state.claimants):
        # [SK-DEBT-2] Debts are repaid and claims paid as soon as the cash is there.
        outcome = settle_debts(outcome)
    if type(outcome) is Accepted and len(outcome.state.commitment.dirty) > DIRTY_LEAVES_MAX:
        # Bound the cost of any later root (SK-ROOT-4).
        return Accepted(fold(outcome.state), outcome.postings)
    return outcome


def apply_batch(state: State, events: Iterable[object]) -> tuple[State, list[Outcome]]:
    """Apply events in order; return the final state (folded) and one outcome per event.

    Each ``Accepted`` outcome holds its post-state; states share structure, so keeping them
    costs O(leaves touched) each, but callers replaying long streams should pass bounded
    batches and drop the outcomes they do not need.
    """
    outcomes: list[Outcome] = []
    for event in events:
        outcome = step(state, event)
        if type(outcome) is Accepted:
            state = outcome.state
        outcomes.append(outcome)
    return fold(state), outcomes
