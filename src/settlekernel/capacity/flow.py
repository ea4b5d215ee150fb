"""The built-in order flow the capacity model measures (SK-CAP-1).

A deterministic stream shaped like a venue's day: accounts opened and funded, a perpetual,
a future and (optionally) two options listed, then mostly trades between random pairs, with
both oracle sources reporting every ``oracle_every`` events, the odd deposit and withdrawal,
and variation margin on the linear instruments every ``mark_every`` events. A pure function
of its parameters and seed; the lines are canonical wire JSON, ready for a journal.
"""

from __future__ import annotations

import random
from typing import Final

import attrs

from settlekernel.core.events import (
    Deposit,
    Event,
    FundInsurance,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    Trade,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.rules import DEFAULT_RULES, RuleSet
from settlekernel.core.wire import encode_event

T0_MS: Final = 1_800_000_000_000
MS_PER_EVENT: Final = 50
USDC: Final = 10**6
INDEX_TICKS: Final = 9_000_000
LINEAR: Final = ("BTC-PERP", "BTC-FUT")
OPTIONS: Final = ("BTC-C-100K", "BTC-P-85K")


@attrs.frozen
class FlowParams:
    """The shape of the built-in flow."""

    n_events: int = 6_000
    n_accounts: int = 200
    seed: int = 0
    options: bool = True
    oracle_every: int = 100
    mark_every: int = 1_000


def listings(rules: RuleSet, *, options: bool) -> list[Event]:
    """Return the flow's listings: a BTC perpetual and future, and two options if asked."""
    operator = rules.roles.operator
    expiry_ms = T0_MS + 30 * 86_400_000
    found: list[Event] = [
        _listing(operator, "BTC-PERP", InstrumentKind.PERPETUAL),
        _listing(operator, "BTC-FUT", InstrumentKind.FUTURE, expiry_ms=expiry_ms),
    ]
    if options:
        found += [
            _listing(
                operator,
                OPTIONS[0],
                InstrumentKind.OPTION,
                expiry_ms=expiry_ms,
                strike_ticks=10_000_000,
                option_type=OptionType.CALL,
            ),
            _listing(
                operator,
                OPTIONS[1],
                InstrumentKind.OPTION,
                expiry_ms=expiry_ms,
                strike_ticks=8_500_000,
                option_type=OptionType.PUT,
            ),
        ]
    return found


def _listing(
    operator: str, instrument: str, kind: InstrumentKind, **terms: int | OptionType
) -> ListInstrument:
    """Return a BTC listing settled in USDC, 10 minor units per tick."""
    return ListInstrument(
        principal=operator,
        instrument=instrument,
        kind=kind,
        underlying="BTC",
        settlement_asset="USDC",
        multiplier_minor=10,
        **terms,  # type: ignore[arg-type]
    )


def _deposit(owner: str, account: str, amount_minor: int) -> Deposit:
    return Deposit(principal=owner, account=account, asset="USDC", amount_minor=amount_minor)


class _Flow:
    """The generator's running view: the index, the trade counter, the event position."""

    def __init__(self, params: FlowParams, rules: RuleSet) -> None:
        self.params = params
        self.rules = rules
        self.rng = random.Random(params.seed)  # noqa: S311 (a seeded workload, not a secret)
        self.index = INDEX_TICKS
        self.trades = 0
        self.events: list[Event] = []
        self.accounts = [f"acct-{j:05d}" for j in range(params.n_accounts)]
        self.owners = [f"owner-{j:05d}" for j in range(params.n_accounts)]
        self.next_oracle = 0
        self.next_mark = params.mark_every // 2

    def now_ms(self) -> int:
        return T0_MS + len(self.events) * MS_PER_EVENT

    def setup(self) -> None:
        rules, events = self.rules, self.events
        pairs = list(zip(self.owners, self.accounts, strict=True))
        events += [OpenAccount(principal=o, account=a) for o, a in pairs]
        events += [_deposit(o, a, self.rng.randint(200_000, 2_000_000) * USDC) for o, a in pairs]
        events.append(
            FundInsurance(principal=rules.roles.operator, asset="USDC", amount_minor=10**6 * USDC)
        )
        events += listings(rules, options=self.params.options)
        self.oracle()
        for source in rules.roles.oracles:
            events.append(
                OracleVolatility(
                    principal=source,
                    underlying="BTC",
                    volatility_ppm=550_000,
                    timestamp_ms=self.now_ms(),
                )
            )

    def oracle(self) -> None:
        """Move the index by up to 0.3 %, pulled back toward its start; every source reports."""
        drift = (INDEX_TICKS - self.index) // 100
        self.index += drift + self.rng.randint(-self.index // 330, self.index // 330)
        for source in self.rules.roles.oracles:
            self.events.append(
                OraclePrice(
                    principal=source,
                    underlying="BTC",
                    price_ticks=self.index,
                    timestamp_ms=self.now_ms(),
                )
            )

    def trade(self) -> Trade:
        rng = self.rng
        buyer, seller = rng.sample(range(len(self.accounts)), 2)
        instruments = LINEAR + OPTIONS if self.params.options else LINEAR
        instrument = rng.choice(instruments)
        if instrument in OPTIONS:
            price = rng.randint(20_000, 400_000)
        else:
            price = self.index + rng.randint(-self.index // 1000, self.index // 1000)
        self.trades += 1
        return Trade(
            principal=self.rules.roles.matchers[0],
            trade_id=f"T{self.trades:09d}",
            buyer=self.accounts[buyer],
            seller=self.accounts[seller],
            instrument=instrument,
            quantity_lots=rng.randint(1, 20),
            price_ticks=price,
            buyer_fee_rate_ppm=rng.choice((0, 50, 100, 200)),
            seller_fee_rate_ppm=rng.choice((0, 50, 100, 200)),
        )

    def next_event(self) -> list[Event]:
        """Return what the flow does next: an oracle round, a mark, or mostly a trade."""
        position, params = len(self.events), self.params
        if position >= self.next_oracle:
            self.next_oracle = position + params.oracle_every
            self.oracle()
            return []
        if position >= self.next_mark:
            self.next_mark = position + params.mark_every
            operator = self.rules.roles.operator
            return [VariationMargin(principal=operator, instrument=x) for x in LINEAR]
        j = self.rng.randrange(len(self.accounts))
        draw = self.rng.random()
        if draw < 0.05:
            return [_deposit(self.owners[j], self.accounts[j], 10_000 * USDC)]
        if draw < 0.08:
            withdraw = Withdraw(
                principal=self.owners[j],
                account=self.accounts[j],
                asset="USDC",
                amount_minor=1_000 * USDC,
            )
            return [withdraw]
        return [self.trade()]


def flow_events(params: FlowParams, rules: RuleSet = DEFAULT_RULES) -> list[Event]:
    """Return the flow's events (at least the set-up, then up to ``n_events`` in all)."""
    flow = _Flow(params, rules)
    flow.setup()
    while len(flow.events) < params.n_events:
        flow.events += flow.next_event()
    return flow.events


def flow_lines(params: FlowParams, rules: RuleSet = DEFAULT_RULES) -> list[str]:
    """Return the flow as canonical wire lines."""
    return [encode_event(event) for event in flow_events(params, rules)]
