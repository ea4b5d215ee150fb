"""z3 models of the venue events, written from spec/30-transitions.md#venues (SK-PROOF-18).

``AdmitVenue``, ``SuspendVenue``, ``ResumeVenue`` and ``RemoveVenue`` are the governor's
(SK-GOV-1, SK-VENUE-1); ``AuthorizeVenue``, ``RestrictVenue`` and ``RevokeVenue`` an account
owner's (SK-VENUE-2). Each reads and writes only the venue table and the grants: no balance,
custody, position or market field moves. The guards follow the spec's precedence, the same
reasons as ``step``; nothing here is consulted. The claims say who may change what: only the
governor changes a venue's record, and only the venue the event names; only an account's
owner changes its grants, and only the one grant the event names; a removed venue stays
removed, so no grant given to it comes back to life (SK-VENUE-1).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

import attrs
import z3

from settlekernel.core.reasons import Reason
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import VALUE_LIMIT
from settlekernel.proofs.symbolic import Ledger
from settlekernel.proofs.transitions import ACTIVE, Consult, ModelStep, cascade

REMOVED: Final = z3.StringVal("removed")
NO_VENUE: Final = z3.StringVal("")
ANY_VENUE: Final = z3.String("any.venue")
ANY_GRANTEE: Final = z3.String("any.grantee")
# The fields of a venue's record, as the ledger names them.
VENUE_FIELDS: Final = (
    "venue_status",
    "venue_house",
    "venue_fee_account",
    "venue_fee_max",
    "venue_oi_max",
    "venue_notional_max",
    "venue_open_lots",
)


def _governor(rules: RuleSet, e: dict[str, Any]) -> tuple[Any, Reason]:
    return e["principal"] != z3.StringVal(rules.roles.governor), Reason.PRINCIPAL_NOT_GOVERNOR


def _limit_guards(rules: RuleSet, e: dict[str, Any]) -> list[tuple[Any, Reason]]:
    """Return SK-RANGE-1 for the two limits (amounts) and the fee ceiling, in order."""
    guards: list[tuple[Any, Reason]] = []
    for field in ("open_interest_max_lots", "notional_max_minor"):
        guards += [
            (e[field] < 1, Reason.AMOUNT_NOT_POSITIVE),
            (e[field] > VALUE_LIMIT - 1, Reason.AMOUNT_TOO_LARGE),
        ]
    fee = e["fee_rate_max_ppm"]
    return [
        *guards,
        (fee < 0, Reason.FEE_RATE_OUT_OF_RANGE),
        (fee > rules.fee_rate_max_ppm, Reason.FEE_RATE_OUT_OF_RANGE),
    ]


def _role_principal(rules: RuleSet, venue: Any) -> Any:
    roles = rules.roles
    names = (roles.operator, *roles.oracles, roles.sequencer, roles.governor)
    return z3.Or(*[venue == z3.StringVal(name) for name in names])


def admit_venue(rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-VENUE-1: admit a venue, or change an admitted one's limits keeping its status."""
    del c
    venue, fee_account = e["venue"], e["fee_account"]
    status = z3.Select(s.venue_status, venue)
    known = status != NO_VENUE
    accepted, reason = cascade(
        [
            _governor(rules, e),
            *_limit_guards(rules, e),
            (z3.And(known, z3.Select(s.venue_house, venue)), Reason.VENUE_INVALID),
            (_role_principal(rules, venue), Reason.VENUE_INVALID),
            (status == REMOVED, Reason.VENUE_INVALID),
            (z3.Not(z3.Select(s.exists, fee_account)), Reason.ACCOUNT_UNKNOWN),
            (z3.Select(s.owner, fee_account) != venue, Reason.PRINCIPAL_NOT_OWNER),
        ]
    )
    store = {
        "venue_status": z3.If(known, status, ACTIVE),
        "venue_house": z3.BoolVal(False),
        "venue_fee_account": fee_account,
        "venue_fee_max": e["fee_rate_max_ppm"],
        "venue_oi_max": e["open_interest_max_lots"],
        "venue_notional_max": e["notional_max_minor"],
    }
    post = attrs.evolve(
        s, **{name: z3.Store(getattr(s, name), venue, value) for name, value in store.items()}
    )
    return ModelStep(accepted, reason, post, writes=())


def venue_status(
    status: str, rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult
) -> ModelStep:
    """SK-VENUE-1: the governor suspends, resumes or removes a venue that is not removed."""
    del c
    venue = e["venue"]
    before = z3.Select(s.venue_status, venue)
    accepted, reason = cascade(
        [
            _governor(rules, e),
            (z3.Or(before == NO_VENUE, before == REMOVED), Reason.VENUE_UNKNOWN),
        ]
    )
    post = attrs.evolve(s, venue_status=z3.Store(s.venue_status, venue, z3.StringVal(status)))
    return ModelStep(accepted, reason, post, writes=())


def grant(value: str, rules: RuleSet, s: Ledger, e: dict[str, Any], c: Consult) -> ModelStep:
    """SK-VENUE-2: an account's owner records a grant to a venue that is admitted."""
    del rules, c
    account, venue = e["account"], e["venue"]
    status = z3.Select(s.venue_status, venue)
    accepted, reason = cascade(
        [
            (z3.Not(z3.Select(s.exists, account)), Reason.ACCOUNT_UNKNOWN),
            (z3.Or(status == NO_VENUE, status == REMOVED), Reason.VENUE_UNKNOWN),
            (e["principal"] != z3.Select(s.owner, account), Reason.PRINCIPAL_NOT_OWNER),
        ]
    )
    row = z3.Store(z3.Select(s.grants, account), venue, z3.StringVal(value))
    post = attrs.evolve(s, grants=z3.Store(s.grants, account, row))
    return ModelStep(accepted, reason, post, writes=())


suspend_venue = functools.partial(venue_status, "suspended")
resume_venue = functools.partial(venue_status, "active")
remove_venue = functools.partial(venue_status, "removed")
authorize_venue = functools.partial(grant, "full")
restrict_venue = functools.partial(grant, "reduce_only")
revoke_venue = functools.partial(grant, "none")


def _venue_unchanged(pre: Ledger, post: Ledger, venue: Any) -> Any:
    return z3.And(
        *[
            z3.Select(getattr(post, f), venue) == z3.Select(getattr(pre, f), venue)
            for f in VENUE_FIELDS
        ]
    )


def _grant_unchanged(pre: Ledger, post: Ledger, account: Any, venue: Any) -> Any:
    return post.grant(account, venue) == pre.grant(account, venue)


def _stays_removed(pre: Ledger, post: Ledger) -> Any:
    before = z3.Select(pre.venue_status, ANY_VENUE)
    return z3.Implies(before == REMOVED, z3.Select(post.venue_status, ANY_VENUE) == REMOVED)


def governed(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """SK-GOV-1: only the governor changes a venue, only the one named; grants untouched.

    For any venue: if its record (status, house flag, fee account, limits, open lots) after
    an accepted event differs from before, the principal is the governor and the venue is
    the event's; no grant of any account changes; a removed venue stays removed; a house
    venue is never made an admitted one (its limits stay the rules').
    """
    post = step.post
    changed = z3.Not(_venue_unchanged(pre, post, ANY_VENUE))
    venue = event["venue"]
    house = z3.And(
        z3.Select(pre.venue_status, venue) != NO_VENUE, z3.Select(pre.venue_house, venue)
    )
    return z3.Implies(
        step.accepted,
        z3.And(
            event["principal"] == z3.StringVal(rules.roles.governor),
            z3.Implies(changed, event["venue"] == ANY_VENUE),
            _grant_unchanged(pre, post, ANY_GRANTEE, ANY_VENUE),
            _stays_removed(pre, post),
            z3.Implies(house, z3.Select(post.venue_house, venue)),
        ),
    )


def owner_granted(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """SK-VENUE-2: only an account's owner changes its grants, only the one named.

    After an accepted grant event the principal owns the account, every (account, venue)
    grant but the one the event names is unchanged, no venue's record changes, and the venue
    was admitted and not removed.
    """
    del rules
    account, venue = event["account"], event["venue"]
    post = step.post
    other = z3.Not(z3.And(account == ANY_GRANTEE, venue == ANY_VENUE))
    status = z3.Select(pre.venue_status, venue)
    return z3.Implies(
        step.accepted,
        z3.And(
            event["principal"] == z3.Select(pre.owner, account),
            z3.Select(pre.exists, account),
            status != NO_VENUE,
            status != REMOVED,
            z3.Implies(other, _grant_unchanged(pre, post, ANY_GRANTEE, ANY_VENUE)),
            _venue_unchanged(pre, post, ANY_VENUE),
        ),
    )
