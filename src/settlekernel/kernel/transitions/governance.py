"""Governed rule changes: propose, cancel, apply, and the grace (spec/30-transitions.md#governance).

The rule set is fixed at genesis until the governor changes it (SK-GOV-3..6). A change is
proposed with a notice counted under the rules in force, checked against the state as it is
when proposed and again when applied, and applied by anyone once it is effective. An
account the change alone moves below maintenance gets a grace: until it ends, it cannot be
liquidated or backstopped while it still meets the maintenance of the rules before the
change. One change at a time: nothing is proposed while a change is pending or a grace open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import attrs
from immutables import Map

from settlekernel.core.events import ApplyRules, CancelRulesChange, ChangeRules
from settlekernel.core.guards import check_ranges
from settlekernel.core.model import Grace, RulesProposal, State, Venue
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import GRACE_ACCOUNT_PREFIX, GRACE_KEY, PROPOSAL_KEY, touch, venue_key
from settlekernel.core.rules_toml import parse_rules_toml
from settlekernel.core.units import RULES_TOML_CHARS_MAX, SYSTEM_OWNER
from settlekernel.margin.accounts import market_of, portfolio_of
from settlekernel.margin.impact import incompatibilities
from settlekernel.margin.single import compute_account_margin

# [SK-GOV-3] A proposal's TOML whose brackets nest deeper than this is refused unparsed.
RULES_TOML_NESTING_MAX: Final = 8

if TYPE_CHECKING:
    from settlekernel.core.model import Account
    from settlekernel.core.reports import MarginReport
    from settlekernel.core.rules import RuleSet


def _not_governor(state: State, principal: str) -> Rejected | None:
    if principal != state.rules.roles.governor:
        return Rejected(Reason.PRINCIPAL_NOT_GOVERNOR, f"principal {principal} is not the governor")
    return None


def parse_proposed_rules(state: State, rules_toml: str) -> RuleSet | Rejected:
    """Return the rule set a proposal's TOML describes over the rules in force, or why not.

    [SK-GOV-3] The text is a rules file read over the rules in force (a complete file, as
    ``dump_rules_toml`` writes, replaces them all); it must parse, pass its checks (SK-RULES)
    and be able to govern the state as it is (``incompatibilities``, SK-GOV-2).
    """
    if len(rules_toml) > RULES_TOML_CHARS_MAX:
        return Rejected(
            Reason.RULES_INVALID,
            f"change_rules.rules_toml: {len(rules_toml)} characters, "
            f"at most {RULES_TOML_CHARS_MAX}",
        )
    depth = bracket_depth(rules_toml)
    if depth > RULES_TOML_NESTING_MAX:
        # Refused before the TOML parser, which recurses: the answer must not depend on the
        # recursion limit or the caller's stack (as SK-WIRE-5 for a line).
        return Rejected(
            Reason.RULES_INVALID,
            f"change_rules.rules_toml: brackets nest {depth} deep, at most "
            f"{RULES_TOML_NESTING_MAX}",
        )
    try:
        rules = parse_rules_toml(rules_toml, state.rules)
    except (ValueError, TypeError) as error:
        return Rejected(Reason.RULES_INVALID, f"change_rules.rules_toml: {error!s:.2000}")
    problems = incompatibilities(state, rules)
    if problems:
        return Rejected(
            Reason.RULES_INVALID,
            "the new rules cannot govern the state as it is: " + "; ".join(problems),
        )
    return rules


def bracket_depth(text: str) -> int:
    """Return how deep ``[`` and ``{`` nest in ``text``, strings and comments included.

    A conservative count, linear and without recursion: a rules file nests two levels.
    """
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def grace_open(state: State) -> bool:
    """Return whether the grace of the last change applied is still open (SK-GOV-5)."""
    return state.grace is not None and state.clock_ms < state.grace.until_ms


def check_notice(state: State, event: ChangeRules) -> Rejected | None:
    """Reject a change effective sooner than the notice of the rules in force (SK-GOV-3)."""
    earliest = state.clock_ms + state.rules.rules_notice_ms
    if event.effective_ms >= earliest:
        return None
    return Rejected(
        Reason.RULES_NOTICE_TOO_SHORT,
        f"change_rules.effective_ms: {event.effective_ms} is before {earliest}, the clock "
        f"{state.clock_ms} plus rules_notice_ms={state.rules.rules_notice_ms}",
    )


def process_change_rules(state: State, event: ChangeRules) -> Outcome:
    """Record the governor's proposal of a new rule set, effective after notice (SK-GOV-3)."""
    rules = state.rules
    # Verify the principal is the governor, and the effective time is a timestamp.
    rejection = _not_governor(state, event.principal) or check_ranges(event, rules)
    if rejection is not None:
        return rejection
    # Verify no other change is pending and the last one's grace has closed.
    if state.proposal is not None:
        return Rejected(
            Reason.RULES_CHANGE_PENDING,
            f"rule change {state.proposal.id} is pending; cancel or apply it first",
        )
    if grace_open(state):
        assert state.grace is not None
        return Rejected(
            Reason.RULES_CHANGE_PENDING,
            f"the grace of the last rule change is open until {state.grace.until_ms}",
        )
    # Verify the notice, counted under the rules in force.
    rejection = check_notice(state, event)
    if rejection is not None:
        return rejection
    # Verify the new rules parse, pass their checks and can govern the state.
    proposed = parse_proposed_rules(state, event.rules_toml)
    if isinstance(proposed, Rejected):
        return proposed
    # From here the event must succeed.
    proposal = RulesProposal(event.proposal, proposed, state.clock_ms, event.effective_ms)
    return Accepted(
        attrs.evolve(state, proposal=proposal, commitment=touch(state.commitment, PROPOSAL_KEY)),
        (),
    )


def _pending(state: State, event: CancelRulesChange | ApplyRules) -> RulesProposal | Rejected:
    proposal = state.proposal
    if proposal is None or proposal.id != event.proposal:
        pending = "no rule change" if proposal is None else f"rule change {proposal.id}"
        return Rejected(
            Reason.RULES_PROPOSAL_UNKNOWN,
            f"rule change {event.proposal} is not pending ({pending} is)",
        )
    return proposal


def process_cancel_rules_change(state: State, event: CancelRulesChange) -> Outcome:
    """Withdraw the pending rule change (SK-GOV-4)."""
    # Verify the principal is the governor and the proposal is the pending one.
    rejection = _not_governor(state, event.principal)
    if rejection is not None:
        return rejection
    proposal = _pending(state, event)
    if isinstance(proposal, Rejected):
        return proposal
    # From here the event must succeed.
    return Accepted(
        attrs.evolve(state, proposal=None, commitment=touch(state.commitment, PROPOSAL_KEY)),
        (),
    )


def process_apply_rules(state: State, event: ApplyRules) -> Outcome:
    """Put the pending rule change in force, with a grace for those it alone hurts (SK-GOV-5).

    Anyone may apply it, like a keeper, but only once it is effective, and only if it can
    still govern the state (what happened during the notice may have made it incompatible).
    """
    # Verify the proposal is the pending one, can still govern the state and is effective.
    proposal = _pending(state, event)
    if isinstance(proposal, Rejected):
        return proposal
    problems = incompatibilities(state, proposal.rules)
    if problems:
        return Rejected(
            Reason.RULES_INVALID,
            f"rule change {proposal.id} can no longer govern the state: " + "; ".join(problems),
        )
    if state.clock_ms < proposal.effective_ms:
        return Rejected(
            Reason.RULES_NOT_YET_EFFECTIVE,
            f"rule change {proposal.id} is effective at {proposal.effective_ms}; "
            f"the clock is {state.clock_ms}",
        )
    # From here the event must succeed.
    return Accepted(applied(state, proposal.rules), ())


def applied(state: State, new_rules: RuleSet) -> State:
    """Return ``state`` under ``new_rules``, the grace of the accounts they alone push under."""
    old_rules = state.rules
    sheltered = pushed_below_maintenance(state, new_rules)
    grace = None
    if sheltered:
        grace = Grace(old_rules, state.clock_ms + old_rules.rules_grace_ms, sheltered)
    touched = [PROPOSAL_KEY, GRACE_KEY]
    for grace_then in (state.grace, grace):
        if grace_then is not None:
            touched += [GRACE_ACCOUNT_PREFIX + account_id for account_id in grace_then.accounts]
    venues = state.venues
    for venue in state.venues.values():
        if venue.house:
            # A house venue's fee ceiling is the rules' (SK-VENUE-1).
            venues = venues.set(venue.id, _with_fee_ceiling(venue, new_rules.fee_rate_max_ppm))
            touched.append(venue_key(venue.id))
    return attrs.evolve(
        state,
        rules=new_rules,
        proposal=None,
        grace=grace,
        venues=venues,
        # Every cache entry was computed under the old rules (SK-MARGIN-CACHE-1).
        margins=Map(),
        commitment=touch(state.commitment, *touched),
    )


def pushed_below_maintenance(state: State, new_rules: RuleSet) -> Map[str, None]:
    """Return the accounts that meet maintenance under the rules in force but not ``new_rules``."""
    market = market_of(state)
    found: dict[str, None] = {}
    for account in state.accounts.values():
        if account.owner == SYSTEM_OWNER:
            continue
        portfolio = portfolio_of(account, state.instruments)
        old = compute_account_margin(portfolio, market, state.rules)
        if old.is_liquidatable:
            continue
        if compute_account_margin(portfolio, market, new_rules).is_liquidatable:
            found[account.id] = None
    return Map(found)


def _with_fee_ceiling(venue: Venue, fee_rate_max_ppm: int) -> Venue:
    return Venue(
        venue.id,
        venue.status,
        venue.house,
        venue.fee_account,
        venue.open_interest_max_lots,
        venue.notional_max_minor,
        fee_rate_max_ppm,
        venue.open_lots,
    )


def grace_margin(state: State, account: Account) -> MarginReport | None:
    """Return the account's margin under the rules before the change, if its grace is open."""
    grace = state.grace
    if grace is None or not grace.shelters(state.clock_ms, account.id):
        return None
    portfolio = portfolio_of(account, state.instruments)
    return compute_account_margin(portfolio, market_of(state), grace.rules)


def check_grace(state: State, account: Account) -> Rejected | None:
    """Reject a liquidation or backstop of an account its grace still shelters (SK-GOV-5)."""
    report = grace_margin(state, account)
    if report is None or report.is_liquidatable:
        return None
    assert state.grace is not None
    return Rejected(
        Reason.LIQUIDATION_IN_GRACE,
        f"account {account.id} is in the grace of a rule change until {state.grace.until_ms}: "
        f"equity {report.equity_minor} meets the maintenance {report.maintenance_minor} of "
        "the rules before it",
    )
