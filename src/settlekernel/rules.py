"""Rule-set checks, canonical encoding and the TOML form (spec/10-containers.md#ruleset).

A rules file overrides the defaults: top-level numbers replace theirs, ``[roles]`` replaces
the roles it names, and ``[assets.SYMBOL]`` / ``[underlyings.SYMBOL]`` tables add or amend
one entry each. Unknown keys, floats, booleans and strings where a number belongs are
errors, never silently ignored.
"""

from __future__ import annotations

import hashlib
import tomllib
from typing import Any, Final

import attrs

from settlekernel.model import DEFAULT_RULES, AssetRules, Roles, RuleSet, UnderlyingRules
from settlekernel.units import PPM, VALUE_LIMIT, is_identifier

DECIMALS_MAX: Final = 30


class RulesError(ValueError):
    """A rules file or rule set that cannot be used; the message names the key."""


def check_rules(rules: RuleSet) -> list[str]:
    """Return every reason ``rules`` is unusable (SK-RULES-1); empty when it is sound."""
    problems: list[str] = []
    problems += _check_identifiers("asset", [asset.symbol for asset in rules.assets])
    problems += _check_identifiers("underlying", [u.symbol for u in rules.underlyings])
    problems += [
        f"asset {asset.symbol}: decimals {asset.decimals} outside [0, {DECIMALS_MAX}]"
        for asset in rules.assets
        if not 0 <= asset.decimals <= DECIMALS_MAX
    ]
    for underlying in rules.underlyings:
        problems += _check_underlying(underlying)
    roles = rules.roles
    principals = [roles.operator, *roles.oracles, *roles.matchers]
    problems += [
        f"role principal {p!r} is not an identifier" for p in principals if not is_identifier(p)
    ]
    if not roles.oracles:
        problems.append("roles.oracles is empty: no price could ever be accepted")
    if not roles.matchers:
        problems.append("roles.matchers is empty: no trade could ever be accepted")
    if not 0 <= rules.fee_rate_max_ppm <= PPM:
        problems.append(f"fee_rate_max_ppm {rules.fee_rate_max_ppm} outside [0, {PPM}]")
    for name in (
        "accounts_max",
        "instruments_max",
        "positions_per_account_max",
        "position_lots_max",
        "price_ticks_max",
        "multiplier_minor_max",
    ):
        value = getattr(rules, name)
        if not 1 <= value < VALUE_LIMIT:
            problems.append(f"{name} {value} outside [1, 2**96)")
    return problems


def _check_identifiers(what: str, symbols: list[str]) -> list[str]:
    problems = [
        f"{what} symbol {s!r} is not an identifier" for s in symbols if not is_identifier(s)
    ]
    if len(set(symbols)) != len(symbols):
        problems.append(f"{what} symbols are not unique: {sorted(symbols)}")
    return problems


def _check_underlying(underlying: UnderlyingRules) -> list[str]:
    name = f"underlying {underlying.symbol}"
    problems = [
        f"{name}: {field} {value} outside [0, {PPM}]"
        for field, value in (
            ("im_rate_ppm", underlying.im_rate_ppm),
            ("mm_rate_ppm", underlying.mm_rate_ppm),
            ("option_short_im_rate_ppm", underlying.option_short_im_rate_ppm),
        )
        if not 0 <= value <= PPM
    ]
    # [SK-RULES-2] Initial margin is at least maintenance margin, or an account could be
    # liquidatable the moment a trade is accepted.
    if underlying.im_rate_ppm < underlying.mm_rate_ppm:
        problems.append(
            f"{name}: im_rate_ppm {underlying.im_rate_ppm} below "
            f"mm_rate_ppm {underlying.mm_rate_ppm}"
        )
    return problems


def encode_rules(rules: RuleSet) -> bytes:
    """Return the canonical byte encoding of a rule set (sorted, one line per value)."""
    lines = [
        f"asset {a.symbol} decimals={a.decimals}"
        for a in sorted(rules.assets, key=lambda a: a.symbol)
    ]
    lines += [
        f"underlying {u.symbol} im_rate_ppm={u.im_rate_ppm} mm_rate_ppm={u.mm_rate_ppm} "
        f"option_short_im_rate_ppm={u.option_short_im_rate_ppm}"
        for u in sorted(rules.underlyings, key=lambda u: u.symbol)
    ]
    lines.append(
        f"roles operator={rules.roles.operator} "
        f"oracles={','.join(sorted(rules.roles.oracles))} "
        f"matchers={','.join(sorted(rules.roles.matchers))}"
    )
    lines += [f"{name}={getattr(rules, name)}" for name in _SCALARS]
    return ("\n".join(lines) + "\n").encode()


def rules_digest(rules: RuleSet) -> bytes:
    """Return the SHA-256 of the canonical encoding: the rule set's identity."""
    return hashlib.sha256(b"settlekernel/rules/v1\n" + encode_rules(rules)).digest()


_SCALARS: Final = (
    "fee_rate_max_ppm",
    "accounts_max",
    "instruments_max",
    "positions_per_account_max",
    "position_lots_max",
    "price_ticks_max",
    "multiplier_minor_max",
)
_ASSET_FIELDS: Final = ("decimals",)
_UNDERLYING_FIELDS: Final = ("im_rate_ppm", "mm_rate_ppm", "option_short_im_rate_ppm")


def parse_rules_toml(text: str, base: RuleSet = DEFAULT_RULES) -> RuleSet:
    """Parse a rules file over ``base``; raise ``RulesError`` naming the first bad key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"rules file is not valid TOML: {error}") from error
    _reject_unknown("rules", document, {*_SCALARS, "roles", "assets", "underlyings"})
    scalars: dict[str, Any] = {
        name: _integer(name, document[name]) for name in _SCALARS if name in document
    }
    rules = attrs.evolve(base, **scalars)
    rules = attrs.evolve(rules, roles=_parse_roles(document.get("roles", {}), rules.roles))
    assets = {a.symbol: a for a in rules.assets}
    for symbol, table in _tables("assets", document.get("assets", {})).items():
        _reject_unknown(f"assets.{symbol}", table, set(_ASSET_FIELDS))
        fields = _merged(f"assets.{symbol}", table, assets.get(symbol), _ASSET_FIELDS)
        assets[symbol] = AssetRules(symbol=symbol, **fields)
    underlyings = {u.symbol: u for u in rules.underlyings}
    for symbol, table in _tables("underlyings", document.get("underlyings", {})).items():
        _reject_unknown(f"underlyings.{symbol}", table, set(_UNDERLYING_FIELDS))
        fields = _merged(
            f"underlyings.{symbol}", table, underlyings.get(symbol), _UNDERLYING_FIELDS
        )
        underlyings[symbol] = UnderlyingRules(symbol=symbol, **fields)
    rules = attrs.evolve(
        rules,
        assets=tuple(sorted(assets.values(), key=lambda a: a.symbol)),
        underlyings=tuple(sorted(underlyings.values(), key=lambda u: u.symbol)),
    )
    problems = check_rules(rules)
    if problems:
        raise RulesError("rules are unsound: " + "; ".join(problems))
    return rules


def _reject_unknown(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RulesError(f"{where}: unknown key {unknown[0]!r} (allowed: {sorted(allowed)})")


def _integer(key: str, value: object) -> int:
    if type(value) is not int:
        raise RulesError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
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
    _reject_unknown("roles", table, {"operator", "oracles", "matchers"})
    operator = table.get("operator", current.operator)
    if not isinstance(operator, str):
        raise RulesError("roles.operator: expected a string")
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("oracles", "matchers"):
        value = table.get(name, list(getattr(current, name)))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"roles.{name}: expected a list of strings")
        lists[name] = tuple(value)
    return Roles(operator=operator, oracles=lists["oracles"], matchers=lists["matchers"])


def dump_rules_toml(rules: RuleSet) -> str:
    """Return a complete rules file for ``rules`` that ``parse_rules_toml`` reads back."""
    lines = [f"{name} = {getattr(rules, name)}" for name in _SCALARS]
    roles = rules.roles
    lines += [
        "",
        "[roles]",
        f'operator = "{roles.operator}"',
        "oracles = [" + ", ".join(f'"{o}"' for o in roles.oracles) + "]",
        "matchers = [" + ", ".join(f'"{m}"' for m in roles.matchers) + "]",
    ]
    for asset in rules.assets:
        lines += ["", f"[assets.{asset.symbol}]", f"decimals = {asset.decimals}"]
    for u in rules.underlyings:
        lines += ["", f"[underlyings.{u.symbol}]"]
        lines += [f"{name} = {getattr(u, name)}" for name in _UNDERLYING_FIELDS]
    return "\n".join(lines) + "\n"
