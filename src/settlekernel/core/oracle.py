"""The oracle as a total, typed state machine per underlying (spec/30-transitions.md#oracle).

Sources report prices with the timestamps their events carry; the kernel keeps each
source's latest report. At a time ``t`` a report is fresh when ``|t - ts| <= stale_after_ms``:
not too old, and not so far ahead of the kernel clock that one source's bad timestamp could
count for long (sources' clocks drift a little; the quorum, not one source, moves the clock).
The validity of an underlying, in descending severity (SK-ORACLE-2):

1. ``NON_POSITIVE``: the median of the fresh reports is 0 (a quorum of sources signals a
   halt: a report of 0 is how a source says it has no price);
2. ``INSUFFICIENT_SOURCES``: fewer than ``min_sources`` distinct sources ever reported;
3. ``STALE``: fewer than ``min_sources`` reports are fresh;
4. ``DISPUTED``: an even number of fresh reports whose two middle prices differ by more than
   ``dispersion_band_ppm``: no majority backs either, so the last index would decide alone;
5. ``TOO_VOLATILE``: the median is beyond ``band_ppm`` of the last accepted index;
6. ``VALID``.

Freshness is measured at the kernel clock, which the sequencer's ``Tick`` moves whatever the
sources do (SK-TICK): silent sources make the oracle ``STALE``, not a dead price ``VALID``.
The states exclude each other: the first two are decided before there is a median. On a
report, a ``VALID`` median becomes the accepted index; a ``TOO_VOLATILE`` one moves the
index ``band_ppm`` towards the median, no further (SK-ORACLE-3), so no accepted update ever
moves the index by more than the band. The median gives the last accepted index the casting
vote when the count is even (``_median``), and the index's timestamp is the lower median of
the fresh reports' timestamps (never earlier than the last index's): one source of two can
neither move the index nor the clock, and if it disagrees with the other beyond the
dispersion band it cannot freeze the index as valid either: the oracle is ``DISPUTED``.

What each validity allows is one table, ``ADMISSIBLE`` (SK-ORACLE-4).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

import attrs

from settlekernel.core.arith import compute_band_move, compute_mark_ticks, compute_premium_ppm
from settlekernel.core.marks import mark_premium_ppm
from settlekernel.core.model import IndexPrice, IndexSample
from settlekernel.core.outcomes import Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.units import PPM

if TYPE_CHECKING:
    from collections.abc import Iterable

    from immutables import Map

    from settlekernel.core.model import Instrument, State
    from settlekernel.core.rules import UnderlyingRules


class Validity(enum.Enum):
    """An underlying's oracle state. Definition order is severity order (worst first)."""

    NON_POSITIVE = "non_positive"
    INSUFFICIENT_SOURCES = "insufficient_sources"
    STALE = "stale"
    DISPUTED = "disputed"
    TOO_VOLATILE = "too_volatile"
    VALID = "valid"


class Action(enum.Enum):
    """What an event needs a price for."""

    TRADE = "trade"
    MARGIN = "margin"
    LIQUIDATION = "liquidation"
    FUNDING = "funding"
    VARIATION_MARGIN = "variation_margin"
    SETTLEMENT = "settlement"


_V = Validity
# [SK-ORACLE-4] Which validities admit which action. Trading, margin checks, liquidation and
# funding need a valid index; marking may follow a band-limited index; expiry settles on the
# recorded history, so only a halt or a missing quorum stops it. A disputed oracle admits
# settlement only: nothing may move value on a price no majority of live sources backs.
ADMISSIBLE: Final[dict[Action, frozenset[Validity]]] = {
    Action.TRADE: frozenset({_V.VALID}),
    Action.MARGIN: frozenset({_V.VALID}),
    Action.LIQUIDATION: frozenset({_V.VALID}),
    Action.FUNDING: frozenset({_V.VALID}),
    Action.VARIATION_MARGIN: frozenset({_V.VALID, _V.TOO_VOLATILE}),
    Action.SETTLEMENT: frozenset({_V.VALID, _V.TOO_VOLATILE, _V.STALE, _V.DISPUTED}),
}


@attrs.frozen
class Evaluation:
    """The validity of an underlying at a time and what an update would do.

    ``candidate`` is the index an update would accept; ``quorum_ms`` is the quorum's time (the
    lower median of the fresh reports' timestamps), None without a quorum; ``median`` is the
    quorum's median before the band limits it, None without a quorum.
    """

    validity: Validity
    candidate: IndexPrice | None
    quorum_ms: int | None
    median: int | None = None


def _median(prices: list[int], accepted: IndexPrice | None) -> int:
    """Return the median of fresh prices, the last accepted index casting the even vote.

    With an odd count it is the middle price. With an even count the last accepted index
    joins the vote (before any is accepted, the lower middle price is taken). So with ``n``
    fresh reports of which at most ``(n - 1) // 2`` lie, or ``n / 2`` lie for an even ``n``,
    the median stays within the range of the honest reports and the last accepted index: one
    source out of two can freeze the index but never move it (SK-ORACLE-2).
    """
    votes = sorted(
        prices if len(prices) % 2 or accepted is None else [*prices, accepted.price_ticks]
    )
    return votes[(len(votes) - 1) // 2]


def is_disputed(prices: list[int], accepted: IndexPrice | None, dispersion_band_ppm: int) -> bool:
    """Return whether an even count of fresh prices splits beyond the band (SK-ORACLE-2).

    With an odd count the median is a report a majority backs. With an even count the two
    middle prices stand against each other and the last index would cast the deciding vote
    alone; if they differ by more than ``dispersion_band_ppm`` of that index (or of the
    lower middle price before any index), no majority backs either.
    """
    if len(prices) % 2:
        return False
    ordered = sorted(prices)
    low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
    reference = low if accepted is None else accepted.price_ticks
    return (high - low) * PPM > reference * dispersion_band_ppm


def evaluate(
    reports: Map[str, IndexPrice] | None,
    accepted: IndexPrice | None,
    now_ms: int,
    rules: UnderlyingRules,
) -> Evaluation:
    """Return an underlying's validity at ``now_ms`` and the index it would accept (SK-ORACLE-2)."""
    if reports is None or len(reports) < rules.min_sources:
        return Evaluation(Validity.INSUFFICIENT_SOURCES, None, None)
    fresh = [r for r in reports.values() if abs(now_ms - r.timestamp_ms) <= rules.stale_after_ms]
    if len(fresh) < rules.min_sources:
        return Evaluation(Validity.STALE, None, None)
    stamp = sorted(r.timestamp_ms for r in fresh)[(len(fresh) - 1) // 2]
    if accepted is not None:
        # The index's time never goes back, even when an older fresh report joins the quorum.
        stamp = max(stamp, accepted.timestamp_ms)
    median = _median([r.price_ticks for r in fresh], accepted)
    if median <= 0:
        return Evaluation(Validity.NON_POSITIVE, None, stamp, median)
    if is_disputed([r.price_ticks for r in fresh], accepted, rules.dispersion_band_ppm):
        return Evaluation(Validity.DISPUTED, None, stamp, median)
    if accepted is None:
        return Evaluation(Validity.VALID, IndexPrice(median, stamp), stamp, median)
    # [SK-ORACLE-3] Beyond the band, move towards the median by the band, no further.
    index = compute_band_move(accepted.price_ticks, median, rules.band_ppm)
    if abs(median - accepted.price_ticks) * PPM > accepted.price_ticks * rules.band_ppm:
        return Evaluation(Validity.TOO_VOLATILE, IndexPrice(index, stamp), stamp, median)
    return Evaluation(Validity.VALID, IndexPrice(index, stamp), stamp, median)


# Per underlying, the inputs of the last ``validity`` and its result. The inputs are immutable
# and held here, so identity implies equality and the memo is invisible: a margin check of
# every trade asks again between two oracle reports, and the answer cannot have changed.
_LAST_VALIDITY: dict[str, tuple[object, object, int, object, Validity]] = {}


def validity(state: State, underlying: str) -> Validity:
    """Return an underlying's validity now, on the kernel clock (SK-ORACLE-5 asks it)."""
    reports = state.reports.get(underlying)
    accepted = state.prices.get(underlying)
    rules = state.rules.underlying_by_symbol[underlying]
    last = _LAST_VALIDITY.get(underlying)
    if (
        last is not None
        and last[0] is reports
        and last[1] is accepted
        and last[2] == state.clock_ms
        and last[3] is rules
    ):
        return last[4]
    result = evaluate(reports, accepted, state.clock_ms, rules).validity
    _LAST_VALIDITY[underlying] = (reports, accepted, state.clock_ms, rules, result)
    return result


def check_admissible(state: State, underlyings: Iterable[str], action: Action) -> Rejected | None:
    """Reject an action that needs a price of an underlying whose oracle does not admit it."""
    for underlying in sorted(set(underlyings)):
        state_now = validity(state, underlying)
        if state_now not in ADMISSIBLE[action]:
            return Rejected(
                Reason.ORACLE_NOT_ADMISSIBLE,
                f"{underlying} oracle is {state_now.value}: {action.value} is not admissible",
            )
    return None


def settlement_key(underlying: str, expiry_ms: int) -> str:
    """Return the key of a fixed settlement price: ``<underlying>@<expiry_ms>`` (SK-EXPIRY-2)."""
    return f"{underlying}@{expiry_ms}"


def trade_premium_ppm(price_ticks: int, index_ticks: int, mark_band_ppm: int) -> int:
    """Return a trade's premium over the index in ppm, toward zero, clamped (SK-MARK-1)."""
    return compute_premium_ppm(price_ticks, index_ticks, mark_band_ppm)


def mark_premium(state: State, instrument: Instrument) -> int:
    """Return an instrument's mark premium now: its samples' weighted median (SK-MARK-1)."""
    window_ms = state.rules.underlying_by_symbol[instrument.underlying].mark_window_ms
    return mark_premium_ppm(instrument.premium_samples, state.clock_ms, window_ms)


def mark_ticks(state: State, instrument_id: str) -> int:
    """Return a perpetual's or future's mark: the index shifted by the mark premium (SK-MARK-1).

    ``index + floor(index * premium_ppm / 10**6)``, never below one tick, with the premium the
    size-weighted median of the recent trades between different owners (``marks``): the mark
    follows the index and keeps the basis the market shows, within the mark band.
    """
    instrument = state.instruments[instrument_id]
    index = state.prices[instrument.underlying].price_ticks
    return compute_mark_ticks(index, mark_premium(state, instrument))


def with_history(
    history: tuple[IndexSample, ...], accepted: IndexPrice, interval_ms: int, samples_max: int
) -> tuple[IndexSample, ...]:
    """Record an accepted index for settlement TWAPs (SK-EXPIRY-2).

    Every accepted index extends the running integral exactly. The history keeps its first
    sample (where the integral starts) and the *last* sample of each ``interval_ms`` bucket:
    a new index in the head's bucket replaces the head, unless the head is the first sample.
    So between two kept samples the index changed only inside the later one's bucket, and
    the integral is exact at every bucket boundary and at every kept sample; each sample also
    carries the lowest and highest index in force in its bucket since the sample before. At
    most ``samples_max`` samples are kept, the oldest dropped first.
    """
    price = accepted.price_ticks
    if not history:
        return (IndexSample(accepted.timestamp_ms, price, 0, price, price),)
    head = history[-1]
    cumulative = head.cumulative + head.price_ticks * (accepted.timestamp_ms - head.timestamp_ms)
    same_bucket = head.timestamp_ms // interval_ms == accepted.timestamp_ms // interval_ms
    if same_bucket and len(history) >= 2:
        sample = IndexSample(
            accepted.timestamp_ms,
            price,
            cumulative,
            min(head.low_ticks, price),
            max(head.high_ticks, price),
        )
        return (*history[:-1], sample)[-samples_max:]
    # A new sample starts with the head's index in force until this one.
    low, high = min(head.price_ticks, price), max(head.price_ticks, price)
    sample = IndexSample(accepted.timestamp_ms, price, cumulative, low, high)
    return (*history, sample)[-samples_max:]


def _integral(samples: list[IndexSample], at_ms: int) -> int:
    """Return the index's time integral up to ``at_ms`` from the last sample at or before it.

    Exact when ``at_ms`` is a bucket boundary or the head's time or later (SK-EXPIRY-2).
    """
    last = next(sample for sample in reversed(samples) if sample.timestamp_ms <= at_ms)
    return last.cumulative + last.price_ticks * (at_ms - last.timestamp_ms)


def settlement_window_start(
    history: tuple[IndexSample, ...], expiry_ms: int, window_ms: int, interval_ms: int
) -> int:
    """Return where the settlement window starts: a bucket boundary, or the first sample.

    ``expiry - window`` rounded up to the next multiple of ``interval_ms``, where the
    integral is exact, and never before the first sample (SK-EXPIRY-2).
    """
    boundary = -(-(expiry_ms - window_ms) // interval_ms) * interval_ms
    return max(boundary, history[0].timestamp_ms)


def settlement_twap(
    history: tuple[IndexSample, ...], expiry_ms: int, window_ms: int, interval_ms: int
) -> int | None:
    """Return the exact time-weighted average index over the settlement window (SK-EXPIRY-2).

    ``history`` is as it stood before the first index at or after expiry, so its head is the
    index in force at expiry. The window runs from ``settlement_window_start`` to expiry;
    both integrals are exact there, so the average is that of the indexes actually in force
    and lies within their range. Rounded down: settlement is zero-sum between holders, so
    rounding moves nothing to anyone. If the window is empty (shorter than the rounding to a
    boundary) it is the index in force at expiry; None if no sample is at or before expiry.
    """
    samples = [sample for sample in history if sample.timestamp_ms <= expiry_ms]
    if not samples:
        return None
    start_ms = settlement_window_start(history, expiry_ms, window_ms, interval_ms)
    if start_ms >= expiry_ms:
        return samples[-1].price_ticks
    return (_integral(samples, expiry_ms) - _integral(samples, start_ms)) // (expiry_ms - start_ms)
