"""Standing instructions: top-ups the kernel executes (spec/30-transitions.md#instructions).

An account owner registers, for one account, a top-up from another account of its own
(SK-INSTR-1): when the account's equity falls below ``threshold_ppm`` of its maintenance
margin, the kernel moves valuation-asset cash from the source into it, at most
``amount_max_minor`` per ``interval_ms`` of the kernel clock, and never more than the source
can release while keeping its own initial margin (SK-INSTR-3). Anyone may have it executed
(``RunInstructions``); after each variation margin the kernel executes those of the
instrument's holders itself, a bounded number per event (SK-INSTR-4); and a liquidation or
backstop is refused while the account's top-up could restore its maintenance (SK-INSTR-5).
Every execution is one ``top_up`` posting between two accounts of one owner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from settlekernel.core.arith import ceil_div
from settlekernel.core.events import CancelInstruction, RegisterTopUp, RunInstructions
from settlekernel.core.guards import check_ranges
from settlekernel.core.model import Account, State, TopUp, replace_state
from settlekernel.core.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, instruction_key, touch
from settlekernel.core.units import PPM
from settlekernel.kernel.ledger import with_balance
from settlekernel.margin.accounts import account_margin, check_margin_admissible

if TYPE_CHECKING:
    from settlekernel.core.reports import MarginReport

# [SK-INSTR-1] A top-up's threshold, as a multiple of maintenance: from 1x to 100x.
THRESHOLD_MIN_PPM = PPM
THRESHOLD_MAX_PPM = 100 * PPM


@attrs.frozen
class TopUpPlan:
    """What an account's top-up would move right now, and why nothing if nothing (SK-INSTR-3).

    ``amount_minor`` is the least of ``need_minor`` (what restores equity to the threshold),
    ``cap_left_minor`` (what the cap leaves in the interval) and ``release_minor`` (what the
    source can give up and keep its initial margin); ``why`` is empty when it is positive.
    """

    amount_minor: int
    need_minor: int
    cap_left_minor: int
    release_minor: int
    why: str


def _nothing(why: str) -> TopUpPlan:
    return TopUpPlan(0, 0, 0, 0, why)


def cap_left_minor(top_up: TopUp, clock_ms: int) -> int:
    """Return what the cap still allows at ``clock_ms``: a new interval starts afresh."""
    if clock_ms >= top_up.window_start_ms + top_up.interval_ms:
        return top_up.amount_max_minor
    return max(top_up.amount_max_minor - top_up.used_minor, 0)


def release_minor(state: State, source: Account, asset: str) -> int:
    """Return the most cash ``source`` can give up and still meet its initial margin.

    The valuation asset counts once for once in equity (no price, no haircut, SK-RULES-3)
    and no requirement reads it, so the source can give up its equity above initial margin,
    and no more than its balance.
    """
    report = account_margin(state, source)
    return max(min(source.balance(asset), report.equity_minor - report.initial_minor), 0)


def top_up_need_minor(report: MarginReport, threshold_ppm: int) -> int:
    """Return what restores equity to ``threshold_ppm`` of maintenance, rounded up; 0 if met."""
    target_minor = ceil_div(report.maintenance_minor * threshold_ppm, PPM)
    return max(target_minor - report.equity_minor, 0)


def plan_top_up(state: State, account_id: str) -> TopUpPlan:
    """Return what the account's registered top-up would move now (SK-INSTR-3).

    The one function execution and the liquidation refusal (SK-INSTR-5) both use;
    INV-TOPUP-BEFORE-LIQUIDATION recomputes it apart, with the batch margin engine.
    """
    top_up = state.instructions.get(account_id)
    if top_up is None:
        return _nothing(f"account {account_id} has no standing instruction")
    account, source = state.accounts[account_id], state.accounts[top_up.source]
    if check_margin_admissible(state, account, source) is not None:
        return _nothing("the oracle does not admit the margin checks of the top-up")
    report = account_margin(state, account)
    if report.equity_minor * PPM >= report.maintenance_minor * top_up.threshold_ppm:
        return _nothing(
            f"account {account_id}: equity {report.equity_minor} is not below "
            f"{top_up.threshold_ppm} ppm of maintenance {report.maintenance_minor}"
        )
    need = top_up_need_minor(report, top_up.threshold_ppm)
    cap_left = cap_left_minor(top_up, state.clock_ms)
    release = release_minor(state, source, top_up.asset)
    amount = min(need, cap_left, release)
    why = (
        ""
        if amount > 0
        else (
            f"account {account_id}: needs {need}, the cap leaves {cap_left} in the interval and "
            f"source {source.id} can release {release} keeping its initial margin"
        )
    )
    return TopUpPlan(amount, need, cap_left, release, why)


def top_up_restores(state: State, account: Account, report: MarginReport) -> TopUpPlan | None:
    """Return the plan of a top-up that would restore the account's maintenance now, or None."""
    if account.id not in state.instructions or not report.is_liquidatable:
        return None
    found = plan_top_up(state, account.id)
    if found.amount_minor <= 0:
        return None
    if report.equity_minor + found.amount_minor < report.maintenance_minor:
        return None
    return found


def check_top_up_first(state: State, account: Account, report: MarginReport) -> Rejected | None:
    """Reject a liquidation or backstop while a registered top-up could restore maintenance.

    [SK-INSTR-5] The liquidator submits ``RunInstructions`` first.
    """
    found = top_up_restores(state, account, report)
    if found is None:
        return None
    return Rejected(
        Reason.TOP_UP_AVAILABLE,
        f"account {account.id}: its standing top-up can move {found.amount_minor}, which "
        f"restores equity {report.equity_minor} to maintenance {report.maintenance_minor}; "
        "run its instructions first",
    )


def execute_top_up(state: State, account_id: str, found: TopUpPlan) -> tuple[State, Posting]:
    """Return the state after moving ``found.amount_minor`` as planned, and its posting."""
    top_up = state.instructions[account_id]
    amount = found.amount_minor
    source, target = state.accounts[top_up.source], state.accounts[account_id]
    debited = with_balance(source, top_up.asset, source.balance(top_up.asset) - amount)
    credited = with_balance(target, top_up.asset, target.balance(top_up.asset) + amount)
    fresh = state.clock_ms >= top_up.window_start_ms + top_up.interval_ms
    counted = attrs.evolve(
        top_up,
        used_minor=amount + (0 if fresh else top_up.used_minor),
        window_start_ms=state.clock_ms if fresh else top_up.window_start_ms,
    )
    with state.accounts.mutate() as accounts:
        accounts[source.id] = debited
        accounts[target.id] = credited
        new_accounts = accounts.finish()
    after = replace_state(
        state,
        accounts=new_accounts,
        instructions=state.instructions.set(account_id, counted),
        commitment=touch(
            state.commitment,
            account_key(source.id),
            account_key(target.id),
            instruction_key(account_id),
        ),
    )
    return after, Posting(source.id, target.id, top_up.asset, amount, PostingCode.TOP_UP)


def process_register_top_up(state: State, event: RegisterTopUp) -> Outcome:
    """Register, or replace, the standing top-up of an account (SK-INSTR-1)."""
    # Verify the amounts are within bounds.
    rejection = check_ranges(event, state.rules)
    if rejection is not None:
        return rejection
    # Verify the top-up moves cash between two different accounts, within its bounds.
    if event.account == event.source:
        return Rejected(
            Reason.TRANSFER_TO_SAME_ACCOUNT, f"account and source are both {event.account}"
        )
    if not THRESHOLD_MIN_PPM <= event.threshold_ppm <= THRESHOLD_MAX_PPM:
        return Rejected(
            Reason.INSTRUCTION_INVALID,
            f"register_top_up.threshold_ppm: {event.threshold_ppm} is outside "
            f"[{THRESHOLD_MIN_PPM}, {THRESHOLD_MAX_PPM}]",
        )
    if event.asset != state.rules.valuation_asset:
        return Rejected(
            Reason.INSTRUCTION_INVALID,
            f"register_top_up.asset: {event.asset} is not the valuation asset "
            f"{state.rules.valuation_asset}",
        )
    # Verify both accounts exist, the principal owns the account and the source is its too.
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    source = state.accounts.get(event.source)
    if source is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.source} does not exist")
    if event.principal != account.owner:
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"principal {event.principal} does not own account {account.id}",
        )
    if source.owner != account.owner:
        return Rejected(
            Reason.TRANSFER_OWNERS_DIFFER,
            f"account {source.id} is owned by {source.owner}, not {account.owner}",
        )
    # From here the event must succeed. A replacement keeps the interval's count (SK-INSTR-2).
    known = state.instructions.get(account.id)
    top_up = TopUp(
        source.id,
        event.asset,
        event.threshold_ppm,
        event.amount_max_minor,
        event.interval_ms,
        0 if known is None else known.used_minor,
        state.clock_ms if known is None else known.window_start_ms,
    )
    return Accepted(
        replace_state(
            state,
            instructions=state.instructions.set(account.id, top_up),
            commitment=touch(state.commitment, instruction_key(account.id)),
        ),
        (),
    )


def process_cancel_instruction(state: State, event: CancelInstruction) -> Outcome:
    """Cancel the standing instruction of an account (SK-INSTR-1)."""
    # Verify the account exists and has an instruction, and the principal owns it.
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    if account.id not in state.instructions:
        return Rejected(
            Reason.INSTRUCTION_UNKNOWN, f"account {account.id} has no standing instruction"
        )
    if event.principal != account.owner:
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"principal {event.principal} does not own account {account.id}",
        )
    # From here the event must succeed.
    return Accepted(
        replace_state(
            state,
            instructions=state.instructions.delete(account.id),
            commitment=touch(state.commitment, instruction_key(account.id)),
        ),
        (),
    )


def process_run_instructions(state: State, event: RunInstructions) -> Outcome:
    """Execute an account's standing top-up, if it has something to do (SK-INSTR-3)."""
    # Verify the account exists and has an instruction; anyone may run it.
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    top_up = state.instructions.get(account.id)
    if top_up is None:
        return Rejected(
            Reason.INSTRUCTION_UNKNOWN, f"account {account.id} has no standing instruction"
        )
    # Verify the oracle admits both margin checks (SK-ORACLE-5).
    rejection = check_margin_admissible(state, account, state.accounts[top_up.source])
    if rejection is not None:
        return rejection
    # Verify the top-up has something to move.
    found = plan_top_up(state, account.id)
    if found.amount_minor <= 0:
        return Rejected(Reason.NOTHING_TO_TOP_UP, found.why)
    # From here the event must succeed.
    after, posting = execute_top_up(state, account.id, found)
    return Accepted(after, (posting,))


def run_after_mark(outcome: Accepted, instrument_id: str) -> Accepted:
    """Execute the top-ups of an instrument's holders after its mark (SK-INSTR-4).

    In account-id order, at most ``instructions_per_event_max`` executions; each one is
    planned on the state the previous one left, so none moves what another already moved.
    """
    state = outcome.state
    if not state.instructions:
        return outcome
    holders = state.holders.get(instrument_id)
    if not holders:
        return outcome
    budget = state.rules.instructions_per_event_max
    postings = list(outcome.postings)
    if len(state.instructions) <= len(holders):
        candidates = sorted(a for a in state.instructions if a in holders)
    else:
        candidates = sorted(a for a in holders if a in state.instructions)
    for account_id in candidates:
        if budget <= 0:
            break
        found = plan_top_up(state, account_id)
        if found.amount_minor <= 0:
            continue
        state, posting = execute_top_up(state, account_id, found)
        postings.append(posting)
        budget -= 1
    if len(postings) == len(outcome.postings):
        return outcome
    return Accepted(state, tuple(postings))
