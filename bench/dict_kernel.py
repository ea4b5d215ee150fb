"""A plain mutable-dict implementation of the kernel's rules: the benchmark's baseline.

``DictKernel`` is a second, independent implementation of spec/30-transitions.md: the same
guards in the same order, the same ``Reason`` for every rejection and the same effects on
balances, positions, instrument references, custody, the fee pool, the rounding residue, the
trade registry and open interest. It mutates dicts in place and keeps no history, no roots and
no postings, which is what a straightforward hand-written ledger would do. It shares only the
pure helpers with the kernel (arithmetic, event classes, reasons, units, and the shape and
range checks), so a disagreement between the two points at a real bug in one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from settlekernel.arith import (
    compute_fee_split,
    compute_notional_minor,
    compute_settlement_minor,
)
from settlekernel.events import (
    Deposit,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.guards import check_ranges, check_shape
from settlekernel.margin.portfolio import (
    Exposure,
    MarginReport,
    Market,
    Portfolio,
    compute_margin,
)
from settlekernel.model import Instrument, InstrumentKind, RuleSet
from settlekernel.reasons import Reason
from settlekernel.units import (
    FEE_ACCOUNT,
    RESIDUE_ACCOUNT,
    SYSTEM_ACCOUNTS,
    SYSTEM_OWNER,
    VALUE_LIMIT,
)

# Replayed trade fields in the order SK-TRADE-2 compares them.
_PAYLOAD_FIELDS = (
    ("principal", Reason.TRADE_EXISTS_WITH_DIFFERENT_PRINCIPAL),
    ("buyer", Reason.TRADE_EXISTS_WITH_DIFFERENT_BUYER),
    ("seller", Reason.TRADE_EXISTS_WITH_DIFFERENT_SELLER),
    ("instrument", Reason.TRADE_EXISTS_WITH_DIFFERENT_INSTRUMENT),
    ("quantity_lots", Reason.TRADE_EXISTS_WITH_DIFFERENT_QUANTITY),
    ("price_ticks", Reason.TRADE_EXISTS_WITH_DIFFERENT_PRICE),
    ("buyer_fee_rate_ppm", Reason.TRADE_EXISTS_WITH_DIFFERENT_BUYER_FEE_RATE),
    ("seller_fee_rate_ppm", Reason.TRADE_EXISTS_WITH_DIFFERENT_SELLER_FEE_RATE),
)

# Oracle validities each action admits (SK-ORACLE-4), as strings to stay independent.
_ADMITS = {
    "trade": {"valid"},
    "margin": {"valid"},
    "liquidation": {"valid"},
    "funding": {"valid"},
    "variation_margin": {"valid", "too_volatile"},
    "settlement": {"valid", "too_volatile", "stale"},
}

# Which of expiry, strike and option type each kind must have (SK-LIST-3).
_REQUIRED_SPEC = {
    InstrumentKind.PERPETUAL: (False, False, False),
    InstrumentKind.FUTURE: (True, False, False),
    InstrumentKind.OPTION: (True, True, True),
}


class DictKernel:
    """The kernel's rules over mutable dicts; ``apply`` returns None or the rejection reason."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.operator = rules.roles.operator
        self.oracles = frozenset(rules.roles.oracles)
        self.matchers = frozenset(rules.roles.matchers)
        self.assets = frozenset(rules.asset_by_symbol)
        self.underlyings = dict(rules.underlying_by_symbol)
        # Account id -> owner; system accounts are present from the start, like genesis.
        self.owners: dict[str, str] = dict.fromkeys(SYSTEM_ACCOUNTS, SYSTEM_OWNER)
        # Account id -> asset -> balance; zero balances are removed, never stored.
        self.balances: dict[str, dict[str, int]] = {a: {} for a in SYSTEM_ACCOUNTS}
        # Account id -> instrument id -> [quantity_lots, settled_price_ticks]; zero removed.
        self.positions: dict[str, dict[str, list[int]]] = {a: {} for a in SYSTEM_ACCOUNTS}
        # Instrument id -> its listing event (immutable spec) and its mutable reference.
        self.instruments: dict[str, ListInstrument] = {}
        # The same specifications as the margin engine reads them.
        self.specs: dict[str, Instrument] = {}
        self.references: dict[str, int] = {}
        self.open_interest: dict[str, int] = {}
        self.holders: dict[str, set[str]] = {}
        # Underlying -> (price_ticks, timestamp_ms): the accepted index.
        self.prices: dict[str, tuple[int, int]] = {}
        # Underlying -> source -> (price_ticks, timestamp_ms): each source's latest report.
        self.reports: dict[str, dict[str, tuple[int, int]]] = {}
        # Instrument -> the last trade's premium over the index, ppm (SK-MARK-1).
        self.premiums: dict[str, int] = {}
        self.volatilities: dict[str, tuple[int, int]] = {}
        self.trades: dict[str, Trade] = {}
        self.custody: dict[str, int] = {}
        self.clock_ms = 0
        self._dispatch: dict[type, Callable[[Any], Reason | None]] = {
            OpenAccount: self._open_account,
            Deposit: self._deposit,
            Withdraw: self._withdraw,
            Transfer: self._transfer,
            ListInstrument: self._list_instrument,
            OraclePrice: self._oracle_price,
            OracleVolatility: self._oracle_volatility,
            Trade: self._trade,
            VariationMargin: self._variation_margin,
        }

    def apply(self, event: object) -> Reason | None:
        """Apply ``event`` in place; return None if accepted, else the rejection reason."""
        handler = self._dispatch.get(type(event))
        if handler is None:
            return Reason.EVENT_TYPE_UNKNOWN
        rejection = check_shape(event)  # type: ignore[arg-type]
        if rejection is not None:
            return rejection.reason
        return handler(event)

    # Comparable views of the final state.

    def balances_view(self) -> dict[str, dict[str, int]]:
        """Return every account's non-zero balances."""
        return {account: dict(held) for account, held in self.balances.items()}

    def positions_view(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Return every account's positions as (quantity_lots, settled_price_ticks)."""
        return {
            account: {inst: (p[0], p[1]) for inst, p in held.items()}
            for account, held in self.positions.items()
        }

    def custody_view(self) -> dict[str, int]:
        """Return the custody total per asset (zero totals absent)."""
        return dict(self.custody)

    def references_view(self) -> dict[str, int]:
        """Return every instrument's reference price."""
        return dict(self.references)

    # Helpers.

    def _set_balance(self, account: str, asset: str, amount_minor: int) -> None:
        # Canonical form: a zero balance is removed, as the kernel does.
        assert amount_minor >= 0, (account, asset, amount_minor)
        if amount_minor:
            self.balances[account][asset] = amount_minor
        else:
            self.balances[account].pop(asset, None)

    def _set_custody(self, asset: str, amount_minor: int) -> None:
        if amount_minor:
            self.custody[asset] = amount_minor
        else:
            self.custody.pop(asset, None)

    def _margin(self, balances: dict[str, int], positions: dict[str, list[int]]) -> MarginReport:
        """Return the engine's margin for would-be balances and positions (SK-PM)."""
        market = Market(
            self.clock_ms,
            {u: price for u, (price, _) in self.prices.items()},
            {u: vol for u, (vol, _) in self.volatilities.items()},
        )
        exposures = [
            Exposure(self.specs[i], lots, settled) for i, (lots, settled) in positions.items()
        ]
        return compute_margin(Portfolio(balances, exposures), market, self.rules)

    def _meets_trade_margin(
        self,
        account: str,
        balances: dict[str, int],
        positions: dict[str, list[int]],
    ) -> bool:
        """Initial margin after the trade, or a risk-reducing trade (SK-MARGIN-3)."""
        after = self._margin(balances, positions)
        if after.equity_minor >= after.initial_minor:
            return True
        before = self._margin(self.balances[account], self.positions[account])
        return (
            before.maintenance_minor > 0
            and after.maintenance_minor <= before.maintenance_minor
            and after.equity_minor * before.maintenance_minor
            >= before.equity_minor * after.maintenance_minor
        )

    def _oracle(
        self, underlying: str, now_ms: int
    ) -> tuple[str, tuple[int, int] | None, int | None]:
        """Return (validity, candidate index, quorum time) per SK-ORACLE-2 and SK-ORACLE-3."""
        rules = self.underlyings[underlying]
        reports = self.reports.get(underlying, {})
        if len(reports) < rules.min_sources:
            return "insufficient_sources", None, None
        fresh = [
            (price, at_ms)
            for price, at_ms in reports.values()
            if -rules.stale_after_ms <= now_ms - at_ms <= rules.stale_after_ms
        ]
        if len(fresh) < rules.min_sources:
            return "stale", None, None
        times = sorted(at_ms for _, at_ms in fresh)
        quorum_ms = times[(len(times) - 1) // 2]
        last = self.prices.get(underlying)
        if last is not None and last[1] > quorum_ms:
            quorum_ms = last[1]
        votes = [price for price, _ in fresh]
        if len(votes) % 2 == 0 and last is not None:
            votes.append(last[0])
        votes.sort()
        median = votes[(len(votes) - 1) // 2]
        if median <= 0:
            return "non_positive", None, quorum_ms
        if last is None:
            return "valid", (median, quorum_ms), quorum_ms
        band = last[0] * rules.band_ppm // 1_000_000
        if abs(median - last[0]) * 1_000_000 > last[0] * rules.band_ppm:
            stepped = last[0] + band if median > last[0] else max(last[0] - band, 1)
            return "too_volatile", (stepped, quorum_ms), quorum_ms
        return "valid", (median, quorum_ms), quorum_ms

    def _admits(self, underlyings: set[str], action: str) -> bool:
        """Whether every underlying's oracle admits the action now (SK-ORACLE-5)."""
        return all(
            self._oracle(underlying, self.clock_ms)[0] in _ADMITS[action]
            for underlying in underlyings
        )

    def _reads(self, account: str) -> set[str]:
        """The underlyings an account's margin reads: positions and priced collateral."""
        underlyings = {self.instruments[i].underlying for i in self.positions[account]}
        for asset in self.balances[account]:
            priced_by = self.rules.asset_by_symbol[asset].price_underlying
            if priced_by is not None:
                underlyings.add(priced_by)
        return underlyings

    def _margin_admitted(self, account: str) -> bool:
        """A debit's margin check is admissible, or needs no price (no positions)."""
        return not self.positions[account] or self._admits(self._reads(account), "margin")

    def _meets_initial(self, account: str, asset: str, balance_minor: int) -> bool:
        """Initial margin across all collateral and positions after a debit (SK-MARGIN-2)."""
        balances = dict(self.balances[account])
        balances[asset] = balance_minor
        if not balance_minor:
            del balances[asset]
        report = self._margin(balances, self.positions[account])
        return report.equity_minor >= report.initial_minor

    # Transitions, one per event class, guards in the spec's order.

    def _open_account(self, event: OpenAccount) -> Reason | None:
        if event.account in self.owners:
            return Reason.ACCOUNT_EXISTS
        if len(self.owners) - len(SYSTEM_ACCOUNTS) >= self.rules.accounts_max:
            return Reason.ACCOUNT_LIMIT_REACHED
        self.owners[event.account] = event.principal
        self.balances[event.account] = {}
        self.positions[event.account] = {}
        return None

    def _deposit(self, event: Deposit) -> Reason | None:
        rejection = check_ranges(event, self.rules)
        if rejection is not None:
            return rejection.reason
        if event.asset not in self.assets:
            return Reason.ASSET_UNKNOWN
        owner = self.owners.get(event.account)
        if owner is None:
            return Reason.ACCOUNT_UNKNOWN
        if event.principal not in (owner, self.operator):
            return Reason.PRINCIPAL_NOT_OWNER
        custody_minor = self.custody.get(event.asset, 0) + event.amount_minor
        if custody_minor >= VALUE_LIMIT:
            return Reason.CUSTODY_LIMIT_EXCEEDED
        held = self.balances[event.account]
        held[event.asset] = held.get(event.asset, 0) + event.amount_minor
        self.custody[event.asset] = custody_minor
        return None

    def _withdraw(self, event: Withdraw) -> Reason | None:
        rejection = check_ranges(event, self.rules)
        if rejection is not None:
            return rejection.reason
        if event.asset not in self.assets:
            return Reason.ASSET_UNKNOWN
        owner = self.owners.get(event.account)
        if owner is None:
            return Reason.ACCOUNT_UNKNOWN
        if event.principal != owner:
            return Reason.PRINCIPAL_NOT_OWNER
        if not self._margin_admitted(event.account):
            return Reason.ORACLE_NOT_ADMISSIBLE
        balance_minor = self.balances[event.account].get(event.asset, 0)
        if balance_minor < event.amount_minor:
            return Reason.INSUFFICIENT_FUNDS
        after_minor = balance_minor - event.amount_minor
        if not self._meets_initial(event.account, event.asset, after_minor):
            return Reason.MARGIN_INSUFFICIENT
        self._set_balance(event.account, event.asset, after_minor)
        self._set_custody(event.asset, self.custody[event.asset] - event.amount_minor)
        return None

    def _transfer(self, event: Transfer) -> Reason | None:
        rejection = check_ranges(event, self.rules)
        if rejection is not None:
            return rejection.reason
        source, target = event.source_account, event.target_account
        if source == target:
            return Reason.TRANSFER_TO_SAME_ACCOUNT
        if event.asset not in self.assets:
            return Reason.ASSET_UNKNOWN
        source_owner = self.owners.get(source)
        if source_owner is None:
            return Reason.ACCOUNT_UNKNOWN
        target_owner = self.owners.get(target)
        if target_owner is None:
            return Reason.ACCOUNT_UNKNOWN
        if event.principal != source_owner:
            return Reason.PRINCIPAL_NOT_OWNER
        if target_owner != source_owner:
            return Reason.TRANSFER_OWNERS_DIFFER
        if not self._margin_admitted(source):
            return Reason.ORACLE_NOT_ADMISSIBLE
        source_minor = self.balances[source].get(event.asset, 0)
        if source_minor < event.amount_minor:
            return Reason.INSUFFICIENT_FUNDS
        after_minor = source_minor - event.amount_minor
        if not self._meets_initial(source, event.asset, after_minor):
            return Reason.MARGIN_INSUFFICIENT
        self._set_balance(source, event.asset, after_minor)
        held = self.balances[target]
        held[event.asset] = held.get(event.asset, 0) + event.amount_minor
        return None

    def _list_instrument(self, event: ListInstrument) -> Reason | None:
        rules = self.rules
        if event.principal != self.operator:
            return Reason.PRINCIPAL_NOT_OPERATOR
        rejection = check_ranges(event, rules)
        if rejection is not None:
            return rejection.reason
        if not 1 <= event.multiplier_minor <= rules.multiplier_minor_max:
            return Reason.INSTRUMENT_SPEC_INVALID
        present = (
            event.expiry_ms is not None,
            event.strike_ticks is not None,
            event.option_type is not None,
        )
        if present != _REQUIRED_SPEC[event.kind]:
            return Reason.INSTRUMENT_SPEC_INVALID
        if event.expiry_ms is not None and event.expiry_ms <= self.clock_ms:
            return Reason.INSTRUMENT_SPEC_INVALID
        if event.settlement_asset != rules.valuation_asset:
            return Reason.INSTRUMENT_SPEC_INVALID
        if event.instrument in self.instruments:
            return Reason.INSTRUMENT_EXISTS
        if event.settlement_asset not in self.assets:
            return Reason.ASSET_UNKNOWN
        if event.underlying not in self.underlyings:
            return Reason.UNDERLYING_UNKNOWN
        if len(self.instruments) >= rules.instruments_max:
            return Reason.INSTRUMENT_LIMIT_REACHED
        self.instruments[event.instrument] = event
        self.specs[event.instrument] = Instrument(
            event.instrument,
            event.kind,
            event.underlying,
            event.settlement_asset,
            event.multiplier_minor,
            event.expiry_ms,
            event.strike_ticks,
            event.option_type,
            0,
        )
        self.references[event.instrument] = 0
        self.premiums[event.instrument] = 0
        self.open_interest[event.instrument] = 0
        self.holders[event.instrument] = set()
        return None

    def _oracle_price(self, event: OraclePrice) -> Reason | None:
        if event.principal not in self.oracles:
            return Reason.PRINCIPAL_NOT_ORACLE
        rejection = check_ranges(event, self.rules)
        if rejection is not None:
            return rejection.reason
        underlying = event.underlying
        if underlying not in self.underlyings:
            return Reason.UNDERLYING_UNKNOWN
        reports = self.reports.setdefault(underlying, {})
        previous = reports.get(event.principal)
        if previous is not None and event.timestamp_ms <= previous[1]:
            return Reason.ORACLE_TIMESTAMP_NOT_NEWER
        reports[event.principal] = (event.price_ticks, event.timestamp_ms)
        _, candidate, quorum_ms = self._oracle(underlying, max(self.clock_ms, event.timestamp_ms))
        if quorum_ms is not None:
            self.clock_ms = max(self.clock_ms, quorum_ms)
        if candidate is not None:
            self.prices[underlying] = candidate
        return None

    def _oracle_volatility(self, event: OracleVolatility) -> Reason | None:
        if event.principal not in self.oracles:
            return Reason.PRINCIPAL_NOT_ORACLE
        rejection = check_ranges(event, self.rules)
        if rejection is not None:
            return rejection.reason
        if event.underlying not in self.underlyings:
            return Reason.UNDERLYING_UNKNOWN
        current = self.volatilities.get(event.underlying)
        if current is not None and event.timestamp_ms <= current[1]:
            return Reason.ORACLE_TIMESTAMP_NOT_NEWER
        self.volatilities[event.underlying] = (event.volatility_ppm, event.timestamp_ms)
        return None

    def _trade(self, event: Trade) -> Reason | None:  # noqa: PLR0915 (one flat cascade)
        rules = self.rules
        if event.principal not in self.matchers:
            return Reason.PRINCIPAL_NOT_MATCHER
        settled = self.trades.get(event.trade_id)
        if settled is not None:
            for field, reason in _PAYLOAD_FIELDS:
                if getattr(settled, field) != getattr(event, field):
                    return reason
            return Reason.TRADE_EXISTS
        rejection = check_ranges(event, rules)
        if rejection is not None:
            return rejection.reason
        buyer, seller, instrument_id = event.buyer, event.seller, event.instrument
        if buyer == seller:
            return Reason.SELF_TRADE
        spec = self.instruments.get(instrument_id)
        if spec is None:
            return Reason.INSTRUMENT_UNKNOWN
        if buyer not in self.owners or seller not in self.owners:
            return Reason.ACCOUNT_UNKNOWN
        if spec.expiry_ms is not None and spec.expiry_ms <= self.clock_ms:
            return Reason.INSTRUMENT_EXPIRED
        if spec.underlying not in self.prices:
            return Reason.PRICE_UNAVAILABLE
        if spec.kind is InstrumentKind.OPTION and spec.underlying not in self.volatilities:
            return Reason.PRICE_UNAVAILABLE
        if not self._admits({spec.underlying}, "trade") or not self._admits(
            self._reads(buyer) | self._reads(seller), "margin"
        ):
            return Reason.ORACLE_NOT_ADMISSIBLE

        is_linear = spec.kind is not InstrumentKind.OPTION
        old_reference = self.references[instrument_id]
        if not is_linear:
            reference_ticks = 0
        elif old_reference == 0:
            reference_ticks = event.price_ticks
        else:
            reference_ticks = old_reference
        quantity = event.quantity_lots
        multiplier = spec.multiplier_minor
        settlement_minor = compute_settlement_minor(
            quantity, event.price_ticks, reference_ticks, multiplier
        )
        notional_minor = compute_notional_minor(quantity, event.price_ticks, multiplier)
        buyer_fee = compute_fee_split(notional_minor, event.buyer_fee_rate_ppm)
        seller_fee = compute_fee_split(notional_minor, event.seller_fee_rate_ppm)
        buyer_positions = self.positions[buyer]
        seller_positions = self.positions[seller]
        # Position count, buyer then seller; then position size, buyer then seller.
        positions_max = rules.positions_per_account_max
        for held in (buyer_positions, seller_positions):
            if instrument_id not in held and len(held) >= positions_max:
                return Reason.POSITION_COUNT_EXCEEDED
        buyer_old = buyer_positions.get(instrument_id)
        seller_old = seller_positions.get(instrument_id)
        buyer_old_lots = 0 if buyer_old is None else buyer_old[0]
        seller_old_lots = 0 if seller_old is None else seller_old[0]
        buyer_lots = buyer_old_lots + quantity
        seller_lots = seller_old_lots - quantity
        if abs(buyer_lots) > rules.position_lots_max or abs(seller_lots) > rules.position_lots_max:
            return Reason.POSITION_TOO_LARGE
        # Funds, buyer then seller: each pays its fee, the buyer pays the settlement.
        asset = spec.settlement_asset
        buyer_balances = self.balances[buyer]
        seller_balances = self.balances[seller]
        buyer_after = buyer_balances.get(asset, 0) - settlement_minor - buyer_fee.charged_minor
        if buyer_after < 0:
            return Reason.INSUFFICIENT_FUNDS
        seller_after = seller_balances.get(asset, 0) + settlement_minor - seller_fee.charged_minor
        if seller_after < 0:
            return Reason.INSUFFICIENT_FUNDS
        # Margin on the would-be positions, with the reference the trade may set.
        buyer_would = dict(buyer_positions)
        seller_would = dict(seller_positions)
        for would, lots in ((buyer_would, buyer_lots), (seller_would, seller_lots)):
            if lots:
                would[instrument_id] = [lots, reference_ticks]
            else:
                would.pop(instrument_id, None)
        for account, after_minor, would in (
            (buyer, buyer_after, buyer_would),
            (seller, seller_after, seller_would),
        ):
            balances = dict(self.balances[account])
            balances[asset] = after_minor
            if not after_minor:
                del balances[asset]
            if not self._meets_trade_margin(account, balances, would):
                return Reason.MARGIN_INSUFFICIENT
        # Commit: balances, positions, fees and residue, reference, registry, open interest.
        self._set_balance(buyer, asset, buyer_after)
        self._set_balance(seller, asset, seller_after)
        self.positions[buyer] = buyer_would
        self.positions[seller] = seller_would
        for system, credit_minor in (
            (FEE_ACCOUNT, buyer_fee.pool_minor + seller_fee.pool_minor),
            (RESIDUE_ACCOUNT, buyer_fee.residue_minor + seller_fee.residue_minor),
        ):
            if credit_minor:
                held = self.balances[system]
                held[asset] = held.get(asset, 0) + credit_minor
        self.references[instrument_id] = reference_ticks
        if is_linear:
            index_ticks = self.prices[spec.underlying][0]
            band = self.underlyings[spec.underlying].mark_band_ppm
            gap = event.price_ticks - index_ticks
            premium = abs(gap) * 1_000_000 // index_ticks * (1 if gap >= 0 else -1)
            self.premiums[instrument_id] = max(-band, min(band, premium))
        self.trades[event.trade_id] = event
        holders = self.holders[instrument_id]
        for account, old_lots, new_lots in (
            (buyer, buyer_old_lots, buyer_lots),
            (seller, seller_old_lots, seller_lots),
        ):
            self.open_interest[instrument_id] += max(new_lots, 0) - max(old_lots, 0)
            if new_lots:
                holders.add(account)
            else:
                holders.discard(account)
        return None

    def _variation_margin(self, event: VariationMargin) -> Reason | None:
        if event.principal != self.operator:
            return Reason.PRINCIPAL_NOT_OPERATOR
        spec = self.instruments.get(event.instrument)
        if spec is None:
            return Reason.INSTRUMENT_UNKNOWN
        if spec.kind is InstrumentKind.OPTION:
            return Reason.INSTRUMENT_NOT_MARKED_TO_MARKET
        price = self.prices.get(spec.underlying)
        if price is None:
            return Reason.PRICE_UNAVAILABLE
        if not self._admits({spec.underlying}, "variation_margin"):
            return Reason.ORACLE_NOT_ADMISSIBLE
        premium = self.premiums.get(spec.instrument, 0)
        mark_ticks = max(price[0] + price[0] * premium // 1_000_000, 1)
        asset = spec.settlement_asset
        instrument_id = spec.instrument
        flows: list[tuple[str, int]] = []
        for account in sorted(self.holders[instrument_id]):
            quantity_lots, settled_ticks = self.positions[account][instrument_id]
            flow_minor = compute_settlement_minor(
                quantity_lots, mark_ticks, settled_ticks, spec.multiplier_minor
            )
            if self.balances[account].get(asset, 0) + flow_minor < 0:
                return Reason.VARIATION_MARGIN_SHORTFALL
            flows.append((account, flow_minor))
        for account, flow_minor in flows:
            self._set_balance(account, asset, self.balances[account].get(asset, 0) + flow_minor)
            self.positions[account][instrument_id][1] = mark_ticks
        self.references[instrument_id] = mark_ticks
        return None
