"""The portfolio file of ``settlekernel margin``: a book and a market, in JSON.

```json
{
  "clock_ms": 0,
  "market": {"BTC": {"index_ticks": 9950000, "volatility_ppm": 600000}},
  "balances": {"USDC": 2000000000, "BTC": 100000000},
  "positions": [
    {"instrument": {"id": "BTC-110000-C", "kind": "option", "underlying": "BTC",
                    "multiplier_minor": 10, "expiry_ms": 3024000000,
                    "strike_ticks": 11000000, "option_type": "call"},
     "quantity_lots": -1000, "settled_price_ticks": 0}
  ]
}
```

Parsing is as strict as the event decoder: integers only, no unknown or missing keys; a
problem raises ``PortfolioError`` with the path of the offending value.
"""

from __future__ import annotations

import json
from typing import Any, Final

from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import Instrument
from settlekernel.core.rules import RuleSet
from settlekernel.margin.portfolio import Exposure, Market, Portfolio

_INSTRUMENT_KEYS: Final = {
    "id",
    "kind",
    "underlying",
    "multiplier_minor",
    "expiry_ms",
    "strike_ticks",
    "option_type",
}


class PortfolioError(ValueError):
    """A portfolio file that cannot be read; the message names the path of the value."""


def parse_portfolio(text: str, rules: RuleSet) -> tuple[Portfolio, Market]:
    """Return the portfolio and the market a portfolio file describes."""
    try:
        document = json.loads(text, parse_float=_no_float, parse_constant=_no_float)
    except (ValueError, RecursionError) as error:
        raise PortfolioError(f"not valid JSON: {error}") from error
    root = _object("$", document, {"clock_ms", "market", "balances", "positions"})
    market_table = _object("$.market", root["market"], None)
    index, volatility = {}, {}
    for underlying, quote in market_table.items():
        where = f"$.market.{underlying}"
        if underlying not in rules.underlying_by_symbol:
            raise PortfolioError(f"{where}: {underlying} is not an underlying of the rules")
        fields = _object(where, quote, {"index_ticks", "volatility_ppm"})
        index[underlying] = _positive(f"{where}.index_ticks", fields["index_ticks"])
        volatility[underlying] = _natural(f"{where}.volatility_ppm", fields["volatility_ppm"])
    balances = {}
    for asset, amount in _object("$.balances", root["balances"], None).items():
        if asset not in rules.asset_by_symbol:
            raise PortfolioError(f"$.balances.{asset}: {asset} is not an asset of the rules")
        balances[asset] = _natural(f"$.balances.{asset}", amount)
    if not isinstance(root["positions"], list):
        raise PortfolioError("$.positions: expected a list")
    exposures = [
        _exposure(f"$.positions[{n}]", item, rules, index)
        for n, item in enumerate(root["positions"])
    ]
    market = Market(_natural("$.clock_ms", root["clock_ms"]), index, volatility)
    return Portfolio(balances, exposures), market


def _exposure(where: str, item: object, rules: RuleSet, index: dict[str, int]) -> Exposure:
    fields = _object(where, item, {"instrument", "quantity_lots", "settled_price_ticks"})
    spec = _object(f"{where}.instrument", fields["instrument"], None)
    unknown = sorted(set(spec) - _INSTRUMENT_KEYS)
    if unknown:
        raise PortfolioError(f"{where}.instrument: unknown key {unknown[0]!r}")
    try:
        kind = InstrumentKind(spec["kind"])
        option_type = None if spec.get("option_type") is None else OptionType(spec["option_type"])
    except (KeyError, ValueError) as error:
        raise PortfolioError(f"{where}.instrument: bad kind or option_type ({error})") from error
    underlying = spec.get("underlying")
    if underlying not in rules.underlying_by_symbol or underlying not in index:
        raise PortfolioError(f"{where}.instrument.underlying: {underlying!r} has no market")
    is_option = kind is InstrumentKind.OPTION
    if is_option and (spec.get("strike_ticks") is None or option_type is None):
        raise PortfolioError(f"{where}.instrument: an option needs strike_ticks and option_type")
    if kind is not InstrumentKind.PERPETUAL and spec.get("expiry_ms") is None:
        raise PortfolioError(f"{where}.instrument: a {kind.value} needs expiry_ms")
    instrument = Instrument(
        id=str(spec.get("id", "position")),
        kind=kind,
        underlying=underlying,
        settlement_asset=rules.valuation_asset,
        multiplier_minor=_positive(
            f"{where}.instrument.multiplier_minor", spec.get("multiplier_minor")
        ),
        expiry_ms=None
        if kind is InstrumentKind.PERPETUAL
        else _natural(f"{where}.instrument.expiry_ms", spec["expiry_ms"]),
        strike_ticks=_positive(f"{where}.instrument.strike_ticks", spec["strike_ticks"])
        if is_option
        else None,
        option_type=option_type if is_option else None,
        reference_ticks=0,
    )
    quantity = _integer(f"{where}.quantity_lots", fields["quantity_lots"])
    settled = _natural(f"{where}.settled_price_ticks", fields["settled_price_ticks"])
    return Exposure(instrument, quantity, 0 if is_option else settled)


class _NonInteger:
    """A JSON number with a fraction or exponent (or NaN/Infinity): never a valid amount."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _no_float(text: str) -> object:
    return _NonInteger(text)


def _object(where: str, value: object, keys: set[str] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PortfolioError(f"{where}: expected an object")
    if keys is not None:
        missing, unknown = sorted(keys - set(value)), sorted(set(value) - keys)
        if missing:
            raise PortfolioError(f"{where}: missing key {missing[0]!r}")
        if unknown:
            raise PortfolioError(f"{where}: unknown key {unknown[0]!r}")
    return value


def _integer(where: str, value: object) -> int:
    if type(value) is not int:
        raise PortfolioError(f"{where}: expected an integer, got {value!r}")
    return value


def _natural(where: str, value: object) -> int:
    number = _integer(where, value)
    if number < 0:
        raise PortfolioError(f"{where}: expected a non-negative integer, got {number}")
    return number


def _positive(where: str, value: object) -> int:
    number = _integer(where, value)
    if number < 1:
        raise PortfolioError(f"{where}: expected a positive integer, got {number}")
    return number
