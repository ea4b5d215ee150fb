"""Events: the only way the state changes (spec/30-transitions.md).

Each event is a frozen, slotted record that names its acting ``principal``. Fields carry a
``FieldKind`` in their metadata; that one table drives the kernel's shape checks, the strict
JSON Lines decoder and the shipped JSON Schema, so the three cannot disagree.

The classes do not validate on construction: ``step`` does, and returns a typed rejection
for any malformed value instead of raising.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias

import attrs

from settlekernel.core.kinds import InstrumentKind, OptionType


class FieldKind(enum.Enum):
    """The type and range family of an event field."""

    ID = "id"
    AMOUNT = "amount"
    QUANTITY = "quantity"
    PRICE = "price"
    REPORT_PRICE = "report_price"
    FEE_RATE = "fee_rate"
    VOLATILITY = "volatility"
    TIMESTAMP = "timestamp"
    MULTIPLIER = "multiplier"
    INSTRUMENT_KIND = "instrument_kind"
    OPTION_TYPE = "option_type"
    OPTIONAL_TIMESTAMP = "optional_timestamp"
    OPTIONAL_PRICE = "optional_price"
    # [New in v5] A rule set as a rules file's TOML text (SK-GOV-3), bounded in length.
    RULES_TOML = "rules_toml"


def _meta(kind: FieldKind) -> dict[str, FieldKind]:
    return {"kind": kind}


_ID = _meta(FieldKind.ID)
_AMOUNT = _meta(FieldKind.AMOUNT)
_QUANTITY = _meta(FieldKind.QUANTITY)
_PRICE = _meta(FieldKind.PRICE)
_REPORT_PRICE = _meta(FieldKind.REPORT_PRICE)
_FEE_RATE = _meta(FieldKind.FEE_RATE)
_TIMESTAMP = _meta(FieldKind.TIMESTAMP)
_VOLATILITY = _meta(FieldKind.VOLATILITY)
_MULTIPLIER = _meta(FieldKind.MULTIPLIER)
_INSTRUMENT_KIND = _meta(FieldKind.INSTRUMENT_KIND)
_OPTION_TYPE = _meta(FieldKind.OPTION_TYPE)
_OPTIONAL_TIMESTAMP = _meta(FieldKind.OPTIONAL_TIMESTAMP)
_OPTIONAL_PRICE = _meta(FieldKind.OPTIONAL_PRICE)
_RULES_TOML = _meta(FieldKind.RULES_TOML)


@attrs.frozen(kw_only=True)
class OpenAccount:
    """Open an account owned by the acting principal (SK-OPEN)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class Deposit:
    """Credit collateral arriving from outside the kernel to an account (SK-DEPOSIT)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)
    asset: str = attrs.field(metadata=_ID)
    amount_minor: int = attrs.field(metadata=_AMOUNT)


@attrs.frozen(kw_only=True)
class Withdraw:
    """Pay collateral out of an account to its owner outside the kernel (SK-WITHDRAW)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)
    asset: str = attrs.field(metadata=_ID)
    amount_minor: int = attrs.field(metadata=_AMOUNT)


@attrs.frozen(kw_only=True)
class Transfer:
    """Move collateral between two accounts of one owner (SK-TRANSFER)."""

    principal: str = attrs.field(metadata=_ID)
    source_account: str = attrs.field(metadata=_ID)
    target_account: str = attrs.field(metadata=_ID)
    asset: str = attrs.field(metadata=_ID)
    amount_minor: int = attrs.field(metadata=_AMOUNT)


@attrs.frozen(kw_only=True)
class ListInstrument:
    """List a perpetual, future or option on a known underlying (SK-LIST)."""

    principal: str = attrs.field(metadata=_ID)
    instrument: str = attrs.field(metadata=_ID)
    kind: InstrumentKind = attrs.field(metadata=_INSTRUMENT_KIND)
    underlying: str = attrs.field(metadata=_ID)
    settlement_asset: str = attrs.field(metadata=_ID)
    multiplier_minor: int = attrs.field(metadata=_MULTIPLIER)
    expiry_ms: int | None = attrs.field(default=None, metadata=_OPTIONAL_TIMESTAMP)
    strike_ticks: int | None = attrs.field(default=None, metadata=_OPTIONAL_PRICE)
    option_type: OptionType | None = attrs.field(default=None, metadata=_OPTION_TYPE)


@attrs.frozen(kw_only=True)
class OraclePrice:
    """A source's report of an underlying's price at a time (SK-ORACLE); 0 signals a halt."""

    principal: str = attrs.field(metadata=_ID)
    underlying: str = attrs.field(metadata=_ID)
    price_ticks: int = attrs.field(metadata=_REPORT_PRICE)
    timestamp_ms: int = attrs.field(metadata=_TIMESTAMP)


@attrs.frozen(kw_only=True)
class OracleVolatility:
    """Report the implied volatility of an underlying, in ppm, at a time (SK-VOL)."""

    principal: str = attrs.field(metadata=_ID)
    underlying: str = attrs.field(metadata=_ID)
    volatility_ppm: int = attrs.field(metadata=_VOLATILITY)
    timestamp_ms: int = attrs.field(metadata=_TIMESTAMP)


@attrs.frozen(kw_only=True)
class Trade:
    """Novate an executed trade between a buyer and a seller, atomically (SK-TRADE)."""

    principal: str = attrs.field(metadata=_ID)
    trade_id: str = attrs.field(metadata=_ID)
    buyer: str = attrs.field(metadata=_ID)
    seller: str = attrs.field(metadata=_ID)
    instrument: str = attrs.field(metadata=_ID)
    quantity_lots: int = attrs.field(metadata=_QUANTITY)
    price_ticks: int = attrs.field(metadata=_PRICE)
    buyer_fee_rate_ppm: int = attrs.field(metadata=_FEE_RATE)
    seller_fee_rate_ppm: int = attrs.field(metadata=_FEE_RATE)


@attrs.frozen(kw_only=True)
class VariationMargin:
    """Mark every position of a perpetual or future to its mark price (SK-VM)."""

    principal: str = attrs.field(metadata=_ID)
    instrument: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class Funding:
    """Charge a perpetual's funding for one interval, longs to shorts or back (SK-FUNDING)."""

    principal: str = attrs.field(metadata=_ID)
    instrument: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class FundInsurance:
    """Credit the insurance fund with collateral from outside the kernel (SK-INSURANCE-1)."""

    principal: str = attrs.field(metadata=_ID)
    asset: str = attrs.field(metadata=_ID)
    amount_minor: int = attrs.field(metadata=_AMOUNT)


@attrs.frozen(kw_only=True)
class Liquidate:
    """Liquidate an account below maintenance into the principal's own account (SK-LIQ)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)
    liquidator: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class Backstop:
    """Close out an account far below maintenance that no keeper took (SK-LIQ-6)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class Tick:
    """The sequencer's heartbeat: the kernel clock moves on to ``timestamp_ms`` (SK-TICK)."""

    principal: str = attrs.field(metadata=_ID)
    timestamp_ms: int = attrs.field(metadata=_TIMESTAMP)


@attrs.frozen(kw_only=True)
class Expire:
    """Settle every position of an expired future or option at once (SK-EXPIRY)."""

    principal: str = attrs.field(metadata=_ID)
    instrument: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class AdmitVenue:
    """Admit a venue with its limits, or update and reinstate an admitted one (SK-VENUE-1)."""

    principal: str = attrs.field(metadata=_ID)
    venue: str = attrs.field(metadata=_ID)
    fee_account: str = attrs.field(metadata=_ID)
    open_interest_max_lots: int = attrs.field(metadata=_AMOUNT)
    notional_max_minor: int = attrs.field(metadata=_AMOUNT)
    fee_rate_max_ppm: int = attrs.field(metadata=_FEE_RATE)


@attrs.frozen(kw_only=True)
class SuspendVenue:
    """Stop a venue submitting trades until it is resumed (SK-VENUE-1)."""

    principal: str = attrs.field(metadata=_ID)
    venue: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class ResumeVenue:
    """Let a suspended venue submit trades again, with the limits it had (SK-VENUE-1)."""

    principal: str = attrs.field(metadata=_ID)
    venue: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class RemoveVenue:
    """Remove a venue for good; its id is never admitted again (SK-VENUE-1)."""

    principal: str = attrs.field(metadata=_ID)
    venue: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class AuthorizeVenue:
    """An account owner lets a venue trade on the account (SK-VENUE-2)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)
    venue: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class RestrictVenue:
    """An account owner lets a venue only reduce the account's positions (SK-VENUE-2)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)
    venue: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class RevokeVenue:
    """An account owner withdraws a venue's grant on the account entirely (SK-VENUE-2)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)
    venue: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class ChangeRules:
    """The governor proposes a new rule set, effective after the notice (SK-GOV-3)."""

    principal: str = attrs.field(metadata=_ID)
    proposal: str = attrs.field(metadata=_ID)
    rules_toml: str = attrs.field(metadata=_RULES_TOML)
    effective_ms: int = attrs.field(metadata=_TIMESTAMP)


@attrs.frozen(kw_only=True)
class CancelRulesChange:
    """The governor withdraws the pending rule change before it applies (SK-GOV-4)."""

    principal: str = attrs.field(metadata=_ID)
    proposal: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class ApplyRules:
    """Anyone puts the pending rule change in force once it is effective (SK-GOV-5)."""

    principal: str = attrs.field(metadata=_ID)
    proposal: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class RegisterTopUp:
    """An owner registers a standing top-up of an account from another of its own (SK-INSTR-1)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)
    source: str = attrs.field(metadata=_ID)
    asset: str = attrs.field(metadata=_ID)
    threshold_ppm: int = attrs.field(metadata=_AMOUNT)
    amount_max_minor: int = attrs.field(metadata=_AMOUNT)
    interval_ms: int = attrs.field(metadata=_AMOUNT)


@attrs.frozen(kw_only=True)
class CancelInstruction:
    """An owner cancels the standing instruction of an account (SK-INSTR-1)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)


@attrs.frozen(kw_only=True)
class RunInstructions:
    """Anyone has the kernel execute an account's standing top-up (SK-INSTR-3)."""

    principal: str = attrs.field(metadata=_ID)
    account: str = attrs.field(metadata=_ID)


Event: TypeAlias = (
    OpenAccount
    | Deposit
    | Withdraw
    | Transfer
    | ListInstrument
    | OraclePrice
    | OracleVolatility
    | Trade
    | VariationMargin
    | Funding
    | Expire
    | FundInsurance
    | Liquidate
    | Backstop
    | Tick
    | AdmitVenue
    | SuspendVenue
    | ResumeVenue
    | RemoveVenue
    | AuthorizeVenue
    | RestrictVenue
    | RevokeVenue
    | ChangeRules
    | CancelRulesChange
    | ApplyRules
    | RegisterTopUp
    | CancelInstruction
    | RunInstructions
)

# Wire names (the JSON "type" field), in spec order.
EVENT_TYPES: Final[dict[str, type[Event]]] = {
    "open_account": OpenAccount,
    "deposit": Deposit,
    "withdraw": Withdraw,
    "transfer": Transfer,
    "list_instrument": ListInstrument,
    "oracle_price": OraclePrice,
    "oracle_volatility": OracleVolatility,
    "trade": Trade,
    "variation_margin": VariationMargin,
    "funding": Funding,
    "expire": Expire,
    "fund_insurance": FundInsurance,
    "liquidate": Liquidate,
    "backstop": Backstop,
    "tick": Tick,
    "admit_venue": AdmitVenue,
    "suspend_venue": SuspendVenue,
    "resume_venue": ResumeVenue,
    "remove_venue": RemoveVenue,
    "authorize_venue": AuthorizeVenue,
    "restrict_venue": RestrictVenue,
    "revoke_venue": RevokeVenue,
    "change_rules": ChangeRules,
    "cancel_rules_change": CancelRulesChange,
    "apply_rules": ApplyRules,
    "register_top_up": RegisterTopUp,
    "cancel_instruction": CancelInstruction,
    "run_instructions": RunInstructions,
}
EVENT_NAMES: Final[dict[type[Event], str]] = {cls: name for name, cls in EVENT_TYPES.items()}

# Field name -> kind per event class, in declaration order.
FIELD_KINDS: Final[dict[type[Event], tuple[tuple[str, FieldKind], ...]]] = {
    cls: tuple((field.name, field.metadata["kind"]) for field in attrs.fields(cls))
    for cls in EVENT_TYPES.values()
}
OPTIONAL_FIELDS: Final[dict[type[Event], frozenset[str]]] = {
    cls: frozenset(field.name for field in attrs.fields(cls) if field.default is not attrs.NOTHING)
    for cls in EVENT_TYPES.values()
}
