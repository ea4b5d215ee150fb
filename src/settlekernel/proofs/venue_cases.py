"""Reachable cases for the venue models: admissions, status changes, grants, venue trades.

Each path opens a market, a few accounts and two would-be venues that own fee accounts,
then draws venue events and trades from a seed: by the governor or not, of venues that are
house, admitted, suspended, removed, roles or nobody, with grants full, reduce-only or none,
and trades that grow, shrink or flip positions through each venue, near its limits. The
differential checks (``differential.run``) compare every one with ``step`` (SK-PROOF-2).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

import attrs

from settlekernel.core.events import (
    AdmitVenue,
    AuthorizeVenue,
    Deposit,
    OpenAccount,
    RemoveVenue,
    RestrictVenue,
    ResumeVenue,
    RevokeVenue,
    SuspendVenue,
    Trade,
)
from settlekernel.core.model import State
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import VALUE_LIMIT
from settlekernel.proofs.replay import perpetual_market
from settlekernel.proofs.walks import set_up, walk

_PERPETUAL: Final = "BTC-PERP"
# Trading accounts and their owners; the venues own their fee accounts.
_OWNERS: Final = {"a1": "alice", "a2": "alice", "b1": "bob", "c1": "carol"}
_VENUES: Final = {"v1": "v1-fees", "v2": "v2-fees"}
_STATUS: Final = (SuspendVenue, ResumeVenue, RemoveVenue)
_GRANTS: Final = (AuthorizeVenue, RestrictVenue, RevokeVenue)


def _setup(rules: RuleSet) -> list[object]:
    events: list[object] = list(perpetual_market(rules, _PERPETUAL, "BTC"))
    owners = {**_OWNERS, **{fees: venue for venue, fees in _VENUES.items()}}
    for account, owner in owners.items():
        events.append(OpenAccount(principal=owner, account=account))
        events.append(Deposit(principal=owner, account=account, asset="USDC", amount_minor=10**11))
    for venue, fees in _VENUES.items():
        events.append(
            AdmitVenue(
                principal=rules.roles.governor,
                venue=venue,
                fee_account=fees,
                open_interest_max_lots=40,
                notional_max_minor=2 * 10**9,
                fee_rate_max_ppm=1_000,
            )
        )
    events += [
        AuthorizeVenue(principal=_OWNERS[a], account=a, venue="v1") for a in ("a1", "b1", "c1")
    ]
    events.append(RestrictVenue(principal="alice", account="a2", venue="v1"))
    events += [AuthorizeVenue(principal=_OWNERS[a], account=a, venue="v2") for a in ("a2", "b1")]
    return events


def _venue(rng: random.Random, rules: RuleSet) -> str:
    return rng.choice([*_VENUES, *_VENUES, *_VENUES, rules.roles.matchers[0], "nobody"])


def _admit(rng: random.Random, rules: RuleSet) -> AdmitVenue:
    """Return an admission or a change of limits, valid or with one field made wrong."""
    venue = rng.choice([*_VENUES, *_VENUES, *_VENUES, "v3"])
    event = AdmitVenue(
        principal=rules.roles.governor,
        venue=venue,
        fee_account=_VENUES.get(venue, "v1-fees"),
        open_interest_max_lots=rng.choice([5, 20, 40, 1_000]),
        notional_max_minor=rng.choice([10**8, 3 * 10**9, 10**11]),
        fee_rate_max_ppm=rng.choice([0, 500, 1_000, rules.fee_rate_max_ppm]),
    )
    wrong: dict[str, tuple[object, ...]] = {
        "principal": (rules.roles.operator, "v1", "mallory"),
        "venue": (rules.roles.matchers[0], rules.roles.operator, rules.roles.governor, "v3"),
        "fee_account": ("a1", "ghost", "v2-fees"),
        "open_interest_max_lots": (0, -1, VALUE_LIMIT),
        "notional_max_minor": (0, VALUE_LIMIT - 1, VALUE_LIMIT),
        "fee_rate_max_ppm": (-1, rules.fee_rate_max_ppm + 1),
    }
    if rng.random() < 0.5:
        field = rng.choice(sorted(wrong))
        event = attrs.evolve(event, **{field: rng.choice(wrong[field])})  # type: ignore[arg-type]
    return event


def _owner_event(rng: random.Random, rules: RuleSet, cls: type) -> object:
    account = rng.choice([*_OWNERS, *_OWNERS, "ghost"])
    owner = _OWNERS.get(account, "nobody")
    return cls(
        principal=rng.choice([owner] * 5 + ["mallory", "v1"]),
        account=account,
        venue=_venue(rng, rules),
    )


def _trade(rng: random.Random, rules: RuleSet, number: int) -> Trade:
    buyer, seller = rng.sample([*_OWNERS, *_OWNERS, "ghost", "v1-fees", "v2-fees"], 2)
    return Trade(
        principal=rng.choice([*_VENUES, *_VENUES, *_VENUES, rules.roles.matchers[0], "nobody"]),
        trade_id=f"vt{number}",
        buyer=buyer,
        seller=seller,
        instrument=_PERPETUAL,
        quantity_lots=rng.choice([1, 2, 5, 10, 25]),
        price_ticks=rng.choice([6_000_000, 5_990_000, 6_010_000]),
        buyer_fee_rate_ppm=rng.choice([0, 333, 800, 1_000]),
        seller_fee_rate_ppm=rng.choice([0, 500, 500, 1_200]),
    )


_KINDS: Final = (AdmitVenue, *_STATUS, ResumeVenue, *_GRANTS, Trade, Trade, Trade)


def venue_event(rng: random.Random, state: State, number: int) -> object:
    """Return one venue event or venue trade, authorised or not, for ``state``."""
    rules = state.rules
    cls = rng.choice(_KINDS)
    if cls is AdmitVenue:
        return _admit(rng, rules)
    if cls in _STATUS:
        # Removal is for good: mostly refused, so the venues live long enough to trade.
        governor = rng.random() < (0.4 if cls is RemoveVenue else 0.8)
        return cls(
            principal=rules.roles.governor if governor else "mallory",
            venue=_venue(rng, rules),
        )
    if cls in _GRANTS:
        return _owner_event(rng, rules, cls)
    return _trade(rng, rules, number)


def venue_cases(
    rules: RuleSet, seed: int, paths: int, events_per_path: int = 50
) -> Iterator[tuple[State, object]]:
    """Yield (reachable state, venue event) pairs along ``paths`` seeded walks.

    The walks are short, so a removal (for good) or a suspension does not end the story of
    a venue for the rest of the run; each class gets about one event in nine.
    """
    rng = random.Random(seed)
    for _ in range(paths):
        yield from walk(set_up(rules, _setup(rules)), rng, events_per_path, venue_event)
