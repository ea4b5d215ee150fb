"""A plain mutable-dict implementation of the kernel's rules: the benchmark's baseline.

``DictKernel`` is a second, independent implementation of spec/30-transitions.md: the same
guards in the same order, the same ``Reason`` for every rejection and the same effects on
balances, positions, instrument references, custody, the fee pool, the rounding residue, the
trade registry and open interest. It mutates dicts in place and keeps no history, no roots and
no postings, which is what a straightforward hand-written ledger would do. It shares only the
pure helpers with the kernel (arithmetic, event classes, reasons, units, the shape and range
checks, and the margin engine with the option model price), so a disagreement between the two
points at a real bug in one of them.

Funding, FundInsurance, Expire and Liquidate (with the oracle's index history, the settlement
TWAP, the waterfall, the liquidation ladder and auto-deleveraging) are written from the spec
text alone, without reading or importing the kernel's modules for them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from settlekernel.core.arith import (
    ceil_div,
    compute_collateral_value_minor,
    compute_fee_split,
    compute_notional_minor,
    compute_settlement_minor,
)
from settlekernel.core.events import (
    Deposit,
    Expire,
    Funding,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    Tick,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.guards import check_ranges, check_shape
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import Instrument
from settlekernel.core.reasons import Reason
from settlekernel.core.reports import MarginReport
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import (
    FEE_ACCOUNT,
    INSURANCE_ACCOUNT,
    PPM,
    RESIDUE_ACCOUNT,
    SYSTEM_ACCOUNTS,
    SYSTEM_OWNER,
    VALUE_LIMIT,
)
from settlekernel.margin.options import model_price_ticks
from settlekernel.margin.portfolio import Exposure, Market, Portfolio
from settlekernel.margin.single import compute_account_margin

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
    "settlement": {"valid", "too_volatile", "stale", "disputed"},
}

# Which of expiry, strike and option type each kind must have (SK-LIST-3).
_REQUIRED_SPEC = {
    InstrumentKind.PERPETUAL: (False, False, False),
    InstrumentKind.FUTURE: (True, False, False),
    InstrumentKind.OPTION: (True, True, True),
}


def _integral(samples: list[tuple[int, int, int, int, int]], at_ms: int) -> int:
    """The index's time integral up to ``at_ms``, from the last sample at or before it."""
    last = next(sample for sample in reversed(samples) if sample[0] <= at_ms)
    return last[2] + last[1] * (at_ms - last[0])


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


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
        # Instrument -> [[time, premium ppm, lots]] of recent trades between different owners,
        # and funding's running integral of the mark premium: [value, since, until]
        # (SK-MARK-1, SK-FUNDING-2).
        self.premiums: dict[str, list[tuple[int, int, int]]] = {}
        self.premium_integrals: dict[str, list[int]] = {}
        self.volatilities: dict[str, tuple[int, int]] = {}
        self.trades: dict[str, Trade] = {}
        self.custody: dict[str, int] = {}
        self.clock_ms = 0
        # Instrument -> last funding time and the sum of funding's reference shifts
        # (SK-FUNDING), and the price it settled at on expiry, None before (SK-EXPIRY).
        self.last_funding_ms: dict[str, int] = {}
        self.funding_index_ticks: dict[str, int] = {}
        self.settlement_ticks: dict[str, int | None] = {}
        # Underlying -> [(timestamp_ms, price_ticks, cumulative, low, high)]: the kept index
        # samples with the running time integral and the range in force (SK-EXPIRY-2).
        self.history: dict[str, list[tuple[int, int, int, int, int]]] = {}
        # "<underlying>@<expiry_ms>" -> fixed settlement price; underlying -> expiry times
        # listed and not fixed yet.
        self.settlement_prices: dict[str, int] = {}
        self.pending_expiries: dict[str, set[int]] = {}
        # Asset -> total expiry losses spread over receivers (SK-EXPIRY-3).
        self.socialized_loss: dict[str, int] = {}
        # Account -> what it owes the insurance fund, and what the fund owes it (SK-DEBT).
        self.debts: dict[str, int] = {}
        self.claims: dict[str, int] = {}
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
            Funding: self._funding,
            FundInsurance: self._fund_insurance,
            Expire: self._expire,
            Liquidate: self._liquidate,
            Tick: self._tick,
        }

    def apply(self, event: object) -> Reason | None:
        """Apply ``event`` in place; return None if accepted, else the rejection reason."""
        handler = self._dispatch.get(type(event))
        if handler is None:
            return Reason.EVENT_TYPE_UNKNOWN
        rejection = check_shape(event)  # type: ignore[arg-type]
        if rejection is not None:
            return rejection.reason
        reason = handler(event)
        if reason is None and (self.debts or self.claims):
            self._settle_debts()
        return reason

    def _credit(self, account: str) -> int:
        """An account's claim on the fund less its debt to it (SK-DEBT)."""
        return self.claims.get(account, 0) - self.debts.get(account, 0)

    def _move_credit(self, account: str, change_minor: int) -> None:
        """Move an account's claim less debt; a debt and a claim on one account net."""
        net = self._credit(account) + change_minor
        self.debts.pop(account, None)
        self.claims.pop(account, None)
        if net < 0:
            self.debts[account] = -net
        elif net > 0:
            self.claims[account] = net

    def _settle_debts(self) -> None:
        """[SK-DEBT-2, 3] Debtors repay from cash, the fund pays claims, unbacked ones are cut."""
        asset = self.rules.valuation_asset
        for debtor in sorted(self.debts):
            repaid = min(self.debts[debtor], self.balances[debtor].get(asset, 0))
            self._add_balance(debtor, asset, -repaid)
            self._add_balance(INSURANCE_ACCOUNT, asset, repaid)
            self._move_credit(debtor, repaid)
        claimants = sorted(self.claims)
        owed = sum(self.claims.values())
        paying = min(self.balances[INSURANCE_ACCOUNT].get(asset, 0), owed)
        if paying:
            for claimant in claimants:
                pay = paying * self.claims[claimant] // owed
                self._add_balance(INSURANCE_ACCOUNT, asset, -pay)
                self._add_balance(claimant, asset, pay)
                self._move_credit(claimant, -pay)
        owed = sum(self.claims.values())
        excess = owed - self.balances[INSURANCE_ACCOUNT].get(asset, 0) - sum(self.debts.values())
        if excess > 0:
            cut_total = 0
            for claimant in sorted(self.claims):
                cut = ceil_div(excess * self.claims[claimant], owed)
                cut_total += cut
                self._move_credit(claimant, -cut)
            self.socialized_loss[asset] = self.socialized_loss.get(asset, 0) + cut_total

    def _settle_flows(
        self, flows: dict[str, int], deficits: dict[str, int]
    ) -> int:
        """Pay a mark's or an expiry's flows through the tiers of SK-DEBT-1; return the loss.

        Cash, then the fund covers a true deficit (the rest of it is socialised), then the
        fund advances what it can and defers the rest, owed by the payer; receivers are cut,
        rounded up, by the socialised and deferred total, and claim the deferred part,
        rounded down; the rounding goes to the residue.
        """
        asset = self.rules.valuation_asset
        fund = self.balances[INSURANCE_ACCOUNT].get(asset, 0)
        lost_total = deferred_total = 0
        for payer in sorted(a for a, flow in flows.items() if flow < 0):
            owed = -flows[payer]
            paid = min(owed, self.balances[payer].get(asset, 0))
            self._add_balance(payer, asset, -paid)
            short = owed - paid
            lost = min(short, deficits.get(payer, 0))
            covered = min(lost, fund)
            advanced = min(short - lost, fund - covered)
            fund -= covered + advanced
            self._add_balance(INSURANCE_ACCOUNT, asset, -(covered + advanced))
            self._move_credit(payer, -(short - lost))
            lost_total += lost - covered
            deferred_total += short - lost - advanced
        due = {a: flow for a, flow in flows.items() if flow > 0}
        due_minor = sum(due.values())
        cut_sum = 0
        for receiver, due_to in sorted(due.items()):
            cut = ceil_div((lost_total + deferred_total) * due_to, due_minor)
            cut_sum += cut
            self._add_balance(receiver, asset, due_to - cut)
            self._move_credit(receiver, deferred_total * due_to // due_minor)
        self._add_balance(RESIDUE_ACCOUNT, asset, cut_sum - lost_total - deferred_total)
        return lost_total

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

    def history_view(self) -> dict[str, list[tuple[int, int, int, int, int]]]:
        """Return every underlying's kept index samples as (time, price, cumulative, lo, hi)."""
        return {underlying: list(samples) for underlying, samples in self.history.items()}

    def pending_view(self) -> dict[str, list[int]]:
        """Return every underlying's pending expiry times, ascending (empty ones absent)."""
        return {u: sorted(times) for u, times in self.pending_expiries.items() if times}

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

    def _margin(
        self, balances: dict[str, int], positions: dict[str, list[int]], credit: int = 0
    ) -> MarginReport:
        """Return the engine's margin for would-be balances and positions (SK-PM)."""
        market = Market(
            self.clock_ms,
            {u: price for u, (price, _) in self.prices.items()},
            {u: vol for u, (vol, _) in self.volatilities.items()},
        )
        exposures = [
            Exposure(self.specs[i], lots, settled) for i, (lots, settled) in positions.items()
        ]
        return compute_account_margin(Portfolio(balances, exposures, credit), market, self.rules)

    def _meets_trade_margin(
        self,
        account: str,
        balances: dict[str, int],
        positions: dict[str, list[int]],
    ) -> bool:
        """Initial margin after the trade, or a risk-reducing trade (SK-MARGIN-3)."""
        credit = self._credit(account)
        after = self._margin(balances, positions, credit)
        if after.equity_minor >= after.initial_minor:
            return True
        before = self._margin(self.balances[account], self.positions[account], credit)
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
        if len(fresh) % 2 == 0:
            # An even split beyond the dispersion band has no majority behind it.
            middle = sorted(price for price, _ in fresh)[len(fresh) // 2 - 1 : len(fresh) // 2 + 1]
            reference = middle[0] if last is None else last[0]
            if (middle[1] - middle[0]) * 1_000_000 > reference * rules.dispersion_band_ppm:
                return "disputed", None, quorum_ms
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
        report = self._margin(balances, self.positions[account], self._credit(account))
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
        self.premiums[event.instrument] = []
        self.premium_integrals[event.instrument] = [0, self.clock_ms, self.clock_ms]
        self.open_interest[event.instrument] = 0
        self.holders[event.instrument] = set()
        # [SK-FUNDING-1] The first charge is due one interval after the listing.
        self.last_funding_ms[event.instrument] = self.clock_ms
        self.funding_index_ticks[event.instrument] = 0
        self.settlement_ticks[event.instrument] = None
        if event.expiry_ms is not None:
            # The expiry is after the clock, so no index has fixed it yet (SK-EXPIRY-2).
            self.pending_expiries.setdefault(event.underlying, set()).add(event.expiry_ms)
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
        if candidate is not None and candidate != self.prices.get(underlying):
            self._fix_settlement_prices(underlying, candidate)
            self._record_sample(underlying, candidate)
            self.prices[underlying] = candidate
        return None

    def _record_sample(self, underlying: str, candidate: tuple[int, int]) -> None:
        """Extend the index history with an accepted index (SK-EXPIRY-2)."""
        price_ticks, at_ms = candidate
        samples = self.history.setdefault(underlying, [])
        if not samples:
            samples.append((at_ms, price_ticks, 0, price_ticks, price_ticks))
            return
        last_ms, last_price, last_cumulative, low, high = samples[-1]
        cumulative = last_cumulative + last_price * (at_ms - last_ms)
        interval = self.rules.price_history_interval_ms
        if len(samples) >= 2 and last_ms // interval == at_ms // interval:
            # The bucket's later index replaces its head; the first sample is never replaced.
            bounds = (min(low, price_ticks), max(high, price_ticks))
            samples[-1] = (at_ms, price_ticks, cumulative, *bounds)
        else:
            bounds = (min(last_price, price_ticks), max(last_price, price_ticks))
            samples.append((at_ms, price_ticks, cumulative, *bounds))
        if len(samples) > self.rules.price_history_max:
            del samples[0]

    def _fix_settlement_prices(self, underlying: str, candidate: tuple[int, int]) -> None:
        """Fix every pending expiry the new index reaches, from the history before it."""
        price_ticks, at_ms = candidate
        pending = self.pending_expiries.get(underlying, set())
        reached = sorted(expiry for expiry in pending if expiry <= at_ms)
        window_ms = self.underlyings[underlying].settlement_window_ms
        samples = self.history.get(underlying, [])
        for expiry_ms in reached:
            pending.discard(expiry_ms)
            if not samples or samples[0][0] > expiry_ms:
                fixed = price_ticks
            else:
                # The window starts on the first bucket boundary at or after expiry - window.
                interval = self.rules.price_history_interval_ms
                boundary = -(-(expiry_ms - window_ms) // interval) * interval
                start_ms = max(boundary, samples[0][0])
                before = [sample for sample in samples if sample[0] <= expiry_ms]
                fixed = (
                    before[-1][1]
                    if start_ms >= expiry_ms
                    else (_integral(before, expiry_ms) - _integral(before, start_ms))
                    // (expiry_ms - start_ms)
                )
            self.settlement_prices[f"{underlying}@{expiry_ms}"] = fixed

    def _tick(self, event: Tick) -> Reason | None:
        """The sequencer's clock (SK-TICK): forward only."""
        if event.principal != self.rules.roles.sequencer:
            return Reason.PRINCIPAL_NOT_SEQUENCER
        rejection = check_ranges(event, self.rules)
        if rejection is not None:
            return rejection.reason
        if event.timestamp_ms <= self.clock_ms:
            return Reason.TICK_NOT_NEWER
        self.clock_ms = event.timestamp_ms
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
        if is_linear and self.owners[buyer] != self.owners[seller]:
            # [SK-MARK-2] A wash between one owner's accounts leaves no premium sample.
            index_ticks = self.prices[spec.underlying][0]
            band = self.underlyings[spec.underlying].mark_band_ppm
            gap = event.price_ticks - index_ticks
            premium = abs(gap) * 1_000_000 // index_ticks * (1 if gap >= 0 else -1)
            self._add_premium(instrument_id, max(-band, min(band, premium)), event.quantity_lots)
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
        if self.settlement_ticks[spec.instrument] is not None:
            return Reason.INSTRUMENT_ALREADY_SETTLED
        if spec.kind is InstrumentKind.OPTION:
            return Reason.INSTRUMENT_NOT_MARKED_TO_MARKET
        price = self.prices.get(spec.underlying)
        if price is None:
            return Reason.PRICE_UNAVAILABLE
        if not self._admits({spec.underlying}, "variation_margin"):
            return Reason.ORACLE_NOT_ADMISSIBLE
        mark_ticks = self._mark_ticks(spec.instrument)
        asset = spec.settlement_asset
        instrument_id = spec.instrument
        asset_of_mark = asset
        flows: dict[str, int] = {}
        for account in sorted(self.holders[instrument_id]):
            quantity_lots, settled_ticks = self.positions[account][instrument_id]
            flows[account] = compute_settlement_minor(
                quantity_lots, mark_ticks, settled_ticks, spec.multiplier_minor
            )
        # [SK-VM-3] A loser that all its account could not cover stops the mark.
        for account, flow in flows.items():
            if -flow > self.balances[account].get(asset_of_mark, 0) and (
                -flow > self._worth_at_index(account, without=instrument_id)
            ):
                return Reason.VARIATION_MARGIN_SHORTFALL
        # [SK-DEBT-1] A loser merely short of cash owes the fund.
        self._settle_flows(flows, {})
        for account in flows:
            self.positions[account][instrument_id][1] = mark_ticks
        self.references[instrument_id] = mark_ticks
        return None

    # Market helpers shared by funding, expiry and liquidation.

    def _window(self, instrument_id: str) -> int:
        return self.underlyings[self.instruments[instrument_id].underlying].mark_window_ms

    def _premium_at(self, instrument_id: str, at_ms: int) -> int:
        """The size-weighted median premium of the samples counting at ``at_ms`` (SK-MARK-1)."""
        window = self._window(instrument_id)
        weights: dict[int, int] = {}
        for stamp, premium, lots in self.premiums[instrument_id]:
            if stamp <= at_ms < stamp + window:
                weights[premium] = weights.get(premium, 0) + lots
        total = sum(weights.values())
        if not total:
            return 0
        ascending = sorted(weights)

        def share(keep: Callable[[int], bool]) -> int:
            return 2 * sum(weights[q] for q in ascending if keep(q))

        below = next(p for p in ascending if share(lambda q, p=p: q <= p) >= total)
        above = next(p for p in reversed(ascending) if share(lambda q, p=p: q >= p) >= total)
        if below <= 0 <= above:
            return 0
        return below if abs(below) <= abs(above) else above

    def _integrate(self, instrument_id: str, start_ms: int, end_ms: int) -> int:
        """The mark premium's integral over [start, end), piece by piece (SK-FUNDING-2)."""
        window = self._window(instrument_id)
        moments = {start_ms, end_ms}
        for stamp, _, _ in self.premiums[instrument_id]:
            moments |= {m for m in (stamp, stamp + window) if start_ms < m < end_ms}
        ordered = sorted(moments)
        return sum(
            self._premium_at(instrument_id, left) * (right - left)
            for left, right in itertools.pairwise(ordered)
        )

    def _add_premium(self, instrument_id: str, premium: int, lots: int) -> None:
        """Integrate funding up to now, then keep the new sample, the smallest out first."""
        integral = self.premium_integrals[instrument_id]
        integral[0] += self._integrate(instrument_id, integral[2], self.clock_ms)
        integral[2] = self.clock_ms
        window = self._window(instrument_id)
        kept = [s for s in self.premiums[instrument_id] if s[0] + window > self.clock_ms]
        kept.append((self.clock_ms, premium, lots))
        while len(kept) > self.rules.mark_samples_max:
            kept.remove(min(kept, key=lambda sample: (sample[2], sample[0])))
        self.premiums[instrument_id] = kept

    def _mark_ticks(self, instrument_id: str) -> int:
        """The mark: the index shifted by the mark premium, at least 1 (SK-MARK-1)."""
        index_ticks = self.prices[self.instruments[instrument_id].underlying][0]
        premium = self._premium_at(instrument_id, self.clock_ms)
        return max(index_ticks + index_ticks * premium // PPM, 1)

    def _market(self) -> Market:
        return Market(
            self.clock_ms,
            {u: price for u, (price, _) in self.prices.items()},
            {u: vol for u, (vol, _) in self.volatilities.items()},
        )

    def _add_balance(self, account: str, asset: str, delta_minor: int) -> None:
        if delta_minor:
            self._set_balance(account, asset, self.balances[account].get(asset, 0) + delta_minor)

    def _collateral_worth(
        self, asset: str, amount_minor: int, *, sale: bool = True
    ) -> int | None:
        """A non-valuation balance at its liquidation price (SK-WATERFALL-1), or, with
        ``sale=False``, at its haircut value (SK-COLLATERAL-1); None if unpriced."""
        asset_rules = self.rules.asset_by_symbol[asset]
        underlying = asset_rules.price_underlying
        if underlying is None or underlying not in self.prices:
            return None
        return compute_collateral_value_minor(
            amount_minor,
            self.prices[underlying][0],
            self.underlyings[underlying].tick_value_minor,
            asset_rules.decimals,
            asset_rules.liquidation_discount_ppm if sale else asset_rules.haircut_ppm,
        )

    def _other_collateral(self, balances: dict[str, int]) -> int:
        """What every balance but the valuation asset's raises at its liquidation price."""
        total_minor = 0
        for asset, amount_minor in balances.items():
            if asset != self.rules.valuation_asset:
                total_minor += self._collateral_worth(asset, amount_minor) or 0
        return total_minor

    def _affordable(self, asset: str, units: int, budget_minor: int) -> int:
        """The most of ``units`` whose sale price is within ``budget_minor`` (by search)."""
        low, high = 0, max(units, 0)
        if budget_minor <= 0:
            return 0
        while low < high:
            middle = (low + high + 1) // 2
            if (self._collateral_worth(asset, middle) or 0) <= budget_minor:
                low = middle
            else:
                high = middle - 1
        return low

    def _sell(
        self, plan: _Plan, account: str, buyers: list[tuple[str, int | None]], taken: dict[str, int]
    ) -> dict[str, int]:
        """Sell ``taken`` to the buyers in order, each within its budget (None: unbounded).

        Budgets are the buyers' valuation cash as the plan stands, less their reserve; each
        purchase is priced on its own, rounded down. Returns what nobody bought.
        """
        asset = self.rules.valuation_asset
        unsold: dict[str, int] = {}
        for other, offered in sorted(taken.items()):
            left = offered
            for buyer, reserve in buyers:
                if not left:
                    break
                planned = plan.balances.get(buyer, {}).get(asset, 0)
                cash = self.balances[buyer].get(asset, 0) + planned
                budget = None if reserve is None else cash - reserve
                bought = left if budget is None else self._affordable(other, left, budget)
                if not bought:
                    continue
                price = self._collateral_worth(other, bought) or 0
                plan.add(account, other, -bought)
                plan.add(buyer, other, bought)
                plan.add(buyer, asset, -price)
                plan.add(account, asset, price)
                left -= bought
            if left:
                unsold[other] = left
        return unsold

    def _take_value(
        self, balances: dict[str, int], value_minor: int, *, sale: bool = True
    ) -> dict[str, int]:
        """Units of collateral to take for ``value_minor`` at the liquidation price
        (SK-WATERFALL-1).

        Non-valuation assets in symbol order, each the fewest units worth at least the rest,
        or its whole balance; assets without an index are worth nothing and are not taken.
        """
        taken: dict[str, int] = {}
        rest_minor = value_minor
        for asset in sorted(balances):
            if rest_minor <= 0:
                break
            if asset == self.rules.valuation_asset or not balances[asset]:
                continue
            asset_rules = self.rules.asset_by_symbol[asset]
            underlying = asset_rules.price_underlying
            if underlying is None or underlying not in self.prices:
                continue
            cut = asset_rules.liquidation_discount_ppm if sale else asset_rules.haircut_ppm
            per_unit = (
                self.prices[underlying][0]
                * self.underlyings[underlying].tick_value_minor
                * (PPM - cut)
            )
            if per_unit <= 0:
                continue
            units = min(
                ceil_div(rest_minor * 10**asset_rules.decimals * PPM, per_unit), balances[asset]
            )
            taken[asset] = units
            rest_minor -= self._collateral_worth(asset, units, sale=sale) or 0
        return taken

    def _transfer_price(self, instrument_id: str, lots: int) -> int:
        """The price a liquidation transfers ``lots`` (signed) at (SK-LIQ-2).

        Linear: the mark. Option: the model value in whole ticks, rounded against the
        liquidated account: down when it sells (a long), up when it buys back (a short).
        """
        spec = self.specs[instrument_id]
        if spec.kind is not InstrumentKind.OPTION:
            return self._mark_ticks(instrument_id)
        return model_price_ticks(self._market(), spec, round_up=lots < 0)

    # Funding, insurance, expiry, liquidation.

    def _funding(self, event: Funding) -> Reason | None:
        if event.principal != self.operator:
            return Reason.PRINCIPAL_NOT_OPERATOR
        spec = self.instruments.get(event.instrument)
        if spec is None:
            return Reason.INSTRUMENT_UNKNOWN
        if spec.kind is not InstrumentKind.PERPETUAL:
            return Reason.INSTRUMENT_NOT_PERPETUAL
        price = self.prices.get(spec.underlying)
        if price is None:
            return Reason.PRICE_UNAVAILABLE
        if not self._admits({spec.underlying}, "funding"):
            return Reason.ORACLE_NOT_ADMISSIBLE
        rules = self.underlyings[spec.underlying]
        instrument_id = spec.instrument
        if self.clock_ms < self.last_funding_ms[instrument_id] + rules.funding_interval_ms:
            return Reason.FUNDING_TOO_EARLY
        # [SK-FUNDING-1] Every whole interval since the last one charged, up to the limit.
        intervals = min(
            (self.clock_ms - self.last_funding_ms[instrument_id]) // rules.funding_interval_ms,
            self.rules.funding_intervals_max,
        )
        # [SK-FUNDING-2] The premium's average since the last charge, toward zero, clamped,
        # in whole ticks of the index per interval, truncated.
        value, since, until = self.premium_integrals[instrument_id]
        total = value + self._integrate(instrument_id, until, self.clock_ms)
        elapsed = self.clock_ms - since
        average = _sign(total) * (abs(total) // elapsed) if elapsed > 0 else 0
        clamp = rules.funding_clamp_ppm
        rate_ppm = max(-clamp, min(clamp, average))
        reference_ticks = self.references[instrument_id]
        delta_ticks = 0
        if reference_ticks:
            delta_ticks = _sign(rate_ppm) * (price[0] * abs(rate_ppm) // PPM) * intervals
            delta_ticks = max(
                1 - reference_ticks,
                min(delta_ticks, self.rules.price_ticks_max - reference_ticks),
            )
        self.references[instrument_id] = reference_ticks + delta_ticks
        for account in self.holders[instrument_id]:
            self.positions[account][instrument_id][1] += delta_ticks
        self.funding_index_ticks[instrument_id] += delta_ticks
        self.last_funding_ms[instrument_id] += intervals * rules.funding_interval_ms
        self.premium_integrals[instrument_id] = [0, self.clock_ms, self.clock_ms]
        return None

    def _fund_insurance(self, event: FundInsurance) -> Reason | None:
        if event.principal != self.operator:
            return Reason.PRINCIPAL_NOT_OPERATOR
        rejection = check_ranges(event, self.rules)
        if rejection is not None:
            return rejection.reason
        if event.asset not in self.assets:
            return Reason.ASSET_UNKNOWN
        custody_minor = self.custody.get(event.asset, 0) + event.amount_minor
        if custody_minor >= VALUE_LIMIT:
            return Reason.CUSTODY_LIMIT_EXCEEDED
        self._add_balance(INSURANCE_ACCOUNT, event.asset, event.amount_minor)
        self.custody[event.asset] = custody_minor
        return None

    def _expire(self, event: Expire) -> Reason | None:
        if event.principal != self.operator:
            return Reason.PRINCIPAL_NOT_OPERATOR
        spec = self.instruments.get(event.instrument)
        if spec is None:
            return Reason.INSTRUMENT_UNKNOWN
        instrument_id = spec.instrument
        if self.settlement_ticks[instrument_id] is not None:
            return Reason.INSTRUMENT_ALREADY_SETTLED
        if spec.expiry_ms is None or self.clock_ms < spec.expiry_ms:
            return Reason.INSTRUMENT_NOT_EXPIRED
        fixed = self.settlement_prices.get(f"{spec.underlying}@{spec.expiry_ms}")
        if fixed is None:
            return Reason.SETTLEMENT_PRICE_UNAVAILABLE
        if not self._admits({spec.underlying}, "settlement"):
            return Reason.ORACLE_NOT_ADMISSIBLE
        self._settle_expiry(spec, fixed)
        return None

    def _settle_expiry(self, spec: ListInstrument, settlement_ticks: int) -> None:
        """Pay every holder at the settlement price through the waterfall (SK-EXPIRY-3)."""
        instrument_id = spec.instrument
        asset = self.rules.valuation_asset
        amounts = self._expiry_amounts(spec, settlement_ticks)
        deficits = {}
        for account, amount in amounts.items():
            if -amount > self.balances[account].get(asset, 0):
                worth = self._worth_at_index(account, without=instrument_id)
                deficits[account] = max(-amount - worth, 0)
        lost_minor = self._settle_flows(amounts, deficits)
        if lost_minor:
            self.socialized_loss[asset] = self.socialized_loss.get(asset, 0) + lost_minor
        for account in self.holders[instrument_id]:
            del self.positions[account][instrument_id]
        self.holders[instrument_id] = set()
        self.open_interest[instrument_id] = 0
        self.settlement_ticks[instrument_id] = settlement_ticks

    def _worth_at_index(self, account: str, *, without: str) -> int:
        """An account at liquidation, one position left out (SK-DEBT-1): its cash, its
        collateral at the liquidation price, its credit, its positions at the index."""
        asset = self.rules.valuation_asset
        worth = self._credit(account) + self.balances[account].get(asset, 0)
        for other, units in self.balances[account].items():
            rules = self.rules.asset_by_symbol[other]
            underlying = rules.price_underlying
            if other != asset and underlying is not None and underlying in self.prices:
                worth += self._collateral_worth(other, units) or 0
        rest = {i: p for i, p in self.positions[account].items() if i != without}
        if rest:
            report = self._margin({}, rest)
            worth += report.unrealized_minor + report.option_value_minor
        return worth

    def _expiry_amounts(self, spec: ListInstrument, settlement_ticks: int) -> dict[str, int]:
        """[SK-EXPIRY-1] What each holder receives (negative: pays), in account-id order."""
        amounts: dict[str, int] = {}
        for account in sorted(self.holders[spec.instrument]):
            quantity_lots, settled_ticks = self.positions[account][spec.instrument]
            if spec.kind is InstrumentKind.OPTION:
                assert spec.strike_ticks is not None
                if spec.option_type is OptionType.CALL:
                    intrinsic = max(settlement_ticks - spec.strike_ticks, 0)
                else:
                    intrinsic = max(spec.strike_ticks - settlement_ticks, 0)
                amounts[account] = quantity_lots * intrinsic * spec.multiplier_minor
            else:
                amounts[account] = compute_settlement_minor(
                    quantity_lots, settlement_ticks, settled_ticks, spec.multiplier_minor
                )
        return amounts

    def _liquidate(self, event: Liquidate) -> Reason | None:
        account, liquidator = event.account, event.liquidator
        if account == liquidator:
            return Reason.SELF_LIQUIDATION
        if account not in self.owners or liquidator not in self.owners:
            return Reason.ACCOUNT_UNKNOWN
        if self.owners[liquidator] != event.principal:
            return Reason.PRINCIPAL_NOT_OWNER
        if not self._admits(self._reads(account) | self._reads(liquidator), "liquidation"):
            return Reason.ORACLE_NOT_ADMISSIBLE
        debt = self.debts.get(account, 0)
        if not self.positions[account] and not debt:
            return Reason.NOTHING_TO_LIQUIDATE
        # [SK-LIQ-1] Below maintenance, computed now, or in debt to the fund.
        before = self._margin(self.balances[account], self.positions[account], -debt)
        if before.equity_minor >= before.maintenance_minor and not debt:
            return Reason.NOT_LIQUIDATABLE
        plan = self._liquidation_plan(account, liquidator, before)
        # [SK-LIQ-5] The liquidator stays within the position limits, can pay its part of
        # the plan and can margin the result.
        held_now = self.positions[liquidator]
        moved = {i: lots for i, lots in plan.lots.get(liquidator, {}).items() if lots}
        opened = [i for i in moved if i not in held_now]
        if opened and len(held_now) + len(opened) > self.rules.positions_per_account_max:
            return Reason.POSITION_COUNT_EXCEEDED
        for i, lots in moved.items():
            if abs(lots + (held_now[i][0] if i in held_now else 0)) > self.rules.position_lots_max:
                return Reason.POSITION_TOO_LARGE
        balances = dict(self.balances[liquidator])
        for asset, delta_minor in plan.balances.get(liquidator, {}).items():
            balances[asset] = balances.get(asset, 0) + delta_minor
        if any(amount_minor < 0 for amount_minor in balances.values()):
            return Reason.INSUFFICIENT_FUNDS
        balances = {asset: amount for asset, amount in balances.items() if amount}
        positions = {i: list(p) for i, p in self.positions[liquidator].items()}
        for instrument_id, lots in plan.lots.get(liquidator, {}).items():
            held = positions.setdefault(instrument_id, [0, self.references[instrument_id]])
            held[0] += lots
            if not held[0]:
                del positions[instrument_id]
        if not self._meets_trade_margin(liquidator, balances, positions):
            return Reason.MARGIN_INSUFFICIENT
        self._apply_plan(plan)
        return None

    def _apply_plan(self, plan: _Plan) -> None:
        """Book the plan's balance and position changes, open interest and holders with them."""
        for account, change_minor in plan.credits.items():
            self._move_credit(account, change_minor)
        for account, deltas in plan.balances.items():
            for asset, delta_minor in deltas.items():
                self._add_balance(account, asset, delta_minor)
        for account, moves in plan.lots.items():
            held = self.positions[account]
            for instrument_id, lots in moves.items():
                if not lots:
                    continue
                old_lots = held[instrument_id][0] if instrument_id in held else 0
                new_lots = old_lots + lots
                if new_lots:
                    held[instrument_id] = [new_lots, self.references[instrument_id]]
                    self.holders[instrument_id].add(account)
                else:
                    del held[instrument_id]
                    self.holders[instrument_id].discard(account)
                self.open_interest[instrument_id] += max(new_lots, 0) - max(old_lots, 0)

    def _liquidation_plan(self, account: str, liquidator: str, before: MarginReport) -> _Plan:
        """The first resolving rung of the ladder, else everything, else bankruptcy."""
        positions = self.positions[account]
        prices = {i: self._transfer_price(i, p[0]) for i, p in positions.items()}
        # A debtor is first offered rung 0: its collateral alone, sold to repay the debt.
        for rung in range(0 if self.debts.get(account) else 1, 11):
            closes = {i: _sign(p[0]) * ceil_div(abs(p[0]) * rung, 10) for i, p in positions.items()}
            plan = self._rung_plan(account, liquidator, closes, prices, before, last=rung == 10)
            if plan is not None:
                return plan
        return self._bankruptcy_plan(account, liquidator, prices)

    def _rung_plan(
        self,
        account: str,
        liquidator: str,
        closes: dict[str, int],
        prices: dict[str, int],
        before: MarginReport,
        *,
        last: bool,
    ) -> _Plan | None:
        asset = self.rules.valuation_asset
        balances = self.balances[account]
        positions = self.positions[account]
        flows = {
            i: compute_settlement_minor(
                lots, prices[i], positions[i][1], self.specs[i].multiplier_minor
            )
            for i, lots in closes.items()
        }
        # A debt is cash already owed to the fund (SK-DEBT-1).
        cash_minor = balances.get(asset, 0) - self.debts.get(account, 0) + sum(flows.values())
        other_minor = self._other_collateral(balances)
        if cash_minor + other_minor < 0:
            return None
        remaining = {i: [p[0] - closes[i], p[1]] for i, p in positions.items() if p[0] != closes[i]}
        closed = self._margin(_with(balances, asset, cash_minor), remaining)
        # The penalty per underlying on the notional closed at transfer prices.
        notional: dict[str, int] = {}
        for i, lots in closes.items():
            underlying = self.specs[i].underlying
            notional[underlying] = notional.get(underlying, 0) + compute_notional_minor(
                lots, prices[i], self.specs[i].multiplier_minor
            )
        splits = [
            compute_fee_split(n, self.underlyings[u].liquidation_penalty_ppm)
            for u, n in notional.items()
        ]
        penalty_minor = sum(split.charged_minor for split in splits)
        cap_minor = min(cash_minor + other_minor, closed.equity_minor)
        if remaining and before.maintenance_minor > 0:
            cap_minor = min(
                cap_minor,
                closed.equity_minor
                - ceil_div(before.equity_minor * closed.maintenance_minor, before.maintenance_minor)
                - len(balances),
            )
        capped = penalty_minor > cap_minor
        if capped:
            penalty_minor = max(cap_minor, 0)
        plan = _Plan()
        plan.add(account, asset, sum(flows.values()))
        plan.add(liquidator, asset, -sum(flows.values()))
        proceeds_minor = 0
        if penalty_minor > cash_minor:
            sold = self._take_value(balances, penalty_minor - cash_minor)
            buyers = [(liquidator, 0), (INSURANCE_ACCOUNT, 0), (liquidator, None)]
            self._sell(plan, account, buyers, sold)
            proceeds_minor = plan.balances[account][asset] - sum(flows.values())
            if proceeds_minor < penalty_minor - cash_minor:
                return None
        after_minor = cash_minor - penalty_minor + proceeds_minor
        if not last:
            after_balances = dict(balances)
            for other, delta in plan.balances[account].items():
                after_balances = _with(after_balances, other, after_balances.get(other, 0) + delta)
            after_balances = _with(after_balances, asset, after_minor)
            after = self._margin(after_balances, remaining)
            if after.equity_minor < after.initial_minor or (
                after.equity_minor * before.maintenance_minor
                < before.equity_minor * after.maintenance_minor
            ):
                return None
        plan.add(account, asset, -penalty_minor)
        if capped:
            plan.add(INSURANCE_ACCOUNT, asset, penalty_minor)
        else:
            plan.add(INSURANCE_ACCOUNT, asset, sum(split.pool_minor for split in splits))
            plan.add(RESIDUE_ACCOUNT, asset, sum(split.residue_minor for split in splits))
        for i, lots in closes.items():
            plan.move(account, i, -lots)
            plan.move(liquidator, i, lots)
        return plan

    def _bankruptcy_plan(self, account: str, liquidator: str, prices: dict[str, int]) -> _Plan:
        """Sell all priced collateral; the fund, then auto-deleveraging, cover the rest."""
        asset = self.rules.valuation_asset
        balances = self.balances[account]
        positions = self.positions[account]
        plan = _Plan()
        flows = {
            i: compute_settlement_minor(p[0], prices[i], p[1], self.specs[i].multiplier_minor)
            for i, p in positions.items()
        }
        # Everything of value is offered: the liquidator (keeping what its gains cost it),
        # then the fund, each within its cash; what is left goes in kind (SK-LIQ-4).
        offered = {
            other: units
            for other, units in balances.items()
            if other != asset and self._collateral_worth(other, units)
        }
        reserve = sum(flow for flow in flows.values() if flow > 0)
        unsold = self._sell(plan, account, [(liquidator, reserve), (INSURANCE_ACCOUNT, 0)], offered)
        proceeds_minor = plan.balances.get(account, {}).get(asset, 0)
        debt = self.debts.get(account, 0)
        cash_minor = balances.get(asset, 0) - debt + proceeds_minor + sum(flows.values())
        fund_minor = self.balances[INSURANCE_ACCOUNT].get(asset, 0) + plan.balances.get(
            INSURANCE_ACCOUNT, {}
        ).get(asset, 0)
        if fund_minor >= -cash_minor:
            taken = set(flows)
            fund_minor = -cash_minor
        else:
            taken = {i for i, flow in flows.items() if flow >= 0}
        plan.add(INSURANCE_ACCOUNT, asset, -fund_minor)
        for i in sorted(taken):
            plan.add(liquidator, asset, -flows[i])
            plan.move(account, i, -positions[i][0])
            plan.move(liquidator, i, positions[i][0])
        cash_minor = (
            balances.get(asset, 0)
            - debt
            + proceeds_minor
            + fund_minor
            + sum(flows[i] for i in taken)
        )
        if cash_minor < 0:
            # [SK-DEBT-3] What it cannot repay of its debt is written off.
            plan.credits[account] = -cash_minor
            debt += cash_minor
            cash_minor = 0
        losing = sorted(i for i in flows if i not in taken)
        if losing:
            self._deleverage(
                account=account,
                losing=losing,
                flows=flows,
                prices=prices,
                cash_minor=cash_minor,
                plan=plan,
                unsold=unsold,
            )
        else:
            assert cash_minor == 0, cash_minor
        # What is left of the debt is repaid from the cash the account keeps (SK-DEBT-2).
        plan.add(account, asset, -balances.get(asset, 0) - proceeds_minor + debt)
        return plan

    def _deleverage(
        self,
        *,
        account: str,
        losing: list[str],
        flows: dict[str, int],
        prices: dict[str, int],
        cash_minor: int,
        plan: _Plan,
        unsold: dict[str, int],
    ) -> None:
        """Close each losing position against the opposite side, ranked (SK-ADL); pay them
        what the account has, and the collateral nobody bought in kind, pro rata."""
        weights: dict[str, Fraction] = {}
        for i in losing:
            lots = self.positions[account][i][0]
            cost_minor = -flows[i]
            ranked = sorted(
                (
                    self._adl_rank(holder, i, prices[i])
                    for holder in self.holders[i]
                    if holder != account and _sign(self.positions[holder][i][0]) == -_sign(lots)
                ),
            )
            left = abs(lots)
            for *_, holder in ranked:
                if not left:
                    break
                held = self.positions[holder][i][0]
                given = min(abs(held), left)
                left -= given
                plan.move(holder, i, -_sign(held) * given)
                weights[holder] = weights.get(holder, Fraction(0)) + Fraction(
                    given * cost_minor, abs(lots)
                )
            assert not left, (i, left)
            plan.move(account, i, -lots)
        total = sum(weights.values(), Fraction(0))
        asset = self.rules.valuation_asset
        paid_minor = 0
        for holder, weight in weights.items():
            share = cash_minor * weight / total
            pay_minor = share.numerator // share.denominator
            plan.add(holder, asset, pay_minor)
            paid_minor += pay_minor
        plan.add(RESIDUE_ACCOUNT, asset, cash_minor - paid_minor)
        for other, units in sorted(unsold.items()):
            given_units = 0
            for holder, weight in weights.items():
                share = units * weight / total
                part = share.numerator // share.denominator
                plan.add(holder, other, part)
                given_units += part
            plan.add(account, other, -units)
            plan.add(RESIDUE_ACCOUNT, other, units - given_units)

    def _adl_rank(self, holder: str, instrument_id: str, price_ticks: int) -> tuple[Any, ...]:
        """Sort key: unbounded leverage first, then profit x leverage, descending; then id."""
        quantity_lots, settled_ticks = self.positions[holder][instrument_id]
        profit_minor = compute_settlement_minor(
            quantity_lots, price_ticks, settled_ticks, self.specs[instrument_id].multiplier_minor
        )
        notional_minor = sum(
            abs(p[0]) * self.prices[self.specs[i].underlying][0] * self.specs[i].multiplier_minor
            for i, p in self.positions[holder].items()
        )
        equity_minor = self._margin(
            self.balances[holder], self.positions[holder], self._credit(holder)
        ).equity_minor
        if equity_minor <= 0:
            return (0, -profit_minor * notional_minor, holder)
        return (1, -Fraction(profit_minor * notional_minor, equity_minor), holder)


class _Plan:
    """A liquidation's balance and position changes, per account, before they are booked."""

    def __init__(self) -> None:
        self.balances: dict[str, dict[str, int]] = {}
        self.lots: dict[str, dict[str, int]] = {}
        # Account -> change of its claim less debt: a debt written off (SK-DEBT-3).
        self.credits: dict[str, int] = {}

    def add(self, account: str, asset: str, delta_minor: int) -> None:
        held = self.balances.setdefault(account, {})
        held[asset] = held.get(asset, 0) + delta_minor

    def move(self, account: str, instrument_id: str, lots: int) -> None:
        held = self.lots.setdefault(account, {})
        held[instrument_id] = held.get(instrument_id, 0) + lots


def _with(balances: dict[str, int], asset: str, amount_minor: int) -> dict[str, int]:
    """A copy of ``balances`` with one balance set (removed at zero; may be negative)."""
    copy = dict(balances)
    if amount_minor:
        copy[asset] = amount_minor
    else:
        copy.pop(asset, None)
    return copy
