"""The invariant catalogue as executable predicates (spec/60-invariants.md).

``check_invariants(state)`` checks every state-level invariant and returns the violations
(empty when the state is sound). ``check_step(before, event, outcome)`` checks the
step-level ones that relate a state to its successor. Each predicate's docstring starts
with its stable ID, so ``grep INV-...`` finds the spec entry, the predicate, the test and,
where one exists, the proof.
"""

from __future__ import annotations

import enum
from collections import Counter, defaultdict
from fractions import Fraction
from typing import TYPE_CHECKING, Final

import attrs

from settlekernel.core.events import (
    ApplyRules,
    Backstop,
    CancelRulesChange,
    ChangeRules,
    Expire,
    Funding,
    Liquidate,
    OraclePrice,
    RunInstructions,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import Account, Instrument
from settlekernel.core.oracle import ADMISSIBLE, Action, mark_premium, settlement_key, validity
from settlekernel.core.outcomes import Accepted, Outcome, PostingCode, Rejected
from settlekernel.core.reports import MarginReport
from settlekernel.core.root import recompute_root, state_root
from settlekernel.core.units import (
    CLEARING_ACCOUNT,
    EXTERNAL_ACCOUNT,
    INSURANCE_ACCOUNT,
    PPM,
    RESIDUE_ACCOUNT,
    SYSTEM_ACCOUNTS,
    SYSTEM_OWNER,
    VALUE_LIMIT,
)
from settlekernel.margin.accounts import (
    check_margin_admissible,
    margin_underlyings,
    market_key,
    market_of,
    portfolio_of,
)
from settlekernel.margin.impact import incompatibilities
from settlekernel.margin.options import model_price_ticks
from settlekernel.margin.portfolio import compute_margin

if TYPE_CHECKING:
    from collections.abc import Callable

    from settlekernel.core.model import State


class InvariantId(enum.Enum):
    """Stable invariant IDs; the value is the ID as written in spec/ and the tests."""

    CONSERVATION = "INV-CONSERVATION"
    NONNEGATIVE_BALANCES = "INV-NONNEGATIVE-BALANCES"
    CANONICAL_FORM = "INV-CANONICAL-FORM"
    OPEN_INTEREST_ZERO_SUM = "INV-OPEN-INTEREST-ZERO-SUM"
    UNIFORM_REFERENCE = "INV-UNIFORM-REFERENCE"
    NO_DOUBLE_SETTLEMENT = "INV-NO-DOUBLE-SETTLEMENT"
    ROUNDING_RESIDUE = "INV-ROUNDING-RESIDUE"
    ROOT_CONSISTENT = "INV-ROOT-CONSISTENT"
    MARGIN_CACHE_CONSISTENT = "INV-MARGIN-CACHE-CONSISTENT"
    ATOMIC_REJECT = "INV-ATOMIC-REJECT"
    POSTINGS_BALANCED = "INV-POSTINGS-BALANCED"
    MARGIN_AFTER_ACCEPT = "INV-MARGIN-AFTER-ACCEPT"
    ORACLE_ADMISSIBLE = "INV-ORACLE-ADMISSIBLE"
    EXPIRY_FINAL = "INV-EXPIRY-FINAL"
    INSURANCE_NONNEGATIVE = "INV-INSURANCE-NONNEGATIVE"
    LIQUIDATE_ONLY_BELOW_MM = "INV-LIQUIDATE-ONLY-BELOW-MM"
    LIQUIDATION_NO_WORSE = "INV-LIQUIDATION-NO-WORSE"
    ADL_FAIRNESS = "INV-ADL-FAIRNESS"
    MARGIN_ORDER = "INV-MARGIN-ORDER"
    PRICE_FRESH = "INV-PRICE-FRESH"
    LIQUIDATOR_GAIN = "INV-LIQUIDATOR-GAIN"
    DEBT_BACKED = "INV-DEBT-BACKED"
    SOCIALISE_ONLY_DEFICIT = "INV-SOCIALISE-ONLY-DEFICIT"
    SETTLEMENT_IN_RANGE = "INV-SETTLEMENT-IN-RANGE"
    MARK_ROBUST = "INV-MARK-ROBUST"
    FUNDING_BOUNDED = "INV-FUNDING-BOUNDED"
    DETERMINISM = "INV-DETERMINISM"
    VENUE_AUTHORISED = "INV-VENUE-AUTHORISED"
    RULES_GOVERNED = "INV-RULES-GOVERNED"
    GRACE = "INV-GRACE"
    INSTRUCTION_SAME_OWNER = "INV-INSTRUCTION-SAME-OWNER"
    TOPUP_BEFORE_LIQUIDATION = "INV-TOPUP-BEFORE-LIQUIDATION"


@attrs.frozen
class Violation:
    """An invariant that does not hold, and what was found."""

    invariant: InvariantId
    message: str

    def __str__(self) -> str:
        """Return ``ID: message``."""
        return f"{self.invariant.value}: {self.message}"


def check_conservation(state: State) -> list[Violation]:
    """INV-CONSERVATION: per asset, all balances sum to custody (deposits minus withdrawals).

    The clearing account is a transit account and holds nothing between steps.
    """
    totals: dict[str, int] = defaultdict(int)
    for account in state.accounts.values():
        for asset, amount in account.balances.items():
            totals[asset] += amount
    found = [
        Violation(
            InvariantId.CONSERVATION,
            f"{asset}: balances sum to {totals.get(asset, 0)}, custody holds "
            f"{state.custody.get(asset, 0)}",
        )
        for asset in sorted(set(totals) | set(state.custody))
        if totals.get(asset, 0) != state.custody.get(asset, 0)
    ]
    if state.accounts[CLEARING_ACCOUNT].balances:
        found.append(
            Violation(
                InvariantId.CONSERVATION,
                f"clearing account holds {dict(state.accounts[CLEARING_ACCOUNT].balances)}",
            )
        )
    return found


def check_nonnegative_balances(state: State) -> list[Violation]:
    """INV-NONNEGATIVE-BALANCES: every balance and custody total lies in [0, 2**96)."""
    found = [
        Violation(InvariantId.NONNEGATIVE_BALANCES, f"account {account.id} {asset}={amount}")
        for account in state.accounts.values()
        for asset, amount in account.balances.items()
        if not 0 <= amount < VALUE_LIMIT
    ]
    found += [
        Violation(InvariantId.NONNEGATIVE_BALANCES, f"custody {asset}={amount}")
        for asset, amount in state.custody.items()
        if not 0 <= amount < VALUE_LIMIT
    ]
    return found


def check_canonical_form(state: State) -> list[Violation]:
    """INV-CANONICAL-FORM: no zero balance, zero position or zero custody is stored.

    Identifiers key their own records, system accounts are owned by the system and only by
    it, and every asset named is in the rule set.
    """
    found: list[Violation] = []
    assets = state.rules.asset_by_symbol
    for account_id, account in state.accounts.items():
        is_system = account_id in SYSTEM_ACCOUNTS
        if account.id != account_id or is_system != (account.owner == SYSTEM_OWNER):
            found.append(
                Violation(
                    InvariantId.CANONICAL_FORM,
                    f"account key {account_id} holds {account.id}/{account.owner}",
                )
            )
        found += [
            Violation(InvariantId.CANONICAL_FORM, f"account {account_id} {asset}={amount}")
            for asset, amount in account.balances.items()
            if amount == 0 or asset not in assets
        ]
        found += [
            Violation(
                InvariantId.CANONICAL_FORM,
                f"account {account_id} stores a zero position in {instrument_id}",
            )
            for instrument_id, position in account.positions.items()
            if position.quantity_lots == 0
        ]
    found += [
        Violation(InvariantId.CANONICAL_FORM, f"custody {asset}={amount}")
        for asset, amount in state.custody.items()
        if amount == 0 or asset not in assets
    ]
    found += [
        Violation(InvariantId.CANONICAL_FORM, f"instrument key {key} holds {i.id}")
        for key, i in state.instruments.items()
        if i.id != key
    ]
    return found


def check_open_interest(state: State) -> list[Violation]:
    """INV-OPEN-INTEREST-ZERO-SUM: per instrument, positions sum to zero.

    The derived indexes agree with the positions: open interest is the sum of the longs and
    the holders are exactly the accounts with a position. Positions respect their limits.
    """
    net: Counter[str] = Counter()
    longs: Counter[str] = Counter()
    holders: dict[str, set[str]] = defaultdict(set)
    found: list[Violation] = []
    rules = state.rules
    for account in state.accounts.values():
        if len(account.positions) > rules.positions_per_account_max:
            found.append(
                Violation(
                    InvariantId.OPEN_INTEREST_ZERO_SUM,
                    f"account {account.id} holds {len(account.positions)} positions",
                )
            )
        for instrument_id, position in account.positions.items():
            net[instrument_id] += position.quantity_lots
            longs[instrument_id] += max(position.quantity_lots, 0)
            holders[instrument_id].add(account.id)
            if (
                instrument_id not in state.instruments
                or abs(position.quantity_lots) > rules.position_lots_max
            ):
                found.append(
                    Violation(
                        InvariantId.OPEN_INTEREST_ZERO_SUM,
                        f"account {account.id} position in {instrument_id}",
                    )
                )
    for instrument_id in sorted(state.instruments):
        if net[instrument_id] != 0:
            found.append(
                Violation(
                    InvariantId.OPEN_INTEREST_ZERO_SUM,
                    f"{instrument_id}: positions sum to {net[instrument_id]}",
                )
            )
        if state.open_interest.get(instrument_id) != longs[instrument_id]:
            found.append(
                Violation(
                    InvariantId.OPEN_INTEREST_ZERO_SUM,
                    f"{instrument_id}: open interest index "
                    f"{state.open_interest.get(instrument_id)}, longs "
                    f"{longs[instrument_id]}",
                )
            )
        indexed = set(state.holders.get(instrument_id, {}))
        if indexed != holders[instrument_id]:
            found.append(
                Violation(
                    InvariantId.OPEN_INTEREST_ZERO_SUM,
                    f"{instrument_id}: holder index {sorted(indexed)}, "
                    f"positions {sorted(holders[instrument_id])}",
                )
            )
    return found


def check_uniform_reference(state: State) -> list[Violation]:
    """INV-UNIFORM-REFERENCE: every open position is settled at its instrument's reference.

    A perpetual or future with open positions has a positive reference; an option's
    reference is 0. This is what makes variation margin sum to exactly zero.
    """
    found: list[Violation] = []
    for account in state.accounts.values():
        for instrument_id, position in account.positions.items():
            instrument = state.instruments.get(instrument_id)
            if instrument is None:
                continue  # Reported by INV-OPEN-INTEREST-ZERO-SUM.
            expected = instrument.reference_ticks
            if position.settled_price_ticks != expected or (instrument.is_linear and expected <= 0):
                found.append(
                    Violation(
                        InvariantId.UNIFORM_REFERENCE,
                        f"account {account.id} {instrument_id} settled at "
                        f"{position.settled_price_ticks}, reference {expected}",
                    )
                )
    found += [
        Violation(InvariantId.UNIFORM_REFERENCE, f"option {i.id} reference {i.reference_ticks}")
        for i in state.instruments.values()
        if not i.is_linear and i.reference_ticks != 0
    ]
    return found


def check_trade_registry(state: State) -> list[Violation]:
    """INV-NO-DOUBLE-SETTLEMENT (state part): each settled trade is recorded once, by its id."""
    return [
        Violation(InvariantId.NO_DOUBLE_SETTLEMENT, f"trade key {key} holds {trade.trade_id}")
        for key, trade in state.trades.items()
        if key != trade.trade_id or trade.instrument not in state.instruments
    ]


def check_system_accounts(state: State) -> list[Violation]:
    """INV-ROUNDING-RESIDUE (state part): no system account, the residue among them, trades."""
    return [
        Violation(InvariantId.ROUNDING_RESIDUE, f"system account {account_id} holds positions")
        for account_id in SYSTEM_ACCOUNTS
        if state.accounts[account_id].positions
    ]


def check_root(state: State) -> list[Violation]:
    """INV-ROOT-CONSISTENT: the incremental root equals the root recomputed from scratch."""
    incremental, scratch = state_root(state), recompute_root(state)
    if incremental == scratch:
        return []
    return [
        Violation(
            InvariantId.ROOT_CONSISTENT,
            f"incremental {incremental.hex()[:16]} != recomputed {scratch.hex()[:16]}",
        )
    ]


def check_margin_cache(state: State) -> list[Violation]:
    """INV-MARGIN-CACHE-CONSISTENT: a cached margin still valid equals a fresh computation."""
    found: list[Violation] = []
    for account_id, entry in state.margins.items():
        account = state.accounts.get(account_id)
        if account is not entry.account:
            continue  # Stale: the account changed, so the entry will not be used.
        if entry.market_key != market_key(state, account, state.instruments):
            continue  # Stale: a market input changed.
        fresh, cached = _fresh_margin(state, account_id), entry.report
        if (fresh.equity_minor, fresh.maintenance_minor, fresh.initial_minor) != (
            cached.equity_minor,
            cached.maintenance_minor,
            cached.initial_minor,
        ):
            found.append(
                Violation(
                    InvariantId.MARGIN_CACHE_CONSISTENT,
                    f"{account_id}: cached {cached.initial_minor}, fresh {fresh.initial_minor}",
                )
            )
    return found


def check_margin_order(state: State) -> list[Violation]:
    """INV-MARGIN-ORDER: every margin the kernel computed asks at least maintenance initially.

    An account accepted at initial margin must not be liquidatable at once; the rule-set
    theorem ``initial-covers-maintenance`` proves it for every requirement, this checks every
    report the kernel has cached.
    """
    return [
        Violation(
            InvariantId.MARGIN_ORDER,
            f"{account_id}: initial {entry.report.initial_minor} is below maintenance "
            f"{entry.report.maintenance_minor}",
        )
        for account_id, entry in state.margins.items()
        if entry.report.initial_minor < entry.report.maintenance_minor
    ]


def check_expiry(state: State) -> list[Violation]:
    """INV-EXPIRY-FINAL (state part): a settled instrument has nothing left open.

    Every instrument settled at expiry has no open interest and no holders, and its
    settlement price is the one the oracle fixed. The pending expiries of each underlying are
    exactly the listed expiries whose price is not fixed yet, ascending.
    """
    found = [
        Violation(InvariantId.EXPIRY_FINAL, f"settled {i.id} still has open interest or holders")
        for i in state.instruments.values()
        if i.settlement_ticks is not None
        and (state.open_interest[i.id] != 0 or len(state.holders[i.id]) != 0)
    ]
    found += [
        Violation(InvariantId.EXPIRY_FINAL, f"{i.id} settled at {i.settlement_ticks}, not fixed")
        for i in state.instruments.values()
        if i.settlement_ticks is not None
        and i.expiry_ms is not None
        and state.settlement_prices.get(settlement_key(i.underlying, i.expiry_ms))
        != i.settlement_ticks
    ]
    pending: dict[str, set[int]] = defaultdict(set)
    for i in state.instruments.values():
        if (
            i.expiry_ms is not None
            and settlement_key(i.underlying, i.expiry_ms) not in state.settlement_prices
        ):
            pending[i.underlying].add(i.expiry_ms)
    derived = {underlying: tuple(sorted(times)) for underlying, times in pending.items()}
    if derived != dict(state.pending_expiries):
        found.append(
            Violation(
                InvariantId.EXPIRY_FINAL,
                f"pending expiries {dict(state.pending_expiries)}, derived {derived}",
            )
        )
    return found


def check_debts(state: State) -> list[Violation]:
    """INV-DEBT-BACKED: the fund never owes more than it holds and is owed (SK-DEBT).

    Debts and claims are non-negative and never both on one account, never on a system
    account; a debtor holds no valuation-asset cash (it repays at once, SK-DEBT-2); the
    debtor and claimant indexes are exactly the accounts with a debt and with a claim; and
    the claims sum to at most the fund's valuation-asset cash plus the debts.
    """
    found: list[Violation] = []
    asset = state.rules.valuation_asset
    debts = claims = 0
    for account_id, account in state.accounts.items():
        debts, claims = debts + account.debt_minor, claims + account.claim_minor
        problem = None
        if account.debt_minor < 0 or account.claim_minor < 0:
            problem = "a negative debt or claim"
        elif account.debt_minor and account.claim_minor:
            problem = "both a debt and a claim"
        elif account_id in SYSTEM_ACCOUNTS and (account.debt_minor or account.claim_minor):
            problem = "a system account with a debt or claim"
        elif account.debt_minor and account.balance(asset):
            problem = f"a debt of {account.debt_minor} beside {account.balance(asset)} cash"
        elif (account_id in state.debtors) != (account.debt_minor > 0) or (
            account_id in state.claimants
        ) != (account.claim_minor > 0):
            problem = "the debtor or claimant index disagrees"
        if problem is not None:
            found.append(Violation(InvariantId.DEBT_BACKED, f"account {account_id}: {problem}"))
    fund = state.accounts[INSURANCE_ACCOUNT].balance(asset)
    if claims > fund + debts:
        found.append(
            Violation(
                InvariantId.DEBT_BACKED,
                f"claims {claims} exceed the fund's {fund} cash and {debts} of debts",
            )
        )
    return found


def check_proposal(state: State) -> list[Violation]:
    """INV-RULES-GOVERNED (state part): a pending change was given its notice (SK-GOV-3)."""
    proposal = state.proposal
    if proposal is None:
        return []
    if proposal.effective_ms >= proposal.proposed_ms + state.rules.rules_notice_ms:
        return []
    return [
        Violation(
            InvariantId.RULES_GOVERNED,
            f"rule change {proposal.id} is effective at {proposal.effective_ms}, sooner than "
            f"rules_notice_ms={state.rules.rules_notice_ms} after {proposal.proposed_ms}",
        )
    ]


STATE_CHECKS: Final[tuple[Callable[[State], list[Violation]], ...]] = (
    check_conservation,
    check_nonnegative_balances,
    check_canonical_form,
    check_open_interest,
    check_uniform_reference,
    check_trade_registry,
    check_system_accounts,
    check_root,
    check_margin_cache,
    check_margin_order,
    check_expiry,
    check_debts,
    check_proposal,
)


def check_invariants(state: State) -> list[Violation]:
    """Return every state-level invariant violation of ``state``; empty when sound. O(state)."""
    return [violation for check in STATE_CHECKS for violation in check(state)]


def check_step(before: State, event: object, outcome: Outcome) -> list[Violation]:
    """Return every step-level invariant violation of ``before --event--> outcome``."""
    if isinstance(outcome, Rejected):
        return []
    found = check_postings(before, outcome)
    found += _check_margin_after(before, event, outcome)
    found += _check_settled_once(before, event, outcome)
    found += _check_residue(before, event, outcome)
    found += _check_oracle(before, event, outcome)
    found += _check_fresh(before, event)
    found += _check_settlement_range(before, outcome)
    found += _check_mark(before, event, outcome)
    found += _check_sale_prices(before, event, outcome)
    found += _check_socialised(before, event, outcome)
    found += _check_funding(before, event, outcome)
    found += _check_expiry_step(before, event, outcome)
    found += _check_insurance(before, event, outcome)
    found += _check_liquidation(before, event, outcome)
    found += _check_adl(before, event, outcome)
    found += _check_venue(before, event, outcome)
    found += _check_rules_governed(before, event, outcome)
    found += _check_grace(before, event, outcome)
    found += _check_instructions(before, event, outcome)
    found += _check_top_up_first(before, event)
    return found


def _check_instructions(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-INSTRUCTION-SAME-OWNER: a top-up moves value only between two accounts of one owner.

    Every ``top_up`` posting credits an account with a standing top-up registered before the
    step and debits that top-up's source, a different account of the same owner; only
    ``RunInstructions`` (one) and ``VariationMargin`` (at most ``instructions_per_event_max``)
    make them; and each source still meets its initial margin after the step (SK-INSTR-3).
    """
    top_ups = [p for p in outcome.postings if p.code is PostingCode.TOP_UP]
    if not top_ups:
        return []
    after = outcome.state
    found: list[str] = []
    for posting in top_ups:
        debit = after.accounts.get(posting.debit_account)
        credit = after.accounts.get(posting.credit_account)
        registered = before.instructions.get(posting.credit_account)
        if debit is None or credit is None or debit.owner != credit.owner:
            found.append(f"top-up {posting} moves value between owners")
        elif debit.id == credit.id or registered is None or registered.source != debit.id:
            found.append(f"top-up {posting} is not from the credited account's registered source")
        elif not _fresh_margin(after, debit.id).meets_initial:
            found.append(f"top-up {posting} left its source below initial margin")
    bound: dict[type, int] = {
        RunInstructions: 1,
        VariationMargin: before.rules.instructions_per_event_max,
    }
    if len(top_ups) > bound.get(type(event), 0):
        found.append(f"{type(event).__name__} made {len(top_ups)} top-ups")
    return [Violation(InvariantId.INSTRUCTION_SAME_OWNER, message) for message in found]


def _check_top_up_first(before: State, event: object) -> list[Violation]:
    """INV-TOPUP-BEFORE-LIQUIDATION: no account is liquidated that its top-up could restore.

    An accepted ``Liquidate`` or ``Backstop`` of an account below maintenance had no
    registered top-up that could move, right then, enough to restore maintenance: the least
    of what restores its threshold, what the cap leaves, and the source's cash above its own
    initial margin (SK-INSTR-5). Margins recomputed with the batch engine.
    """
    if type(event) not in {Liquidate, Backstop}:
        return []
    account_id = event.account  # type: ignore[attr-defined]  # Liquidate or Backstop
    top_up = before.instructions.get(account_id)
    if top_up is None:
        return []
    account, source = before.accounts[account_id], before.accounts[top_up.source]
    if check_margin_admissible(before, account, source) is not None:
        return []
    report, held = _fresh_margin(before, account_id), _fresh_margin(before, source.id)
    if not report.is_liquidatable:
        return []
    need = -((-report.maintenance_minor * top_up.threshold_ppm) // PPM) - report.equity_minor
    fresh = before.clock_ms >= top_up.window_start_ms + top_up.interval_ms
    cap = top_up.amount_max_minor - (0 if fresh else top_up.used_minor)
    spare = min(source.balance(top_up.asset), held.equity_minor - held.initial_minor)
    movable = max(min(need, cap, spare), 0)
    if movable == 0 or report.equity_minor + movable < report.maintenance_minor:
        return []
    return [
        Violation(
            InvariantId.TOPUP_BEFORE_LIQUIDATION,
            f"{type(event).__name__} of {account_id} accepted while its top-up could move "
            f"{movable}, restoring equity {report.equity_minor} to maintenance "
            f"{report.maintenance_minor}",
        )
    ]


def _check_rules_governed(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-RULES-GOVERNED: the rules change only to a noticed, pending, applicable proposal.

    The rules in force are the genesis rules or a proposal the governor made with the notice
    of the rules then in force, applied once effective; a proposal appears only by the
    governor's ``ChangeRules`` and leaves only by a cancellation or its application.
    Recomputed from the spec, apart from the kernel's checks.
    """
    after = outcome.state
    found: list[str] = []
    if after.rules != before.rules:
        proposal = before.proposal
        if type(event) is not ApplyRules or proposal is None or proposal.id != event.proposal:
            found.append(f"the rules changed by {type(event).__name__}, not by their proposal")
        elif before.clock_ms < proposal.effective_ms or after.rules != proposal.rules:
            found.append(f"rule change {proposal.id} applied before it was effective")
        elif proposal.effective_ms < proposal.proposed_ms + before.rules.rules_notice_ms:
            found.append(f"rule change {proposal.id} applied without its notice")
    if after.proposal is not None and after.proposal != before.proposal:
        new = after.proposal
        if type(event) is not ChangeRules or event.principal != before.rules.roles.governor:
            found.append(f"rule change {new.id} proposed by {type(event).__name__}")
        elif before.proposal is not None:
            found.append(f"rule change {new.id} proposed while {before.proposal.id} pending")
        elif new.effective_ms < before.clock_ms + before.rules.rules_notice_ms:
            found.append(f"rule change {new.id} proposed with less than the notice")
        elif new.rules.problems() or incompatibilities(before, new.rules):
            found.append(f"rule change {new.id} proposed with rules that fail their checks")
    if before.proposal is not None and after.proposal is None:
        governor = before.rules.roles.governor
        cancelled = type(event) is CancelRulesChange and event.principal == governor
        if not cancelled and type(event) is not ApplyRules:
            found.append(f"rule change {before.proposal.id} dropped by {type(event).__name__}")
    return [Violation(InvariantId.RULES_GOVERNED, message) for message in found]


def _check_grace(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-GRACE: nobody in a rule change's grace is liquidated while it meets its old margin.

    And the grace an ``ApplyRules`` opens holds exactly the accounts that met maintenance
    under the old rules and not under the new, until the old ``rules_grace_ms`` from now.
    Margins are recomputed with the batch engine, apart from the kernel's path.
    """
    if type(event) is ApplyRules:
        return _check_grace_opened(before, outcome.state)
    if type(event) not in {Liquidate, Backstop}:
        return []
    grace = before.grace
    account_id = event.account  # type: ignore[attr-defined]  # Liquidate or Backstop
    if grace is None or before.clock_ms >= grace.until_ms or account_id not in grace.accounts:
        return []
    account = before.accounts[account_id]
    old = compute_margin(portfolio_of(account, before.instruments), market_of(before), grace.rules)
    if old.is_liquidatable:
        return []
    return [
        Violation(
            InvariantId.GRACE,
            f"{type(event).__name__} of {account_id} in grace until {grace.until_ms}: equity "
            f"{old.equity_minor} meets the old maintenance {old.maintenance_minor}",
        )
    ]


def _check_grace_opened(before: State, after: State) -> list[Violation]:
    market = market_of(before)
    expected: set[str] = set()
    for account in before.accounts.values():
        if account.owner == SYSTEM_OWNER:
            continue
        portfolio = portfolio_of(account, before.instruments)
        old = compute_margin(portfolio, market, before.rules)
        if (
            not old.is_liquidatable
            and compute_margin(portfolio, market, after.rules).is_liquidatable
        ):
            expected.add(account.id)
    grace = after.grace
    found = set() if grace is None else set(grace.accounts)
    problems = []
    if found != expected:
        problems.append(f"grace holds {sorted(found)}, the change pushed under {sorted(expected)}")
    if grace is not None and grace.until_ms != before.clock_ms + before.rules.rules_grace_ms:
        problems.append(f"grace ends at {grace.until_ms}, not after the old rules_grace_ms")
    if grace is not None and grace.rules != before.rules:
        problems.append("grace keeps other rules than those before the change")
    return [Violation(InvariantId.GRACE, message) for message in problems]


def _check_venue(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-VENUE-AUTHORISED: a trade came from an active venue each side had authorised.

    Each account whose position it changed had granted the venue the right to make the
    change: full, or reduce-only for a change that shrinks the position without flipping it
    (SK-VENUE-2). Written from the spec, apart from the kernel's checks.
    """
    if type(event) is not Trade:
        return []
    venue = before.venues.get(event.principal)
    if venue is None or venue.status.value != "active":
        return [
            Violation(InvariantId.VENUE_AUTHORISED, f"trade by inactive venue {event.principal}")
        ]
    found = []
    for account_id in (event.buyer, event.seller):
        grant = before.grants.get(f"{account_id}@{venue.id}")
        grant_name = grant.value if grant is not None else ("full" if venue.house else "none")
        old = before.accounts[account_id].positions.get(event.instrument)
        new = outcome.state.accounts[account_id].positions.get(event.instrument)
        old_lots = 0 if old is None else old.quantity_lots
        new_lots = 0 if new is None else new.quantity_lots
        reduces = abs(new_lots) < abs(old_lots) and old_lots * new_lots >= 0
        if grant_name == "full" or (grant_name == "reduce_only" and reduces):
            continue
        found.append(
            Violation(
                InvariantId.VENUE_AUTHORISED,
                f"venue {venue.id} moved {account_id} from {old_lots} to {new_lots} lots "
                f"of {event.instrument} under grant {grant_name}",
            )
        )
    return found


def check_postings(before: State, outcome: Accepted) -> list[Violation]:
    """INV-POSTINGS-BALANCED: postings are positive double entries that explain the balances.

    Applying them to the balances before the step gives exactly the balances after it, and
    the external account's net equals the change in custody.
    """
    found: list[Violation] = []
    delta: dict[tuple[str, str], int] = defaultdict(int)
    for posting in outcome.postings:
        if posting.amount_minor <= 0 or posting.debit_account == posting.credit_account:
            found.append(Violation(InvariantId.POSTINGS_BALANCED, f"malformed {posting}"))
        delta[posting.debit_account, posting.asset] -= posting.amount_minor
        delta[posting.credit_account, posting.asset] += posting.amount_minor
    after = outcome.state
    touched = {account_id for account_id, _ in delta} - {EXTERNAL_ACCOUNT}
    for account_id in sorted(set(after.accounts) | set(before.accounts)):
        old, new = before.accounts.get(account_id), after.accounts.get(account_id)
        for asset in sorted(set(old.balances if old else ()) | set(new.balances if new else ())):
            change = (new.balance(asset) if new else 0) - (old.balance(asset) if old else 0)
            if change != delta.get((account_id, asset), 0):
                found.append(
                    Violation(
                        InvariantId.POSTINGS_BALANCED,
                        f"{account_id} {asset} changed by {change}, postings say "
                        f"{delta.get((account_id, asset), 0)}",
                    )
                )
        touched.discard(account_id)
    found += [
        Violation(InvariantId.POSTINGS_BALANCED, f"postings name unknown account {a}")
        for a in sorted(touched)
        if any(delta[a, s] for s in before.rules.asset_by_symbol)
    ]
    for asset in before.rules.asset_by_symbol:
        custody_change = after.custody.get(asset, 0) - before.custody.get(asset, 0)
        if custody_change != -delta.get((EXTERNAL_ACCOUNT, asset), 0):
            found.append(
                Violation(
                    InvariantId.POSTINGS_BALANCED, f"custody {asset} changed by {custody_change}"
                )
            )
    return found


def _fresh_margin(state: State, account_id: str) -> MarginReport:
    """Compute an account's margin from scratch, bypassing the cache (an independent check).

    With the batch engine, not the single-account path ``step`` uses (SK-MARGIN-DET-3), so
    every check of the cache is also a differential check of the two.
    """
    return compute_margin(
        portfolio_of(state.accounts[account_id], state.instruments), market_of(state), state.rules
    )


def _check_margin_after(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-MARGIN-AFTER-ACCEPT: a trade, withdraw or transfer leaves its payers at margin.

    A withdraw or transfer leaves the account it debits at or above initial margin. A trade
    leaves each side at or above initial margin, or reduces that side's risk: maintenance not
    higher than before and the equity-to-maintenance ratio not worse (SK-MARGIN-3).
    """
    after = outcome.state
    if isinstance(event, Withdraw | Transfer):
        account_id = event.account if isinstance(event, Withdraw) else event.source_account
        report = _fresh_margin(after, account_id)
        if report.meets_initial:
            return []
        return [
            Violation(
                InvariantId.MARGIN_AFTER_ACCEPT,
                f"{account_id} equity {report.equity_minor} < initial {report.initial_minor}",
            )
        ]
    if not isinstance(event, Trade):
        return []
    found: list[Violation] = []
    for account_id in (event.buyer, event.seller):
        now, prior = _fresh_margin(after, account_id), _fresh_margin(before, account_id)
        reduces_risk = (
            prior.maintenance_minor > 0
            and now.maintenance_minor <= prior.maintenance_minor
            and now.equity_minor * prior.maintenance_minor
            >= prior.equity_minor * now.maintenance_minor
        )
        if not now.meets_initial and not reduces_risk:
            found.append(
                Violation(
                    InvariantId.MARGIN_AFTER_ACCEPT,
                    f"{account_id} equity {now.equity_minor} < initial "
                    f"{now.initial_minor} and its risk grew",
                )
            )
    return found


def _check_settled_once(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-NO-DOUBLE-SETTLEMENT: a trade is accepted only for an id never settled before."""
    if not isinstance(event, Trade):
        return []
    if event.trade_id in before.trades or outcome.state.trades.get(event.trade_id) != event:
        return [
            Violation(InvariantId.NO_DOUBLE_SETTLEMENT, f"trade {event.trade_id} settled twice")
        ]
    return []


def _check_residue(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-ROUNDING-RESIDUE: the residue only grows, by rounding postings, and by little.

    Nothing ever debits the residue. A trade's rounding is one minor unit per fee division,
    at most two; any other step's rounding posting comes from a pro-rata split and is less
    than the number of accounts the step pays, plus, in a liquidation, one unit per
    underlying whose penalty it divides (SK-LIQ-3).
    """
    rounding = [p for p in outcome.postings if p.credit_account == RESIDUE_ACCOUNT]
    paid = {p.credit_account for p in outcome.postings} - {RESIDUE_ACCOUNT, CLEARING_ACCOUNT}
    limit = 1 if isinstance(event, Trade) else max(len(paid) - 1, 0)
    if isinstance(event, Liquidate | Backstop):
        positions = before.accounts[event.account].positions
        limit += len({before.instruments[i].underlying for i in positions})
    found = [
        Violation(InvariantId.ROUNDING_RESIDUE, f"residue credited by {p}")
        for p in rounding
        if p.code is not PostingCode.ROUNDING or not 0 < p.amount_minor <= limit
    ]
    found += [
        Violation(InvariantId.ROUNDING_RESIDUE, f"residue debited by {p}")
        for p in outcome.postings
        if p.debit_account == RESIDUE_ACCOUNT
    ]
    if isinstance(event, Trade) and len(rounding) > 2:
        found.append(
            Violation(InvariantId.ROUNDING_RESIDUE, f"{len(rounding)} roundings in a step")
        )
    return found


def _needs(before: State, event: object) -> list[tuple[str, Action]]:
    """Return the (underlying, action) pairs an accepted event needed admitted (SK-ORACLE-5)."""
    if isinstance(event, Trade):
        instrument = before.instruments[event.instrument]
        reads = set().union(
            *(margin_underlyings(before, before.accounts[a]) for a in (event.buyer, event.seller))
        )
        return [(instrument.underlying, Action.TRADE)] + [(u, Action.MARGIN) for u in reads]
    if isinstance(event, Withdraw | Transfer):
        account = before.accounts[
            event.account if isinstance(event, Withdraw) else event.source_account
        ]
        if not account.positions:
            return []
        return [(u, Action.MARGIN) for u in margin_underlyings(before, account)]
    if isinstance(event, VariationMargin):
        underlying = before.instruments[event.instrument].underlying
        return [(underlying, Action.VARIATION_MARGIN)]
    if isinstance(event, Funding):
        return [(before.instruments[event.instrument].underlying, Action.FUNDING)]
    if isinstance(event, Expire):
        return [(before.instruments[event.instrument].underlying, Action.SETTLEMENT)]
    if isinstance(event, Liquidate):
        accounts = (before.accounts[event.account], before.accounts[event.liquidator])
        reads = set().union(*(margin_underlyings(before, a) for a in accounts))
        return [(u, Action.LIQUIDATION) for u in reads]
    if isinstance(event, Backstop):
        reads = margin_underlyings(before, before.accounts[event.account])
        return [(u, Action.LIQUIDATION) for u in reads]
    return []


def _check_oracle(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-ORACLE-ADMISSIBLE: nothing is accepted on a price its action may not use.

    Every underlying an accepted event needed had, before the event, a validity that admits
    the action (SK-ORACLE-4, SK-ORACLE-5). An accepted report moves the index by at most the
    band of the last accepted one and moves neither the index's time nor the clock back
    (SK-ORACLE-3).
    """
    found = [
        Violation(
            InvariantId.ORACLE_ADMISSIBLE,
            f"{type(event).__name__} needed {action.value} on {underlying}, which was "
            f"{validity(before, underlying).value}",
        )
        for underlying, action in _needs(before, event)
        if validity(before, underlying) not in ADMISSIBLE[action]
    ]
    after = outcome.state
    if after.clock_ms < before.clock_ms:
        found.append(Violation(InvariantId.ORACLE_ADMISSIBLE, "the clock went back"))
    if isinstance(event, OraclePrice):
        old, new = before.prices.get(event.underlying), after.prices.get(event.underlying)
        band_ppm = before.rules.underlying_by_symbol[event.underlying].band_ppm
        if (
            old is not None
            and new is not None
            and (
                abs(new.price_ticks - old.price_ticks) * PPM > old.price_ticks * band_ppm
                or new.timestamp_ms < old.timestamp_ms
            )
        ):
            found.append(
                Violation(InvariantId.ORACLE_ADMISSIBLE, f"index moved from {old} to {new}")
            )
    return found


def _check_fresh(before: State, event: object) -> list[Violation]:
    """INV-PRICE-FRESH: nothing moves value on a price no fresh majority backs (SK-TICK).

    Recomputed from the reports alone, not through the oracle's evaluation: every
    underlying an accepted event needed for anything but settlement had, at the kernel
    clock before it (which the sequencer's ticks move), at least ``min_sources`` reports no
    further than ``stale_after_ms`` from the clock, and, for an even count, two middle
    reports within the dispersion band of the last index.
    """
    found = []
    for underlying, action in _needs(before, event):
        if action is Action.SETTLEMENT:
            continue
        rules = before.rules.underlying_by_symbol[underlying]
        reports = before.reports.get(underlying)
        fresh = sorted(
            report.price_ticks
            for report in ([] if reports is None else reports.values())
            if abs(before.clock_ms - report.timestamp_ms) <= rules.stale_after_ms
        )
        problem = None
        if len(fresh) < rules.min_sources:
            problem = f"{len(fresh)} fresh reports at clock {before.clock_ms}"
        elif len(fresh) % 2 == 0 and underlying in before.prices:
            low, high = fresh[len(fresh) // 2 - 1], fresh[len(fresh) // 2]
            if (high - low) * PPM > before.prices[underlying].price_ticks * (
                rules.dispersion_band_ppm
            ):
                problem = f"the live reports split {low} / {high}"
        if problem is not None:
            found.append(
                Violation(
                    InvariantId.PRICE_FRESH,
                    f"{type(event).__name__} needed {action.value} on {underlying}: {problem}",
                )
            )
    return found


def _check_settlement_range(before: State, outcome: Accepted) -> list[Violation]:
    """INV-SETTLEMENT-IN-RANGE: a fixed settlement price lies within its window's indexes.

    For every settlement price the step fixed: within the lowest and highest index in force
    in ``[expiry - settlement_window_ms, expiry]``, read off the history before the step
    (the index in force at the window's start, and each later sample's range), or equal to
    the fixing index when no index was in force before the expiry (SK-EXPIRY-2).
    """
    found = []
    for key, fixed in outcome.state.settlement_prices.items():
        if key in before.settlement_prices:
            continue
        underlying, expiry_text = key.rsplit("@", 1)
        expiry_ms = int(expiry_text)
        window_ms = before.rules.underlying_by_symbol[underlying].settlement_window_ms
        samples = [s for s in before.history.get(underlying, ()) if s.timestamp_ms <= expiry_ms]
        start_ms = expiry_ms - window_ms
        in_force = [s.price_ticks for s in samples if s.timestamp_ms <= start_ms][-1:]
        later = [s for s in samples if s.timestamp_ms > start_ms]
        prices = in_force + [s.low_ticks for s in later] + [s.high_ticks for s in later]
        if not samples:
            prices = [outcome.state.prices[underlying].price_ticks]
        if not min(prices) <= fixed <= max(prices):
            found.append(
                Violation(
                    InvariantId.SETTLEMENT_IN_RANGE,
                    f"{key} fixed at {fixed}, outside its window's [{min(prices)}, {max(prices)}]",
                )
            )
    return found


def _liquidation_value(state: State, account: Account) -> int:
    """An account at liquidation: cash, collateral less its discount, credit, positions."""
    value = account.claim_minor - account.debt_minor
    for asset, units in account.balances.items():
        rules = state.rules.asset_by_symbol[asset]
        if rules.price_underlying is None:
            value += units if asset == state.rules.valuation_asset else 0
        elif rules.price_underlying in state.prices:
            tick = state.rules.underlying_by_symbol[rules.price_underlying].tick_value_minor
            index = state.prices[rules.price_underlying].price_ticks
            cut = PPM - rules.liquidation_discount_ppm
            value += units * index * tick * cut // (10**rules.decimals * PPM)
    for instrument_id, position in account.positions.items():
        instrument = state.instruments[instrument_id]
        if instrument.is_linear:
            index = state.prices[instrument.underlying].price_ticks
            value += (
                position.quantity_lots
                * (index - position.settled_price_ticks)
                * (instrument.multiplier_minor)
            )
    if any(not state.instruments[i].is_linear for i in account.positions):
        report = compute_margin(
            portfolio_of(account, state.instruments), market_of(state), state.rules
        )
        value += report.option_value_minor
    return value


def _check_socialised(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-SOCIALISE-ONLY-DEFICIT: a loss is socialised only where no value is left to pay it.

    ``socialized_loss`` grows only in an expiry, by at most what each payer owed beyond all
    its account would raise at liquidation without the expiring position (recomputed), or in a
    liquidation whose write-off left the fund's claims unbacked, by at most those claims; a
    solvent payer short of cash becomes a debtor, never a socialised loss (SK-DEBT).
    """
    asset = before.rules.valuation_asset
    grown = outcome.state.socialized_loss.get(asset, 0) - before.socialized_loss.get(asset, 0)
    if grown == 0:
        return []
    limit = 0
    if isinstance(event, Expire):
        instrument = before.instruments[event.instrument]
        price = outcome.state.instruments[event.instrument].settlement_ticks
        for holder in before.holders[event.instrument]:
            account = before.accounts[holder]
            quantity = account.positions[instrument.id].quantity_lots
            owed = -_independent_expiry_flow(instrument, quantity, price)
            rest = attrs.evolve(account, positions=account.positions.delete(instrument.id))
            limit += max(owed - _liquidation_value(before, rest), 0) if owed > 0 else 0
    elif isinstance(event, Liquidate):
        limit = sum(account.claim_minor for account in before.accounts.values())
    elif isinstance(event, Backstop):
        limit = sum(
            max(-flow - _liquidation_value(before, _rest(before, outcome.state, holder)), 0)
            for holder, flow in _backstop_flows(before, outcome.state, event.account).items()
            if flow < 0
        )
    if not 0 < grown <= limit:
        return [
            Violation(
                InvariantId.SOCIALISE_ONLY_DEFICIT,
                f"{type(event).__name__} socialised {grown}; no more than {limit} was lost",
            )
        ]
    return []


def _check_sale_prices(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-LIQUIDATOR-GAIN: collateral sold in a liquidation fetches its stated price.

    Every buyer (the liquidator or the fund) pays for the collateral it takes at least its
    index value less the asset's ``liquidation_discount_ppm``, rounded down per asset, so
    none gains more on it than the discount the rules state (SK-WATERFALL-1); recomputed
    from the postings and the index before the step.
    """
    if not isinstance(event, Liquidate | Backstop):
        return []
    valuation = before.rules.valuation_asset
    owed: defaultdict[str, int] = defaultdict(int)
    paid: defaultdict[str, int] = defaultdict(int)
    for posting in outcome.postings:
        if posting.code is not PostingCode.COLLATERAL_SALE:
            continue
        if posting.asset == valuation:
            paid[posting.debit_account] += posting.amount_minor
            continue
        rules = before.rules.asset_by_symbol[posting.asset]
        assert rules.price_underlying is not None
        index = before.prices[rules.price_underlying].price_ticks
        tick = before.rules.underlying_by_symbol[rules.price_underlying].tick_value_minor
        owed[posting.credit_account] += (
            posting.amount_minor * index * tick * (PPM - rules.liquidation_discount_ppm)
        ) // (10**rules.decimals * PPM)
    return [
        Violation(
            InvariantId.LIQUIDATOR_GAIN,
            f"{buyer} paid {paid[buyer]} for collateral worth {value} at its liquidation price",
        )
        for buyer, value in sorted(owed.items())
        if paid[buyer] < value - len(before.rules.assets)
    ]


def _check_mark(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-MARK-ROBUST: a wash print leaves no premium sample; every sample is in the band.

    A trade between two accounts of one owner leaves the instrument's premium samples as
    they were (SK-MARK-2); any sample a trade adds is stamped now, within the mark band, and
    no larger than the trade.
    """
    if not isinstance(event, Trade):
        return []
    old = before.instruments[event.instrument].premium_samples
    new = outcome.state.instruments[event.instrument].premium_samples
    buyer, seller = before.accounts[event.buyer], before.accounts[event.seller]
    if buyer.owner == seller.owner:
        if new != old:
            message = f"wash trade {event.trade_id} moved the mark"
            return [Violation(InvariantId.MARK_ROBUST, message)]
        return []
    band = before.rules.underlying_by_symbol[
        before.instruments[event.instrument].underlying
    ].mark_band_ppm
    added = [sample for sample in new if sample not in old]
    return [
        Violation(InvariantId.MARK_ROBUST, f"trade {event.trade_id} added sample {sample}")
        for sample in added
        if abs(sample.premium_ppm) > band
        or sample.timestamp_ms != before.clock_ms
        or not 0 < sample.lots <= event.quantity_lots
    ]


def _check_funding(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-FUNDING-BOUNDED: a charge covers whole intervals, within the clamp, zero-sum.

    It charges ``n`` whole intervals, ``1 <= n <= funding_intervals_max``, all elapsed; it
    shifts the reference by at most ``n * index * funding_clamp_ppm / 1e6`` ticks, and every
    position by exactly as much (so the charge is zero-sum); and with no premium sample and
    no premium integrated since the last charge it shifts nothing.
    """
    if not isinstance(event, Funding):
        return []
    old = before.instruments[event.instrument]
    new = outcome.state.instruments[event.instrument]
    rules = before.rules.underlying_by_symbol[old.underlying]
    intervals, remainder = divmod(
        new.last_funding_ms - old.last_funding_ms, rules.funding_interval_ms
    )
    shift = new.reference_ticks - old.reference_ticks
    index = before.prices[old.underlying].price_ticks
    problems = []
    if remainder or not 1 <= intervals <= before.rules.funding_intervals_max:
        problems.append(f"charged {intervals} intervals and {remainder} ms")
    if new.last_funding_ms > before.clock_ms:
        problems.append(f"charged up to {new.last_funding_ms}, after the clock")
    if abs(shift) * PPM > intervals * index * rules.funding_clamp_ppm:
        problems.append(f"shift {shift} beyond {intervals} clamped intervals")
    if shift and not old.premium_samples and old.premium_integral == 0:
        problems.append(f"shift {shift} with no premium any trade confirmed")
    for holder in before.holders[old.id]:
        moved = (
            outcome.state.accounts[holder].positions[old.id].settled_price_ticks
            - before.accounts[holder].positions[old.id].settled_price_ticks
        )
        if moved != shift:
            problems.append(f"{holder} moved {moved}, the instrument {shift}")
    return [Violation(InvariantId.FUNDING_BOUNDED, f"{old.id}: {p}") for p in problems]


def _settled_value(before: State, after: State, holder: str, asset: str) -> int:
    """An account's valuation-asset cash plus its credit with the fund, after less before."""
    old, new = before.accounts[holder], after.accounts[holder]
    return (new.balance(asset) + new.claim_minor - new.debt_minor) - (
        old.balance(asset) + old.claim_minor - old.debt_minor
    )


def _check_expiry_step(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-EXPIRY-FINAL (step part): an expiry settles every holder exactly once, exactly.

    [Modified in v4] Recomputed from the state before, in settled value (cash plus claims
    less debts on the fund, SK-DEBT): every holder's position is closed; a payer is charged
    at most what it owes; a receiver is credited at most what it is due; what the payers
    were not charged is what the fund paid of their deficits plus the socialised loss; and
    the receivers bear the socialised loss with less than two units each of rounding: their
    cash cut is rounded up and their claim on the fund rounded down (SK-DEBT-1), each by
    less than one unit.
    """
    if not isinstance(event, Expire):
        return []
    instrument = before.instruments[event.instrument]
    after = outcome.state
    price = after.instruments[event.instrument].settlement_ticks
    asset = instrument.settlement_asset
    found: list[Violation] = []
    owed_total = charged_total = due_total = credited_total = receivers = 0
    for holder in before.holders[event.instrument]:
        held = before.accounts[holder]
        flow = _independent_expiry_flow(
            instrument, held.positions[instrument.id].quantity_lots, price
        )
        change = _settled_value(before, after, holder, asset)
        if instrument.id in after.accounts[holder].positions:
            found.append(
                Violation(InvariantId.EXPIRY_FINAL, f"{holder} still holds {instrument.id}")
            )
        if flow < 0:
            owed_total, charged_total = owed_total - flow, charged_total - change
            if not 0 <= -change <= -flow:
                found.append(
                    Violation(InvariantId.EXPIRY_FINAL, f"{holder} owed {-flow}, charged {-change}")
                )
        elif flow > 0:
            due_total, credited_total = due_total + flow, credited_total + change
            receivers += 1
            if not 0 <= change <= flow:
                found.append(
                    Violation(InvariantId.EXPIRY_FINAL, f"{holder} due {flow}, got {change}")
                )
    socialized = after.socialized_loss.get(asset, 0) - before.socialized_loss.get(asset, 0)
    insured = sum(p.amount_minor for p in outcome.postings if p.code is PostingCode.INSURANCE)
    rounding = due_total - credited_total - socialized
    uncharged = owed_total - charged_total
    if uncharged != socialized + insured or not 0 <= rounding < 2 * max(receivers, 1):
        found.append(
            Violation(
                InvariantId.EXPIRY_FINAL,
                f"owed {owed_total}, charged {charged_total}, due {due_total}, credited "
                f"{credited_total}, socialised {socialized}",
            )
        )
    return found


def _independent_expiry_flow(instrument: Instrument, quantity: int, price: int | None) -> int:
    """The expiry payoff written out again, without the kernel's helpers."""
    assert price is not None
    if instrument.kind is not InstrumentKind.OPTION:
        linear: int = quantity * (price - instrument.reference_ticks) * instrument.multiplier_minor
        return linear
    assert instrument.strike_ticks is not None
    gap = price - instrument.strike_ticks
    intrinsic = max(gap if instrument.option_type is OptionType.CALL else -gap, 0)
    option: int = quantity * intrinsic * instrument.multiplier_minor
    return option


def _check_insurance(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-INSURANCE-NONNEGATIVE: the insurance fund never goes negative, never pays idly.

    Its balances stay at or above zero. [Modified in v4] It is debited only by ``insurance``
    postings in a liquidation, into an account it leaves with no position and no
    valuation-asset balance (paying more would have left it some); by its purchases of a
    liquidated account's collateral (``collateral_sale``); by ``advance`` postings in a mark
    or an expiry, for no more than the payers' cash shortfall (recomputed); and by
    ``claim_payment`` postings, for no more than the claims it owed (SK-DEBT).
    """
    fund_after = outcome.state.accounts[INSURANCE_ACCOUNT]
    found = [
        Violation(InvariantId.INSURANCE_NONNEGATIVE, f"insurance {asset}={amount}")
        for asset, amount in fund_after.balances.items()
        if amount < 0
    ]
    allowed = {PostingCode.CLAIM_PAYMENT}
    if isinstance(event, Liquidate):
        allowed |= {PostingCode.INSURANCE, PostingCode.COLLATERAL_SALE}
    if isinstance(event, Expire | VariationMargin):
        allowed |= {PostingCode.INSURANCE, PostingCode.ADVANCE}
    if isinstance(event, Backstop):
        allowed |= {PostingCode.INSURANCE, PostingCode.ADVANCE, PostingCode.COLLATERAL_SALE}
    paid = [p for p in outcome.postings if p.debit_account == INSURANCE_ACCOUNT]
    found += [
        Violation(InvariantId.INSURANCE_NONNEGATIVE, f"insurance debited by {p}")
        for p in paid
        if p.code not in allowed
    ]
    total = sum(p.amount_minor for p in paid if p.code is PostingCode.INSURANCE)
    left = outcome.state.accounts.get(event.account) if isinstance(event, Liquidate) else None
    if (
        total
        and left is not None
        and (left.positions or left.balance(before.rules.valuation_asset))
    ):
        found.append(
            Violation(
                InvariantId.INSURANCE_NONNEGATIVE,
                f"insurance paid {total} into {left.id}, which kept positions or cash",
            )
        )
    advanced = sum(
        p.amount_minor
        for p in paid
        if p.code is PostingCode.ADVANCE
        or (p.code is PostingCode.INSURANCE and not isinstance(event, Liquidate))
    )
    if advanced > _shortfall(before, event, outcome):
        found.append(
            Violation(InvariantId.INSURANCE_NONNEGATIVE, f"advanced {advanced}, shortfall smaller")
        )
    claimed = sum(p.amount_minor for p in paid if p.code is PostingCode.CLAIM_PAYMENT)
    if claimed > sum(account.claim_minor for account in before.accounts.values()) + sum(
        p.amount_minor for p in outcome.postings if p.code is PostingCode.ADVANCE
    ) + _shortfall(before, event, outcome):
        found.append(
            Violation(InvariantId.INSURANCE_NONNEGATIVE, f"paid {claimed} of claims not owed")
        )
    return found


def _shortfall(before: State, event: object, outcome: Accepted) -> int:
    """The valuation-asset shortfall a mark's, an expiry's or a backstop's payers leave.

    A backstop's payers may first have sold collateral to the fund: what they raised counts
    as cash (SK-LIQ-6). 0 for any other event.
    """
    if isinstance(event, Backstop):
        asset = before.rules.valuation_asset
        raised: Counter[str] = Counter()
        for posting in outcome.postings:
            if posting.code is PostingCode.COLLATERAL_SALE and posting.asset == asset:
                raised[posting.credit_account] += posting.amount_minor
        return sum(
            max(-flow - before.accounts[holder].balance(asset) - raised[holder], 0)
            for holder, flow in _backstop_flows(before, outcome.state, event.account).items()
        )
    if not isinstance(event, Expire | VariationMargin):
        return 0
    instrument = before.instruments[event.instrument]
    if isinstance(event, Expire):
        assert instrument.expiry_ms is not None
        price = before.settlement_prices.get(
            settlement_key(instrument.underlying, instrument.expiry_ms)
        )
    else:
        price = _close_price(before, instrument, 0)
    total = 0
    for holder in before.holders[event.instrument]:
        held = before.accounts[holder]
        position = held.positions[instrument.id]
        if isinstance(event, Expire):
            flow = _independent_expiry_flow(instrument, position.quantity_lots, price)
        else:
            assert price is not None
            flow = (
                position.quantity_lots
                * (price - position.settled_price_ticks)
                * (instrument.multiplier_minor)
            )
        total += max(-flow - held.balance(instrument.settlement_asset), 0)
    return total


def _check_liquidation(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-LIQUIDATE-ONLY-BELOW-MM and INV-LIQUIDATION-NO-WORSE, recomputed from scratch.

    Only an account with positions and equity below maintenance, or [Modified in v4] one in
    debt to the fund (SK-LIQ-1), is liquidated. Afterwards it either holds no position and no
    negative equity, or it meets initial margin with a ratio of equity to maintenance no
    worse than before (by cross-multiplication) and no more maintenance than before.
    """
    if isinstance(event, Backstop):
        return _check_backstop_threshold(before, event, outcome)
    if not isinstance(event, Liquidate):
        return []
    prior = _fresh_margin(before, event.account)
    found = []
    held = before.accounts[event.account]
    if not held.debt_minor and (
        not held.positions or prior.equity_minor >= prior.maintenance_minor
    ):
        found.append(
            Violation(
                InvariantId.LIQUIDATE_ONLY_BELOW_MM,
                f"{event.account} liquidated at equity "
                f"{prior.equity_minor}, maintenance {prior.maintenance_minor}",
            )
        )
    now = _fresh_margin(outcome.state, event.account)
    if outcome.state.accounts[event.account].positions:
        no_worse = (
            now.meets_initial
            and now.maintenance_minor <= prior.maintenance_minor
            and now.equity_minor * prior.maintenance_minor
            >= prior.equity_minor * now.maintenance_minor
        )
    else:
        no_worse = now.equity_minor >= 0
    if not no_worse:
        found.append(
            Violation(
                InvariantId.LIQUIDATION_NO_WORSE,
                f"{event.account}: equity "
                f"{prior.equity_minor}/{now.equity_minor}, maintenance "
                f"{prior.maintenance_minor}/{now.maintenance_minor}",
            )
        )
    return found


def _check_adl(before: State, event: object, outcome: Accepted) -> list[Violation]:
    """INV-ADL-FAIRNESS: deleveraging takes from the right accounts, in the right order.

    Which instruments are deleveraged is recomputed: only when the account is bankrupt
    beyond the insurance fund (its cash, the collateral sale and the close at transfer
    prices leave a shortfall the fund cannot pay), only its losing positions. No other
    account's position changes anywhere else (the liquidator's only by what it takes). Per
    deleveraged instrument, only opposite-side holders are reduced, toward zero and never
    past it, as a prefix of the ranking (profit at the transfer price x gross notional over
    equity, non-positive equity first, ties by id; recomputed with exact fractions), all but
    the last fully; each is paid at least 0 and less than the profit it gave up.
    """
    if isinstance(event, Backstop):
        return _check_backstop_adl(before, event, outcome)
    if not isinstance(event, Liquidate):
        return []
    after = outcome.state
    deleveraged = _deleveraged(before, event, outcome)
    found = [
        Violation(InvariantId.ADL_FAIRNESS, f"{account_id} {instrument_id} changed outside ADL")
        for account_id in sorted(after.accounts)
        if account_id not in (event.account, event.liquidator)
        for instrument_id in sorted(_changed(before, after, account_id) - deleveraged)
    ]
    adl = [p for p in outcome.postings if p.code is PostingCode.ADL]
    if adl and not deleveraged:
        found.append(Violation(InvariantId.ADL_FAIRNESS, "ADL payments without a bankruptcy"))
    asset = before.rules.valuation_asset
    if deleveraged and after.accounts[INSURANCE_ACCOUNT].balance(asset):
        found.append(Violation(InvariantId.ADL_FAIRNESS, "deleveraged with the fund not empty"))
    profit_given: Counter[str] = Counter()
    for instrument_id in sorted(deleveraged):
        found += _check_adl_instrument(before, after, event.account, instrument_id, profit_given)
    found += [
        Violation(
            InvariantId.ADL_FAIRNESS,
            f"{p.credit_account} paid {p.amount_minor} for a profit of "
            f"{profit_given[p.credit_account]} given up",
        )
        for p in adl
        if not 0 <= p.amount_minor < max(profit_given[p.credit_account], 1)
    ]
    return found


def _check_backstop_threshold(before: State, event: Backstop, outcome: Accepted) -> list[Violation]:
    """INV-LIQUIDATE-ONLY-BELOW-MM for a backstop: only below its threshold, closed in full.

    [New in v5] The account's equity was below ``backstop_equity_ppm`` of its maintenance
    margin (cross-multiplied), and it ends with no position (SK-LIQ-6).
    """
    prior = _fresh_margin(before, event.account)
    found = []
    if prior.equity_minor * PPM >= prior.maintenance_minor * before.rules.backstop_equity_ppm:
        found.append(
            Violation(
                InvariantId.LIQUIDATE_ONLY_BELOW_MM,
                f"{event.account} backstopped at equity {prior.equity_minor}, maintenance "
                f"{prior.maintenance_minor}",
            )
        )
    if outcome.state.accounts[event.account].positions:
        found.append(
            Violation(InvariantId.LIQUIDATION_NO_WORSE, f"{event.account} backstopped, not closed")
        )
    return found


def _check_backstop_adl(before: State, event: Backstop, outcome: Accepted) -> list[Violation]:
    """INV-ADL-FAIRNESS for a backstop: the opposite side, in ranking order, at the price.

    [New in v5] Only the account's instruments change, and in each only opposite-side holders
    are reduced, toward zero, as a prefix of the ranking (as in a bankruptcy). Every account's
    ``adl`` cash is recomputed from its position change at the transfer price (SK-LIQ-2): a
    receiver gets at least 0 and at most its due, a payer pays at most what it owes.
    """
    after = outcome.state
    held = set(before.accounts[event.account].positions)
    found = [
        Violation(InvariantId.ADL_FAIRNESS, f"{account_id} {instrument_id} changed outside ADL")
        for account_id in sorted(after.accounts)
        for instrument_id in sorted(_changed(before, after, account_id) - held)
    ]
    unused: Counter[str] = Counter()
    for instrument_id in sorted(held):
        found += _check_adl_instrument(before, after, event.account, instrument_id, unused)
    net: Counter[str] = Counter()
    for posting in outcome.postings:
        if posting.code is PostingCode.ADL:
            net[posting.credit_account] += posting.amount_minor
            net[posting.debit_account] -= posting.amount_minor
    flows = _backstop_flows(before, after, event.account)
    for account_id in sorted(set(net) - {CLEARING_ACCOUNT}):
        flow = flows.get(account_id, 0)
        if not (0 <= net[account_id] <= flow if flow >= 0 else flow <= net[account_id] <= 0):
            found.append(
                Violation(
                    InvariantId.ADL_FAIRNESS,
                    f"{account_id} settled {net[account_id]} for a flow of {flow}",
                )
            )
    return found


def _backstop_flows(before: State, after: State, account_id: str) -> dict[str, int]:
    """Every account's cash flow in a backstop of ``account_id``, from position changes.

    Each instrument the account held transfers at the price of closing its position (the
    mark, or the model value rounded against it, SK-LIQ-2): an account whose position
    changes by ``d`` lots receives ``-d * (price - reference) * multiplier`` (SK-LIQ-6).
    """
    flows: Counter[str] = Counter()
    for instrument_id, closed in sorted(before.accounts[account_id].positions.items()):
        instrument = before.instruments[instrument_id]
        price = _close_price(before, instrument, closed.quantity_lots)
        for holder in sorted(before.holders[instrument_id]):
            old = before.accounts[holder].positions.get(instrument_id)
            new = after.accounts[holder].positions.get(instrument_id)
            change = (0 if new is None else new.quantity_lots) - (
                0 if old is None else old.quantity_lots
            )
            flows[holder] -= (
                change * (price - instrument.reference_ticks) * instrument.multiplier_minor
            )
    return {holder: flow for holder, flow in flows.items() if flow}


def _rest(before: State, after: State, account_id: str) -> Account:
    """An account as it was before a step, with the positions it holds after it."""
    return attrs.evolve(before.accounts[account_id], positions=after.accounts[account_id].positions)


def _deleveraged(before: State, event: Liquidate, outcome: Accepted) -> set[str]:
    """The instruments a liquidation had to deleverage, recomputed from the state before."""
    account = before.accounts[event.account]
    if outcome.state.accounts[event.account].positions:
        return set()
    asset = before.rules.valuation_asset
    cash: dict[str, int] = {}
    for instrument_id, position in account.positions.items():
        instrument = before.instruments[instrument_id]
        held = position.quantity_lots
        # What closing the position at its transfer price pays the account (SK-SETTLE-1).
        price = _close_price(before, instrument, held)
        cash[instrument_id] = (
            held * (price - instrument.reference_ticks) * instrument.multiplier_minor
        )
    sale = sum(
        p.amount_minor
        for p in outcome.postings
        if p.code is PostingCode.COLLATERAL_SALE
        and p.asset == asset
        and p.credit_account == account.id
    )
    shortfall = -(account.balance(asset) + sale + sum(cash.values()))
    if shortfall <= 0 or before.accounts[INSURANCE_ACCOUNT].balance(asset) >= shortfall:
        return set()
    return {instrument_id for instrument_id, amount in cash.items() if amount < 0}


def _close_price(before: State, instrument: Instrument, held: int) -> int:
    """The transfer price of closing ``held`` lots: the mark, or the model value (SK-LIQ-2)."""
    if instrument.is_linear:
        index = before.prices[instrument.underlying].price_ticks
        return max(index + index * mark_premium(before, instrument) // PPM, 1)
    return model_price_ticks(market_of(before), instrument, round_up=held < 0)


def _changed(before: State, after: State, account_id: str) -> set[str]:
    old, new = before.accounts[account_id].positions, after.accounts[account_id].positions
    return {i for i in set(old) | set(new) if old.get(i) != new.get(i)}


def _check_adl_instrument(
    before: State, after: State, bankrupt: str, instrument_id: str, profit_given: Counter[str]
) -> list[Violation]:
    instrument = before.instruments[instrument_id]
    closed = before.accounts[bankrupt].positions.get(instrument_id)
    if closed is None or instrument_id in after.accounts[bankrupt].positions:
        return [Violation(InvariantId.ADL_FAIRNESS, f"{instrument_id} deleveraged, not closed")]
    side = -1 if closed.quantity_lots > 0 else 1
    candidates = []
    for holder_id in before.holders[instrument_id]:
        lots = before.accounts[holder_id].positions[instrument_id].quantity_lots
        if holder_id == bankrupt or (lots > 0) != (side > 0):
            continue
        per_lot = _profit_per_lot(before, instrument, lots)
        notional = sum(
            abs(p.quantity_lots)
            * before.prices[before.instruments[i].underlying].price_ticks
            * before.instruments[i].multiplier_minor
            for i, p in before.accounts[holder_id].positions.items()
        )
        weight = abs(lots) * per_lot * notional
        equity = _fresh_margin(before, holder_id).equity_minor
        score = (0, Fraction(-weight)) if equity <= 0 else (1, Fraction(-weight, equity))
        candidates.append((score, holder_id, lots, per_lot))
    candidates.sort()
    found = []
    seen_reduced = False
    # From the lowest rank up: untouched holders, then at most one partial, then full ones.
    for _, holder_id, lots, per_lot in reversed(candidates):
        new = after.accounts[holder_id].positions.get(instrument_id)
        new_lots = 0 if new is None else new.quantity_lots
        given = lots - new_lots
        if not given:
            if seen_reduced:
                found.append(Violation(InvariantId.ADL_FAIRNESS, f"{holder_id} skipped"))
            continue
        if new_lots * lots < 0 or abs(new_lots) > abs(lots) or (new_lots and seen_reduced):
            found.append(Violation(InvariantId.ADL_FAIRNESS, f"{holder_id} reduced out of order"))
        profit_given[holder_id] += abs(given) * per_lot
        seen_reduced = True
    return found


def _profit_per_lot(before: State, instrument: Instrument, lots: int) -> int:
    """A holder's profit per lot at the transfer price: the mark, or the option's value."""
    if instrument.is_linear:
        mark = _close_price(before, instrument, lots)
        return abs(mark - instrument.reference_ticks) * instrument.multiplier_minor
    value = _close_price(before, instrument, -lots)
    return max(value if lots > 0 else -value, 0) * instrument.multiplier_minor
