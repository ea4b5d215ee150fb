"""The TOML form of a rule set: parse a rules file over a base, dump one that reads back.

A rules file overrides the defaults: top-level values replace theirs, ``[roles]`` replaces
the roles it names, and ``[assets.SYMBOL]`` / ``[underlyings.SYMBOL]`` tables add or amend
one entry each (a new entry must give every key). Unknown keys, floats, booleans and
strings where a number belongs are errors, never silently ignored.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any, Final

import attrs

from settlekernel.core.rules import (
    ASSET_FIELDS,
    ASSET_INT_FIELDS,
    DEFAULT_RULES,
    INT_SCALAR_FIELDS,
    UNDERLYING_FIELDS,
    AssetRules,
    Roles,
    RuleSet,
    UnderlyingRules,
    check_rules,
)

# [SK-RULES-3] A run of more digits than this (underscores included) anywhere in a rules file
# refuses it; no rule holds a number of 2**96 or more (29 digits).
NUMBER_DIGITS_MAX: Final = 78
_LONG_NUMBER: Final = re.compile(rf"[0-9_]{{{NUMBER_DIGITS_MAX + 1},}}")


class RulesError(ValueError):
    """A rules file or rule set that cannot be used; the message names the key."""


def parse_rules_toml(text: str, base: RuleSet = DEFAULT_RULES, *, check: bool = True) -> RuleSet:
    """Parse a rules file over ``base``; raise ``RulesError`` naming the first bad key.

    With ``check=False`` a well-formed but unsound rule set (SK-RULES) is returned anyway:
    ``settlekernel verify`` loads it so that the theorems can show what it breaks.
    """
    if _LONG_NUMBER.search(text) is not None:
        # Refused before TOML converts it, so the answer does not depend on Python's limit
        # on string-to-integer conversion (SK-RULES-3).
        raise RulesError(f"rules file holds a number of more than {NUMBER_DIGITS_MAX} digits")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"rules file is not valid TOML: {error}") from error
    _reject_unknown(
        "rules", document, {*INT_SCALAR_FIELDS, "valuation_asset", "roles", "assets", "underlyings"}
    )
    scalars: dict[str, Any] = {
        name: _integer(name, document[name]) for name in INT_SCALAR_FIELDS if name in document
    }
    if "valuation_asset" in document:
        scalars["valuation_asset"] = _string("valuation_asset", document["valuation_asset"])
    rules = attrs.evolve(base, **scalars)
    rules = attrs.evolve(rules, roles=_parse_roles(document.get("roles", {}), rules.roles))
    assets = {a.symbol: a for a in rules.assets}
    for symbol, table in _tables("assets", document.get("assets", {})).items():
        _reject_unknown(f"assets.{symbol}", table, set(ASSET_FIELDS))
        assets[symbol] = AssetRules(symbol=symbol, **_asset_fields(symbol, table, assets))
    underlyings = {u.symbol: u for u in rules.underlyings}
    for symbol, table in _tables("underlyings", document.get("underlyings", {})).items():
        where = f"underlyings.{symbol}"
        _reject_unknown(where, table, set(UNDERLYING_FIELDS))
        fields = _merged(where, table, underlyings.get(symbol), UNDERLYING_FIELDS)
        underlyings[symbol] = UnderlyingRules(symbol=symbol, **fields)
    rules = attrs.evolve(
        rules,
        assets=tuple(sorted(assets.values(), key=lambda a: a.symbol)),
        underlyings=tuple(sorted(underlyings.values(), key=lambda u: u.symbol)),
    )
    problems = check_rules(rules) if check else []
    if problems:
        raise RulesError("rules are unsound: " + "; ".join(problems))
    return rules


def _asset_fields(
    symbol: str, table: dict[str, Any], assets: dict[str, AssetRules]
) -> dict[str, Any]:
    where = f"assets.{symbol}"
    current = assets.get(symbol)
    fields = _merged(where, table, current, ASSET_INT_FIELDS)
    if "price_underlying" in table:
        value = table["price_underlying"]
        fields["price_underlying"] = (
            None if value == "" else _string(f"{where}.price_underlying", value)
        )
    else:
        fields["price_underlying"] = None if current is None else current.price_underlying
    return fields


def _reject_unknown(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RulesError(f"{where}: unknown key {unknown[0]!r} (allowed: {sorted(allowed)})")


def _integer(key: str, value: object) -> int:
    if type(value) is not int:
        raise RulesError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
    return value


def _string(key: str, value: object) -> str:
    if type(value) is not str:
        raise RulesError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
    return value


def _tables(key: str, value: object) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise RulesError(f"{key}: expected tables such as [{key}.SYMBOL]")
    return value


def _merged(
    where: str, table: dict[str, Any], current: object | None, names: tuple[str, ...]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in names:
        if name in table:
            fields[name] = _integer(f"{where}.{name}", table[name])
        elif current is not None:
            fields[name] = getattr(current, name)
        else:
            raise RulesError(f"{where}: missing key {name!r} for a new entry")
    return fields


def _parse_roles(table: object, current: Roles) -> Roles:
    if not isinstance(table, dict):
        raise RulesError("roles: expected a table")
    _reject_unknown("roles", table, {"operator", "oracles", "matchers", "sequencer", "governor"})
    operator = _string("roles.operator", table.get("operator", current.operator))
    sequencer = _string("roles.sequencer", table.get("sequencer", current.sequencer))
    governor = _string("roles.governor", table.get("governor", current.governor))
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("oracles", "matchers"):
        value = table.get(name, list(getattr(current, name)))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"roles.{name}: expected a list of strings")
        lists[name] = tuple(value)
    return Roles(
        operator=operator,
        oracles=lists["oracles"],
        matchers=lists["matchers"],
        sequencer=sequencer,
        governor=governor,
    )


def dump_rules_toml(rules: RuleSet) -> str:
    """Return a complete rules file for ``rules`` that ``parse_rules_toml`` reads back."""
    lines = [f"{name} = {getattr(rules, name)}" for name in INT_SCALAR_FIELDS]
    lines.append(f'valuation_asset = "{rules.valuation_asset}"')
    roles = rules.roles
    lines += [
        "",
        "[roles]",
        f'operator = "{roles.operator}"',
        "oracles = [" + ", ".join(f'"{o}"' for o in roles.oracles) + "]",
        "matchers = [" + ", ".join(f'"{m}"' for m in roles.matchers) + "]",
        f'sequencer = "{roles.sequencer}"',
        f'governor = "{roles.governor}"',
    ]
    for asset in rules.assets:
        lines += [
            "",
            f"[assets.{asset.symbol}]",
            f"decimals = {asset.decimals}",
            f"haircut_ppm = {asset.haircut_ppm}",
            f"liquidation_discount_ppm = {asset.liquidation_discount_ppm}",
            f'price_underlying = "{asset.price_underlying or ""}"',
        ]
    for u in rules.underlyings:
        lines += ["", f"[underlyings.{u.symbol}]"]
        lines += [f"{name} = {getattr(u, name)}" for name in UNDERLYING_FIELDS]
    return "\n".join(lines) + "\n"
