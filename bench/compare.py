"""Comparable views of the kernel's state and of ``DictKernel``'s, and their differences.

The benchmark trusts a timing only after both implementations agree on every decision and on
the final state; the differential test uses the same views. A view is a dict of plain dicts,
sets and ints, so equality is structural and a difference can be named by component and key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dict_kernel import DictKernel
from settlekernel.core.model import State
from settlekernel.core.reasons import Reason

View = dict[str, Any]


def kernel_view(state: State) -> View:
    """Return the comparable parts of a kernel state."""
    accounts = state.accounts
    return {
        "owners": {account_id: account.owner for account_id, account in accounts.items()},
        "balances": {
            account_id: dict(account.balances) for account_id, account in accounts.items()
        },
        "positions": {
            account_id: {
                instrument: (position.quantity_lots, position.settled_price_ticks)
                for instrument, position in account.positions.items()
            }
            for account_id, account in accounts.items()
        },
        "custody": dict(state.custody),
        "references": {
            instrument_id: instrument.reference_ticks
            for instrument_id, instrument in state.instruments.items()
        },
        "premiums": {
            instrument_id: [
                (p.timestamp_ms, p.premium_ppm, p.lots) for p in instrument.premium_samples
            ]
            for instrument_id, instrument in state.instruments.items()
        },
        "premium_integrals": {
            instrument_id: [
                instrument.premium_integral,
                instrument.premium_since_ms,
                instrument.premium_until_ms,
            ]
            for instrument_id, instrument in state.instruments.items()
        },
        "last_funding_ms": {
            instrument_id: instrument.last_funding_ms
            for instrument_id, instrument in state.instruments.items()
        },
        "funding_index_ticks": {
            instrument_id: instrument.funding_index_ticks
            for instrument_id, instrument in state.instruments.items()
        },
        "settlement_ticks": {
            instrument_id: instrument.settlement_ticks
            for instrument_id, instrument in state.instruments.items()
        },
        "open_interest": dict(state.open_interest),
        "holders": {instrument: set(holders) for instrument, holders in state.holders.items()},
        "prices": {
            underlying: (price.price_ticks, price.timestamp_ms)
            for underlying, price in state.prices.items()
        },
        "history": {
            underlying: [
                (s.timestamp_ms, s.price_ticks, s.cumulative, s.low_ticks, s.high_ticks)
                for s in samples
            ]
            for underlying, samples in state.history.items()
        },
        "settlement_prices": dict(state.settlement_prices),
        "pending_expiries": {
            underlying: list(times) for underlying, times in state.pending_expiries.items() if times
        },
        "socialized_loss": dict(state.socialized_loss),
        "debts": {a: x.debt_minor for a, x in state.accounts.items() if x.debt_minor},
        "claims": {a: x.claim_minor for a, x in state.accounts.items() if x.claim_minor},
        "clock_ms": state.clock_ms,
        "trades": dict(state.trades),
    }


def dict_view(kernel: DictKernel) -> View:
    """Return the comparable parts of a ``DictKernel``, shaped like ``kernel_view``."""
    return {
        "owners": dict(kernel.owners),
        "balances": kernel.balances_view(),
        "positions": kernel.positions_view(),
        "custody": kernel.custody_view(),
        "references": kernel.references_view(),
        "premiums": {i: list(samples) for i, samples in kernel.premiums.items()},
        "premium_integrals": {i: list(v) for i, v in kernel.premium_integrals.items()},
        "last_funding_ms": dict(kernel.last_funding_ms),
        "funding_index_ticks": dict(kernel.funding_index_ticks),
        "settlement_ticks": dict(kernel.settlement_ticks),
        "open_interest": dict(kernel.open_interest),
        "holders": {instrument: set(holders) for instrument, holders in kernel.holders.items()},
        "prices": dict(kernel.prices),
        "history": kernel.history_view(),
        "settlement_prices": dict(kernel.settlement_prices),
        "pending_expiries": kernel.pending_view(),
        "socialized_loss": dict(kernel.socialized_loss),
        "debts": dict(kernel.debts),
        "claims": dict(kernel.claims),
        "clock_ms": kernel.clock_ms,
        "trades": dict(kernel.trades),
    }


def view_differences(expected: View, actual: View, limit: int = 5) -> list[str]:
    """Return a line per differing component, naming up to ``limit`` differing keys."""
    problems: list[str] = []
    for component, want in expected.items():
        got = actual[component]
        if want == got:
            continue
        if isinstance(want, dict) and isinstance(got, dict):
            keys = sorted(
                (k for k in want.keys() | got.keys() if want.get(k) != got.get(k)), key=str
            )
            details = "; ".join(
                f"{k}: kernel={want.get(k)!r} dict={got.get(k)!r}" for k in keys[:limit]
            )
            problems.append(f"{component}: {len(keys)} keys differ: {details}")
        else:
            problems.append(f"{component}: kernel={want!r} dict={got!r}")
    return problems


def decision_differences(
    events: Sequence[object],
    expected: Sequence[Reason | None],
    actual: Sequence[Reason | None],
    offset: int = 0,
    limit: int = 5,
) -> list[str]:
    """Return a line per event (up to ``limit``) where two decision lists disagree."""
    problems: list[str] = []
    if len(expected) != len(actual):
        problems.append(f"{len(expected)} decisions against {len(actual)}")
    for position, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            problems.append(
                f"event {offset + position}: {_label(want)} against {_label(got)}: "
                f"{events[offset + position]!r}"
            )
            if len(problems) >= limit:
                break
    return problems


def _label(decision: Reason | None) -> str:
    return "accepted" if decision is None else decision.value
