"""Venues: admission by governance, grants by owners, limits (spec/30-transitions.md#venues).

Many venues clear through one kernel (SK-VENUE): each is admitted, suspended or removed by
the governor (SK-GOV-1), each account owner chooses which venues may trade on the account,
and each admitted venue trades within limits of its own. Positions are the account's, not
the venue's: an account that trades one instrument on two venues holds one position and is
margined once, so a hedge across venues nets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from immutables import Map

from settlekernel.core.arith import compute_notional_minor
from settlekernel.core.events import (
    AdmitVenue,
    AuthorizeVenue,
    RemoveVenue,
    RestrictVenue,
    ResumeVenue,
    RevokeVenue,
    SuspendVenue,
    Trade,
)
from settlekernel.core.guards import check_ranges
from settlekernel.core.model import Account, Grant, State, Venue, VenueStatus, replace_state
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import GRANT_PREFIX, grant_key, touch, venue_key
from settlekernel.core.units import FEE_ACCOUNT, VALUE_LIMIT

if TYPE_CHECKING:
    from settlekernel.core.model import Instrument
    from settlekernel.core.rules import RuleSet

_NO_OPEN_LOTS: Final[Map[str, int]] = Map()
_GRANT_EVENTS: Final = {AuthorizeVenue: Grant.FULL, RestrictVenue: Grant.REDUCE_ONLY}
_STATUS_EVENTS: Final = {
    SuspendVenue: VenueStatus.SUSPENDED,
    ResumeVenue: VenueStatus.ACTIVE,
    RemoveVenue: VenueStatus.REMOVED,
}


def house_venues(rules: RuleSet) -> Map[str, Venue]:
    """Return the venues every state starts with: one per matcher of the rules (SK-VENUE-1)."""
    return Map(
        {
            matcher: Venue(
                matcher,
                VenueStatus.ACTIVE,
                True,  # noqa: FBT003 (house)
                FEE_ACCOUNT,
                VALUE_LIMIT - 1,
                VALUE_LIMIT - 1,
                rules.fee_rate_max_ppm,
                _NO_OPEN_LOTS,
            )
            for matcher in rules.roles.matchers
        }
    )


def effective_grant(state: State, account_id: str, venue: Venue) -> Grant:
    """Return what ``venue`` may do on the account: its grant, or the default (SK-VENUE-2)."""
    default = Grant.FULL if venue.house else Grant.NONE
    return state.grants.get(grant_key(account_id, venue.id), default)


def _role_principals(rules: RuleSet) -> set[str]:
    roles = rules.roles
    return {roles.operator, *roles.oracles, roles.sequencer, roles.governor}


def process_admit_venue(state: State, event: AdmitVenue) -> Outcome:
    """Admit a venue, or change the limits of one admitted before (SK-VENUE-1)."""
    rules = state.rules
    # Verify the principal is the governor.
    if event.principal != rules.roles.governor:
        return Rejected(
            Reason.PRINCIPAL_NOT_GOVERNOR, f"principal {event.principal} is not the governor"
        )
    # Verify the limits are within bounds (the fee ceiling within the rules' own).
    rejection = check_ranges(event, rules)
    if rejection is not None:
        return rejection
    # Verify the venue is neither a house venue, nor a role, nor removed.
    known = state.venues.get(event.venue)
    if known is not None and known.house:
        return Rejected(
            Reason.VENUE_INVALID,
            f"venue {event.venue} is a house venue of the rules; its limits are the rules'",
        )
    if event.venue in _role_principals(rules):
        return Rejected(Reason.VENUE_INVALID, f"venue {event.venue} is a principal of another role")
    if known is not None and known.status is VenueStatus.REMOVED:
        return Rejected(
            Reason.VENUE_INVALID, f"venue {event.venue} was removed; its id is not reused"
        )
    # Verify the fee account exists and is the venue's own.
    fee_account = state.accounts.get(event.fee_account)
    if fee_account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.fee_account} does not exist")
    if fee_account.owner != event.venue:
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"fee account {event.fee_account} is owned by {fee_account.owner}, "
            f"not by venue {event.venue}",
        )
    # From here the event must succeed: a known venue keeps its status and its count.
    venue = Venue(
        event.venue,
        VenueStatus.ACTIVE if known is None else known.status,
        False,  # noqa: FBT003 (house)
        event.fee_account,
        event.open_interest_max_lots,
        event.notional_max_minor,
        event.fee_rate_max_ppm,
        _NO_OPEN_LOTS if known is None else known.open_lots,
    )
    return Accepted(_with_venue(state, venue), ())


def process_venue_status(state: State, event: SuspendVenue | ResumeVenue | RemoveVenue) -> Outcome:
    """Suspend a venue, reinstate a suspended one, or remove one for good (SK-VENUE-1)."""
    # Verify the principal is the governor.
    if event.principal != state.rules.roles.governor:
        return Rejected(
            Reason.PRINCIPAL_NOT_GOVERNOR, f"principal {event.principal} is not the governor"
        )
    # Verify the venue exists and is not already removed.
    venue = state.venues.get(event.venue)
    if venue is None or venue.status is VenueStatus.REMOVED:
        return Rejected(Reason.VENUE_UNKNOWN, f"venue {event.venue} is not admitted")
    # From here the event must succeed.
    status = _STATUS_EVENTS[type(event)]
    return Accepted(_with_venue(state, _with_status(venue, status)), ())


def process_grant(state: State, event: AuthorizeVenue | RestrictVenue | RevokeVenue) -> Outcome:
    """Record an owner's grant, restriction or revocation of a venue (SK-VENUE-2)."""
    # Verify the account and the venue exist.
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    venue = state.venues.get(event.venue)
    if venue is None or venue.status is VenueStatus.REMOVED:
        return Rejected(Reason.VENUE_UNKNOWN, f"venue {event.venue} is not admitted")
    # Verify the principal owns the account.
    if event.principal != account.owner:
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"principal {event.principal} does not own account {event.account}",
        )
    # From here the event must succeed.
    key = grant_key(account.id, venue.id)
    grant = _GRANT_EVENTS.get(type(event), Grant.NONE)
    return Accepted(
        replace_state(
            state,
            grants=state.grants.set(key, grant),
            commitment=touch(state.commitment, GRANT_PREFIX + key),
        ),
        (),
    )


def _with_status(venue: Venue, status: VenueStatus) -> Venue:
    return Venue(
        venue.id,
        status,
        venue.house,
        venue.fee_account,
        venue.open_interest_max_lots,
        venue.notional_max_minor,
        venue.fee_rate_max_ppm,
        venue.open_lots,
    )


def _with_venue(state: State, venue: Venue) -> State:
    return replace_state(
        state,
        venues=state.venues.set(venue.id, venue),
        commitment=touch(state.commitment, venue_key(venue.id)),
    )


def check_venue_fee(event: Trade, venue: Venue) -> Rejected | None:
    """Reject a fee rate above the venue's own ceiling (SK-VENUE-3)."""
    for field in ("buyer_fee_rate_ppm", "seller_fee_rate_ppm"):
        rate = getattr(event, field)
        if rate > venue.fee_rate_max_ppm:
            return Rejected(
                Reason.FEE_RATE_OUT_OF_RANGE,
                f"trade.{field}: {rate} is above venue {venue.id}'s "
                f"fee_rate_max_ppm={venue.fee_rate_max_ppm}",
            )
    return None


def check_venue_grants(
    state: State, event: Trade, venue: Venue, buyer: Account, seller: Account
) -> Rejected | None:
    """Reject a trade on an account whose owner has not let the venue do it (SK-VENUE-2)."""
    for account, delta in ((buyer, event.quantity_lots), (seller, -event.quantity_lots)):
        grant = effective_grant(state, account.id, venue)
        if grant is Grant.FULL:
            continue
        if grant is Grant.REDUCE_ONLY:
            held = account.positions.get(event.instrument)
            before = 0 if held is None else held.quantity_lots
            after = before + delta
            if abs(after) < abs(before) and before * after >= 0:
                continue
            return Rejected(
                Reason.VENUE_NOT_AUTHORISED,
                f"venue {venue.id} may only reduce account {account.id}'s positions; "
                f"{event.instrument} would go from {before} to {after} lots",
            )
        return Rejected(
            Reason.VENUE_NOT_AUTHORISED,
            f"the owner of account {account.id} has not authorised venue {venue.id}",
        )
    return None


def open_interest_added(
    before: tuple[Account, ...], after: tuple[Account, ...], instrument: str
) -> int:
    """Return the change in the instrument's open interest (long lots) the legs make."""
    added = 0
    for old, new in zip(before, after, strict=True):
        old_held, new_held = old.positions.get(instrument), new.positions.get(instrument)
        old_lots = 0 if old_held is None else old_held.quantity_lots
        new_lots = 0 if new_held is None else new_held.quantity_lots
        added += max(new_lots, 0) - max(old_lots, 0)
    return added


def check_venue_limits(
    venue: Venue,
    instrument: Instrument,
    price_ticks: int,
    legs: tuple[tuple[Account, Account], ...],
) -> Rejected | None:
    """Reject a trade that takes the venue past its open-interest or notional limit (SK-VENUE-4)."""
    if venue.house:
        return None
    added = open_interest_added(
        tuple(old for old, _ in legs), tuple(new for _, new in legs), instrument.id
    )
    open_lots = venue.open_lots.get(instrument.id, 0) + added
    if added > 0 and open_lots > venue.open_interest_max_lots:
        return Rejected(
            Reason.VENUE_LIMIT_EXCEEDED,
            f"venue {venue.id} would carry {open_lots} lots of open interest in "
            f"{instrument.id}, beyond its open_interest_max_lots={venue.open_interest_max_lots}",
        )
    for old, new in legs:
        old_held, new_held = old.positions.get(instrument.id), new.positions.get(instrument.id)
        old_lots = 0 if old_held is None else abs(old_held.quantity_lots)
        new_lots = 0 if new_held is None else abs(new_held.quantity_lots)
        if new_lots <= old_lots:
            continue
        notional = compute_notional_minor(new_lots, price_ticks, instrument.multiplier_minor)
        if notional > venue.notional_max_minor:
            return Rejected(
                Reason.VENUE_LIMIT_EXCEEDED,
                f"account {new.id} would hold {notional} of {instrument.id} notional through "
                f"venue {venue.id}, beyond its notional_max_minor={venue.notional_max_minor}",
            )
    return None


def with_trade_recorded(
    state: State, venue: Venue, instrument_id: str, added: int
) -> tuple[Map[str, Venue], str | None]:
    """Return the venues with the trade's open interest counted, and the leaf touched, if any."""
    if venue.house or added == 0:
        return state.venues, None
    open_lots = max(venue.open_lots.get(instrument_id, 0) + added, 0)
    counted = Venue(
        venue.id,
        venue.status,
        venue.house,
        venue.fee_account,
        venue.open_interest_max_lots,
        venue.notional_max_minor,
        venue.fee_rate_max_ppm,
        venue.open_lots.set(instrument_id, open_lots),
    )
    return state.venues.set(venue.id, counted), venue_key(venue.id)
