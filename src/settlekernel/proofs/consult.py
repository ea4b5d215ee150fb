"""Consulted guards answered by the kernel itself, for the differential checks (SK-PROOF-2).

When a model is evaluated on a concrete state, each consulted guard (``transitions.Consult``)
is asked with ground arguments; this class evaluates them and answers the way the kernel's
own code answers for exactly those arguments. A model that asks about the wrong account or
the wrong balance (say the balance before a debit) gets a different answer from the one the
kernel acted on, and the differential check reports the disagreement.
"""

from __future__ import annotations

from typing import Any

import z3
from immutables import Map

from settlekernel.core.arith import compute_settlement_minor
from settlekernel.core.events import Trade
from settlekernel.core.model import Account, IndexPrice, State
from settlekernel.core.oracle import Action, check_admissible, mark_ticks, settlement_key
from settlekernel.core.oracle import evaluate as evaluate_oracle
from settlekernel.core.outcomes import PostingCode
from settlekernel.kernel.ledger import with_balance, with_position, with_settlement
from settlekernel.kernel.transitions.debt import liquidation_value_minor, true_deficit_minor
from settlekernel.kernel.transitions.liquidation import (
    RUNGS,
    _check_liquidator,
    _rung,
    closes,
    penalty_cap,
    plan,
    ranking,
    transfer_price_ticks,
)
from settlekernel.kernel.transitions.trading import instruments_after
from settlekernel.kernel.transitions.waterfall import account_after
from settlekernel.margin.accounts import (
    account_margin,
    check_initial_margin,
    check_margin_admissible,
    check_trade_margin,
    margin_underlyings,
)
from settlekernel.proofs.engine import as_python, evaluate


def _ground(term: Any) -> Any:
    return as_python(evaluate(term))


class KernelConsult:
    """Answer consulted guards about one concrete state and event from the kernel's code."""

    def __init__(self, state: State, event: object) -> None:
        """Bind the state the event is applied to."""
        self.state = state
        self.event = event
        self._plans: dict[tuple[str, str], tuple[bool, int, int, Any] | None] = {}

    def _account(self, term: Any) -> Account | None:
        return self.state.accounts.get(str(_ground(term)))

    def margin_admissible(self, account: Any) -> Any:
        """Return the kernel's SK-ORACLE-5 answer for margining ``account``."""
        found = self._account(account)
        return z3.BoolVal(found is not None and check_margin_admissible(self.state, found) is None)

    def initial_margin_ok(self, account: Any, asset: Any, balance: Any) -> Any:
        """Return whether the kernel finds the would-be account at or above initial margin."""
        found = self._account(account)
        amount = int(_ground(balance))
        symbol = str(_ground(asset))
        # A guard earlier in the cascade rejects these cases; any answer will do.
        if found is None or amount < 0 or symbol not in self.state.rules.asset_by_symbol:
            return z3.BoolVal(False)
        debited = with_balance(found, symbol, amount)
        return z3.BoolVal(check_initial_margin(self.state, debited)[0] is None)

    def trade_admissible(self, instrument: Any, buyer: Any, seller: Any) -> Any:
        """Return the kernel's SK-ORACLE-5 answer for this trade and both margin checks."""
        listed = self.state.instruments.get(str(_ground(instrument)))
        parties = (self._account(buyer), self._account(seller))
        if listed is None or parties[0] is None or parties[1] is None:
            return z3.BoolVal(False)
        underlyings = margin_underlyings(self.state, parties[0]) | margin_underlyings(
            self.state, parties[1]
        )
        rejection = check_admissible(self.state, (listed.underlying,), Action.TRADE) or (
            check_admissible(self.state, underlyings, Action.MARGIN)
        )
        return z3.BoolVal(rejection is None)

    def trade_margin_ok(
        self, account: Any, balance: Any, instrument: Any, quantity: Any, reference: Any
    ) -> Any:
        """Return whether the kernel's SK-MARGIN-3 check passes for this would-be leg."""
        state, event = self.state, self.event
        listed = state.instruments.get(str(_ground(instrument)))
        before = self._account(account)
        amount = int(_ground(balance))
        if listed is None or before is None or amount < 0 or not isinstance(event, Trade):
            return z3.BoolVal(False)
        if listed.underlying not in state.prices:
            return z3.BoolVal(False)
        reference_ticks = int(_ground(reference))
        instruments = instruments_after(state, listed, event.price_ticks, reference_ticks)
        after = with_settlement(
            before,
            asset=listed.settlement_asset,
            amount_minor=amount,
            instrument_id=listed.id,
            quantity_lots=int(_ground(quantity)),
            settled_price_ticks=reference_ticks,
        )
        return z3.BoolVal(check_trade_margin(state, before, after, instruments)[0] is None)

    def _pair(self, account: Any, liquidator: Any) -> tuple[Account, Account] | None:
        found, taker = self._account(account), self._account(liquidator)
        return None if found is None or taker is None else (found, taker)

    def liquidation_admissible(self, account: Any, liquidator: Any) -> Any:
        """Return the kernel's SK-ORACLE-5 answer for liquidating with both accounts."""
        pair = self._pair(account, liquidator)
        if pair is None:
            return z3.BoolVal(False)
        underlyings = margin_underlyings(self.state, pair[0]) | margin_underlyings(
            self.state, pair[1]
        )
        return z3.BoolVal(check_admissible(self.state, underlyings, Action.LIQUIDATION) is None)

    def liquidatable(self, account: Any) -> Any:
        """Return the kernel's SK-PM-6 answer, computed afresh."""
        found = self._account(account)
        if found is None or not found.positions:
            return z3.BoolVal(False)
        return z3.BoolVal(account_margin(self.state, found).is_liquidatable)

    def _ladder(self, account: Any, liquidator: Any) -> tuple[bool, int, int, Any] | None:
        """Return (bankrupt?, rung, cap, books) of the kernel's plan, or None if no plan."""
        key = (str(_ground(account)), str(_ground(liquidator)))
        if key not in self._plans:
            self._plans[key] = self._find_ladder(account, liquidator)
        return self._plans[key]

    def _find_ladder(self, account: Any, liquidator: Any) -> tuple[bool, int, int, Any] | None:
        pair = self._pair(account, liquidator)
        # The kernel plans only past checks 1-4: another account, both known, admissible.
        if (
            pair is None
            or pair[0].id == pair[1].id
            or not z3.is_true(self.liquidation_admissible(account, liquidator))
        ):
            return None
        found, taker = pair
        if not found.positions and not found.debt_minor:
            return None
        before = account_margin(self.state, found)
        if not before.is_liquidatable and not found.debt_minor:
            return None
        for rung in range(0 if found.debt_minor else 1, RUNGS + 1):
            taken = closes(self.state, found, rung)
            books = _rung(self.state, found, taker.id, before, taken)
            if books is not None:
                capped = penalty_cap(self.state, found, before, taken)
                assert capped is not None  # The rung was feasible.
                return False, rung, capped[0], books
        return True, RUNGS, 0, plan(self.state, found, taker.id, before)

    def plan(self, account: Any, liquidator: Any) -> tuple[Any, Any, Any]:
        """Return the kernel ladder's plan: (bankrupt?, rung, penalty cap)."""
        found = self._ladder(account, liquidator)
        if found is None:
            return z3.BoolVal(False), z3.IntVal(0), z3.IntVal(0)
        return z3.BoolVal(found[0]), z3.IntVal(found[1]), z3.IntVal(found[2])

    def transfer_price(self, instrument: Any, lots: Any) -> Any:
        """Return the kernel's SK-LIQ-2 transfer price for ``lots`` of ``instrument``."""
        listed = self.state.instruments.get(str(_ground(instrument)))
        if listed is None or listed.underlying not in self.state.prices:
            return z3.IntVal(0)
        quantity = int(_ground(lots))
        if not listed.is_linear and listed.underlying not in self.state.volatilities:
            return z3.IntVal(0)
        return z3.IntVal(transfer_price_ticks(self.state, listed, quantity))

    def sold(self, account: Any, asset: str, slot: str) -> Any:
        """Return the units of ``asset`` the kernel's plan sells to ``slot``'s buyer."""
        found = self._ladder(account, z3.StringVal(self.event.liquidator))  # type: ignore[attr-defined]
        if found is None:
            return z3.IntVal(0)
        account_id = str(_ground(account))
        sales = [
            p
            for p in found[3].postings
            if p.code is PostingCode.COLLATERAL_SALE
            and p.debit_account == account_id
            and p.asset == asset
        ]
        fund = [p.amount_minor for p in sales if p.credit_account != self.event.liquidator]  # type: ignore[attr-defined]
        taker = [p.amount_minor for p in sales if p.credit_account == self.event.liquidator]  # type: ignore[attr-defined]
        chosen = {"fund": fund[:1], "liquidator": taker[:1], "forced": taker[1:2]}[slot]
        return z3.IntVal(sum(chosen))

    def ratio_kept(self, account: Any, liquidator: Any) -> Any:
        """Return the kernel's SK-LIQ-3 check on the plan's post-state: no worse, at initial."""
        found = self._ladder(account, liquidator)
        if found is None or found[0]:
            return z3.BoolVal(True)
        account_id = str(_ground(account))
        after = account_after(self.state, found[3], account_id)
        if not after.positions:
            return z3.BoolVal(True)
        before = account_margin(self.state, self.state.accounts[account_id])
        final = account_margin(self.state, after)
        kept = final.meets_initial and (
            final.equity_minor * before.maintenance_minor
            >= before.equity_minor * final.maintenance_minor
        )
        return z3.BoolVal(kept)

    def ranking(self, instrument: str, lots: int, account: str) -> list[str]:
        """Return the kernel's SK-ADL ranking of the side opposite a close of ``lots``."""
        listed = self.state.instruments[instrument]
        return [h for h, _ in ranking(self.state, listed, -1 if lots > 0 else 1, account)]

    def liquidator_rejection(self, account: Any, liquidator: Any) -> Any:
        """Return the kernel's SK-LIQ-5 reason for the liquidator, "" when it qualifies."""
        found = self._ladder(account, liquidator)
        pair = self._pair(account, liquidator)
        if found is None or pair is None:
            return z3.StringVal("")
        taker = pair[1]
        books = found[3]
        rejection = _check_liquidator(self.state, books, taker)
        return z3.StringVal("" if rejection is None else rejection.reason.value)

    def admits(self, underlying: Any, action: str) -> Any:
        """Return the kernel's SK-ORACLE-4 answer for ``action`` on ``underlying`` now."""
        symbol = str(_ground(underlying))
        if symbol not in self.state.rules.underlying_by_symbol:
            return z3.BoolVal(False)
        return z3.BoolVal(check_admissible(self.state, (symbol,), Action(action)) is None)

    def vm_solvent(self, instrument: Any) -> Any:
        """Return the kernel's SK-VM-3 answer: no holder owes more than it could raise."""
        state = self.state
        listed = state.instruments.get(str(_ground(instrument)))
        if listed is None or not listed.is_linear or listed.underlying not in state.prices:
            return z3.BoolVal(True)
        mark = mark_ticks(state, listed.id)
        for holder in state.holders[listed.id]:
            account = state.accounts[holder]
            position = account.positions[listed.id]
            owed = -compute_settlement_minor(
                position.quantity_lots,
                mark,
                position.settled_price_ticks,
                listed.multiplier_minor,
            )
            if owed > account.balance(listed.settlement_asset) and (
                true_deficit_minor(state, account, listed.id, owed) > 0
            ):
                return z3.BoolVal(False)
        return z3.BoolVal(True)

    def settlement(self, instrument: Any) -> tuple[Any, Any]:
        """Return whether the kernel has fixed the instrument's settlement price, and it."""
        listed = self.state.instruments.get(str(_ground(instrument)))
        if listed is None or listed.expiry_ms is None:
            return z3.BoolVal(False), z3.IntVal(0)
        price = self.state.settlement_prices.get(
            settlement_key(listed.underlying, listed.expiry_ms)
        )
        return z3.BoolVal(price is not None), z3.IntVal(0 if price is None else price)

    def rest_value(self, account: Any, instrument: Any) -> Any:
        """Return the kernel's value at liquidation of the account without the position."""
        found = self._account(account)
        if found is None:
            return z3.IntVal(0)
        rest = with_position(found, str(_ground(instrument)), 0, 0)
        return z3.IntVal(liquidation_value_minor(self.state, rest))

    def quorum(
        self, underlying: Any, source: Any, price: Any, timestamp: Any
    ) -> tuple[Any, Any, Any]:
        """Return the kernel's evaluation once the report is stored: candidate?, median, time."""
        state = self.state
        symbol = str(_ground(underlying))
        rules = state.rules.underlying_by_symbol.get(symbol)
        if rules is None:
            return z3.BoolVal(False), z3.IntVal(0), z3.IntVal(0)
        report = IndexPrice(int(_ground(price)), int(_ground(timestamp)))
        reports = state.reports.get(symbol, Map()).set(str(_ground(source)), report)
        now = max(state.clock_ms, report.timestamp_ms)
        evaluation = evaluate_oracle(reports, state.prices.get(symbol), now, rules)
        return (
            z3.BoolVal(evaluation.candidate is not None),
            z3.IntVal(evaluation.median or 0),
            z3.IntVal(evaluation.quorum_ms or 0),
        )
