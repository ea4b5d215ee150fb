"""Trade capture, novation and atomic settlement (spec/30-transitions.md#trade, SK-TRADE).

A trade is settled against the instrument's reference price (SK-SETTLE-2), the way a
clearing house settles trade-date variation: the buyer pays the seller
``quantity * (price - reference) * multiplier`` and both positions are booked at the
reference. For an option the reference is 0, so the same formula is the premium. Fees are
charged on the notional ``quantity * price * multiplier``. Both legs, the settlement, the
premium and the fees happen together or not at all.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import attrs
from immutables import Map

from settlekernel.core.arith import (
    FeeSplit,
    compute_fee_split,
    compute_notional_minor,
    compute_settlement_minor,
)
from settlekernel.core.events import Trade
from settlekernel.core.guards import check_ranges
from settlekernel.core.marks import integrate_premium, with_sample
from settlekernel.core.model import (
    Account,
    Instrument,
    MarginEntry,
    PremiumSample,
    State,
    Venue,
    VenueStatus,
    replace_state,
)
from settlekernel.core.oracle import Action, check_admissible, trade_premium_ppm
from settlekernel.core.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, instrument_key, touch, trade_key
from settlekernel.core.units import RESIDUE_ACCOUNT
from settlekernel.kernel.ledger import with_balance, with_settlement
from settlekernel.kernel.transitions.venues import (
    check_venue_fee,
    check_venue_grants,
    check_venue_limits,
    open_interest_added,
    with_trade_recorded,
)
from settlekernel.margin.accounts import cache_margins, check_trade_margin, margin_underlyings

# Payload fields compared on a replayed trade id, in precedence order (SK-TRADE-2).
_PAYLOAD_FIELDS: Final = (
    ("principal", Reason.TRADE_EXISTS_WITH_DIFFERENT_PRINCIPAL),
    ("buyer", Reason.TRADE_EXISTS_WITH_DIFFERENT_BUYER),
    ("seller", Reason.TRADE_EXISTS_WITH_DIFFERENT_SELLER),
    ("instrument", Reason.TRADE_EXISTS_WITH_DIFFERENT_INSTRUMENT),
    ("quantity_lots", Reason.TRADE_EXISTS_WITH_DIFFERENT_QUANTITY),
    ("price_ticks", Reason.TRADE_EXISTS_WITH_DIFFERENT_PRICE),
    ("buyer_fee_rate_ppm", Reason.TRADE_EXISTS_WITH_DIFFERENT_BUYER_FEE_RATE),
    ("seller_fee_rate_ppm", Reason.TRADE_EXISTS_WITH_DIFFERENT_SELLER_FEE_RATE),
)


def process_trade(state: State, event: Trade) -> Outcome:
    """Novate and settle a trade between two accounts, atomically (SK-TRADE)."""
    rules = state.rules
    # Verify the principal is a venue (SK-VENUE-1).
    venue = state.venues.get(event.principal)
    if venue is None:
        return Rejected(
            Reason.PRINCIPAL_NOT_MATCHER, f"principal {event.principal} is not a matching venue"
        )
    # Verify the trade id was never settled.
    settled = state.trades.get(event.trade_id)
    if settled is not None:
        return _reject_settled(settled, event)
    # Verify governance has not suspended or removed the venue.
    if venue.status is not VenueStatus.ACTIVE:
        return Rejected(Reason.VENUE_SUSPENDED, f"venue {venue.id} is {venue.status.value}")
    # Verify quantity, price and fee rates are within bounds.
    rejection = check_ranges(event, rules) or check_venue_fee(event, venue)
    if rejection is not None:
        return rejection
    # Verify buyer and seller are different accounts.
    if event.buyer == event.seller:
        return Rejected(Reason.SELF_TRADE, f"account {event.buyer} is both buyer and seller")
    # Verify the instrument and both accounts exist.
    instrument = state.instruments.get(event.instrument)
    if instrument is None:
        return Rejected(Reason.INSTRUMENT_UNKNOWN, f"instrument {event.instrument} is not listed")
    buyer = state.accounts.get(event.buyer)
    if buyer is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.buyer} does not exist")
    seller = state.accounts.get(event.seller)
    if seller is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.seller} does not exist")
    # Verify both owners let the venue make this trade on their accounts (SK-VENUE-2).
    rejection = check_venue_grants(state, event, venue, buyer, seller)
    if rejection is not None:
        return rejection
    # Verify the instrument is still trading.
    if instrument.expiry_ms is not None and instrument.expiry_ms <= state.clock_ms:
        return Rejected(
            Reason.INSTRUMENT_EXPIRED,
            f"instrument {instrument.id} expired at {instrument.expiry_ms}, "
            f"kernel clock is {state.clock_ms}",
        )
    # Verify the market data exists to margin the new positions with (SK-TRADE-7): an index
    # price, and for an option a volatility.
    if instrument.underlying not in state.prices:
        return Rejected(
            Reason.PRICE_UNAVAILABLE, f"no index price for underlying {instrument.underlying}"
        )
    if not instrument.is_linear and instrument.underlying not in state.volatilities:
        return Rejected(
            Reason.PRICE_UNAVAILABLE, f"no volatility for underlying {instrument.underlying}"
        )
    # Verify the oracle admits trading the underlying and margining both accounts (SK-ORACLE-5).
    rejection = check_admissible(state, (instrument.underlying,), Action.TRADE) or (
        check_admissible(
            state,
            margin_underlyings(state, buyer) | margin_underlyings(state, seller),
            Action.MARGIN,
        )
    )
    if rejection is not None:
        return rejection
    return _settle(state, event, venue, instrument, buyer, seller)


def _reject_settled(settled: Trade, event: Trade) -> Rejected:
    """Reject a replayed trade id: ``exists`` or the first differing field (SK-TRADE-2)."""
    for field, reason in _PAYLOAD_FIELDS:
        settled_value = getattr(settled, field)
        if settled_value != getattr(event, field):
            return Rejected(
                reason,
                f"trade {event.trade_id} was settled with {field}={settled_value!r}, "
                f"not {getattr(event, field)!r}",
            )
    return Rejected(Reason.TRADE_EXISTS, f"trade {event.trade_id} is already settled")


class _Leg(NamedTuple):
    """One side of a trade: the account before and after, and its fee."""

    before: Account
    after: Account
    fee: FeeSplit


def _reference_ticks(instrument: Instrument, price_ticks: int) -> int:
    """Return the price positions are booked at (SK-SETTLE-2)."""
    if not instrument.is_linear:
        return 0
    if instrument.reference_ticks == 0:
        # The first trade of a perpetual or future sets its reference price.
        return price_ticks
    return instrument.reference_ticks


def _quantity_after(account: Account, instrument_id: str, quantity_delta: int) -> int:
    held = account.positions.get(instrument_id)
    return quantity_delta if held is None else held.quantity_lots + quantity_delta


def _settle(  # noqa: PLR0913, PLR0917 (the trade and everything it names)
    state: State,
    event: Trade,
    venue: Venue,
    instrument: Instrument,
    buyer: Account,
    seller: Account,
) -> Outcome:
    """Check the would-be post-state of both legs, then commit them together."""
    rules = state.rules
    asset = instrument.settlement_asset
    reference_ticks = _reference_ticks(instrument, event.price_ticks)
    quantity = event.quantity_lots
    # The buyer pays this to the seller; negative means the seller pays the buyer.
    settlement_minor = compute_settlement_minor(
        quantity, event.price_ticks, reference_ticks, instrument.multiplier_minor
    )
    notional_minor = compute_notional_minor(
        quantity, event.price_ticks, instrument.multiplier_minor
    )
    sides = (
        (
            buyer,
            quantity,
            -settlement_minor,
            compute_fee_split(notional_minor, event.buyer_fee_rate_ppm),
        ),
        (
            seller,
            -quantity,
            settlement_minor,
            compute_fee_split(notional_minor, event.seller_fee_rate_ppm),
        ),
    )
    # Verify both positions stay within the count and size limits.
    rejection = _check_position_limits(
        instrument.id, sides, rules.positions_per_account_max, rules.position_lots_max
    )
    if rejection is not None:
        return rejection
    # Verify both accounts can pay their settlement and fee.
    legs = _legs_after(sides, asset, instrument.id, reference_ticks)
    if isinstance(legs, Rejected):
        return legs
    # Verify the venue stays within its own limits (SK-VENUE-4).
    rejection = check_venue_limits(
        venue, instrument, event.price_ticks, tuple((leg.before, leg.after) for leg in legs)
    )
    if rejection is not None:
        return rejection
    # Verify both accounts meet initial margin afterwards, or reduce their risk (SK-MARGIN-3).
    instruments = instruments_after(
        state,
        instrument,
        event.price_ticks,
        reference_ticks,
        event.quantity_lots,
        wash=buyer.owner == seller.owner,
    )
    reports: list[MarginEntry] = []
    for leg in legs:
        rejection, entry = check_trade_margin(state, leg.before, leg.after, instruments)
        if rejection is not None:
            return rejection
        reports.append(entry)
    # From here the trade must succeed.
    return Accepted(
        _commit(state, event, venue, instrument, instruments, legs, reports),
        _postings(event, venue, instrument, settlement_minor, legs),
    )


def instruments_after(  # noqa: PLR0913 (the traded instrument and what the trade says of it)
    state: State,
    instrument: Instrument,
    price_ticks: int,
    reference_ticks: int,
    lots: int = 0,
    *,
    wash: bool = True,
) -> Map[str, Instrument]:
    """Return the instruments with the traded one at its new reference and premium samples.

    A trade of a linear instrument between accounts of different owners leaves a premium
    sample: its premium over the index clamped to the mark band, and its size (SK-MARK-1);
    funding's premium integral is first brought up to the clock, so the sample counts from
    now on. A wash (one owner on both sides) leaves none (SK-MARK-2). The margin checks of
    both legs read the instrument as it will be.
    """
    changed = instrument
    if reference_ticks != instrument.reference_ticks:
        changed = attrs.evolve(changed, reference_ticks=reference_ticks)
    if instrument.is_linear and not wash:
        rules = state.rules.underlying_by_symbol[instrument.underlying]
        premium_ppm = trade_premium_ppm(
            price_ticks, state.prices[instrument.underlying].price_ticks, rules.mark_band_ppm
        )
        sample = PremiumSample(state.clock_ms, premium_ppm, lots)
        changed = attrs.evolve(
            changed,
            premium_samples=with_sample(
                instrument.premium_samples,
                sample,
                rules.mark_window_ms,
                state.rules.mark_samples_max,
            ),
            premium_integral=instrument.premium_integral
            + integrate_premium(
                instrument.premium_samples,
                instrument.premium_until_ms,
                state.clock_ms,
                rules.mark_window_ms,
            ),
            premium_until_ms=state.clock_ms,
        )
    if changed is instrument:
        return state.instruments
    return state.instruments.set(instrument.id, changed)


def _legs_after(
    sides: tuple[tuple[Account, int, int, FeeSplit], ...],
    asset: str,
    instrument_id: str,
    reference_ticks: int,
) -> list[_Leg] | Rejected:
    """Return both accounts after settlement and fees, or reject the first that cannot pay."""
    legs: list[_Leg] = []
    for account, quantity_delta, cash_minor, fee in sides:
        balance_minor = account.balance(asset) + cash_minor - fee.charged_minor
        if balance_minor < 0:
            return Rejected(
                Reason.INSUFFICIENT_FUNDS,
                f"account {account.id} holds {account.balance(asset)} {asset}, needs "
                f"{fee.charged_minor - cash_minor} for settlement and fee",
            )
        after = with_settlement(
            account,
            asset=asset,
            amount_minor=balance_minor,
            instrument_id=instrument_id,
            quantity_lots=_quantity_after(account, instrument_id, quantity_delta),
            settled_price_ticks=reference_ticks,
        )
        legs.append(_Leg(account, after, fee))
    return legs


def _check_position_limits(
    instrument_id: str,
    sides: tuple[tuple[Account, int, int, FeeSplit], ...],
    positions_max: int,
    position_lots_max: int,
) -> Rejected | None:
    """Reject a trade that opens one position too many or makes one too large."""
    for account, _, _, _ in sides:
        if instrument_id not in account.positions and len(account.positions) >= positions_max:
            return Rejected(
                Reason.POSITION_COUNT_EXCEEDED,
                f"account {account.id} already holds positions_per_account_max={positions_max}",
            )
    for account, quantity_delta, _, _ in sides:
        quantity_after = _quantity_after(account, instrument_id, quantity_delta)
        if abs(quantity_after) > position_lots_max:
            return Rejected(
                Reason.POSITION_TOO_LARGE,
                f"account {account.id} would hold {quantity_after} lots of {instrument_id}, "
                f"beyond position_lots_max={position_lots_max}",
            )
    return None


def _commit(  # noqa: PLR0913, PLR0917 (everything one trade writes)
    state: State,
    event: Trade,
    venue: Venue,
    instrument: Instrument,
    instruments: Map[str, Instrument],
    legs: list[_Leg],
    reports: list[MarginEntry],
) -> State:
    """Write both legs, the fee and residue credits, open interest and the trade record."""
    asset = instrument.settlement_asset
    fee_pool_minor = legs[0].fee.pool_minor + legs[1].fee.pool_minor
    residue_minor = legs[0].fee.residue_minor + legs[1].fee.residue_minor
    keys = [trade_key(event.trade_id)]
    with state.accounts.mutate() as accounts:
        for leg in legs:
            accounts[leg.after.id] = leg.after
            keys.append(account_key(leg.after.id))
        for system_id, credit_minor in (
            (venue.fee_account, fee_pool_minor),
            (RESIDUE_ACCOUNT, residue_minor),
        ):
            if credit_minor > 0:
                system = accounts[system_id]
                accounts[system_id] = with_balance(
                    system, asset, system.balance(asset) + credit_minor
                )
                keys.append(account_key(system_id))
        new_accounts = accounts.finish()
    if instruments is not state.instruments:
        keys.append(instrument_key(instrument.id))
    open_interest, holders = _open_interest_after(state, instrument.id, legs)
    added = open_interest_added(
        tuple(leg.before for leg in legs), tuple(leg.after for leg in legs), instrument.id
    )
    venues, venue_leaf = with_trade_recorded(state, venue, instrument.id, added)
    if venue_leaf is not None:
        keys.append(venue_leaf)
    return replace_state(
        state,
        accounts=new_accounts,
        venues=venues,
        instruments=instruments,
        trades=state.trades.set(event.trade_id, event),
        open_interest=open_interest,
        holders=holders,
        commitment=touch(state.commitment, *keys),
        margins=cache_margins(state, reports),
    )


def _open_interest_after(
    state: State, instrument_id: str, legs: list[_Leg]
) -> tuple[Map[str, int], Map[str, Map[str, None]]]:
    """Return the derived open-interest and holder indexes (INV-OPEN-INTEREST-ZERO-SUM)."""
    open_interest_lots = state.open_interest[instrument_id]
    holders = state.holders[instrument_id]
    for leg in legs:
        old = leg.before.positions.get(instrument_id)
        new = leg.after.positions.get(instrument_id)
        old_lots = 0 if old is None else old.quantity_lots
        new_lots = 0 if new is None else new.quantity_lots
        open_interest_lots += max(new_lots, 0) - max(old_lots, 0)
        if new is None:
            holders = holders.delete(leg.after.id) if leg.after.id in holders else holders
        elif old is None:
            holders = holders.set(leg.after.id, None)
    return (
        state.open_interest.set(instrument_id, open_interest_lots),
        state.holders.set(instrument_id, holders),
    )


def _postings(
    event: Trade, venue: Venue, instrument: Instrument, settlement_minor: int, legs: list[_Leg]
) -> tuple[Posting, ...]:
    """Return the double entries of a trade: settlement or premium, then fees and dust."""
    asset = instrument.settlement_asset
    code = PostingCode.TRADE_SETTLEMENT if instrument.is_linear else PostingCode.PREMIUM
    postings: list[Posting] = []
    if settlement_minor > 0:
        postings.append(Posting(event.buyer, event.seller, asset, settlement_minor, code))
    elif settlement_minor < 0:
        postings.append(Posting(event.seller, event.buyer, asset, -settlement_minor, code))
    for leg in legs:
        if leg.fee.pool_minor > 0:
            postings.append(
                Posting(leg.after.id, venue.fee_account, asset, leg.fee.pool_minor, PostingCode.FEE)
            )
        if leg.fee.residue_minor > 0:
            postings.append(
                Posting(
                    leg.after.id,
                    RESIDUE_ACCOUNT,
                    asset,
                    leg.fee.residue_minor,
                    PostingCode.ROUNDING,
                )
            )
    return tuple(postings)
