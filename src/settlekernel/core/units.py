"""Units, bounds and identifiers: the numeric contract of every field (spec/00-notation.md).

Every ledger quantity is a Python ``int`` in a named unit:

- ``*_minor``: minor units of an asset (USDC has 6 decimals, so 1 USDC = 1_000_000 minor);
- ``*_lots``: contract lots of an instrument;
- ``*_ticks``: the price unit of an underlying (for BTC quoted in cents, 60,000.00 USD is
  6_000_000 ticks);
- ``*_ppm``: parts per million (1_000_000 ppm = 100 %);
- ``*_ms``: milliseconds, carried by events (the kernel reads no clock).

An instrument's ``multiplier_minor`` is the settlement asset's minor units per lot per tick,
so ``quantity_lots * price_ticks * multiplier_minor`` is an exact integer notional.
"""

from __future__ import annotations

import re
from typing import Final

# [SK-UNIT-1] Every amount, balance, quantity, price and multiplier is below 2**96.
VALUE_LIMIT: Final = 2**96
# [SK-UNIT-2] Timestamps are non-negative milliseconds below 2**63.
TIMESTAMP_LIMIT_MS: Final = 2**63
# [SK-UNIT-3] Rates are parts per million.
PPM: Final = 1_000_000
# [SK-UNIT-5] An implied volatility is in [0, 10,000,000] ppm (0 % to 1,000 %).
VOLATILITY_MAX_PPM: Final = 10 * PPM

# [SK-ID-1] An identifier is 1 to 64 characters of [A-Za-z0-9._:-] starting with an
# alphanumeric character. The "@" prefix is reserved for system accounts.
ID_LENGTH_MAX: Final = 64
# [SK-GOV-3] A proposed rule set's TOML text is at most this long (a wire line is bounded
# anyway, SK-WIRE-2); a longer one is rejected before it is parsed.
RULES_TOML_CHARS_MAX: Final = 16_384
_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")

# [SK-ID-2] System accounts. Events can name none of them, so none can be debited by a
# principal; the kernel alone moves money through them.
INSURANCE_ACCOUNT: Final = "@insurance"
FEE_ACCOUNT: Final = "@fees"
RESIDUE_ACCOUNT: Final = "@residue"
CLEARING_ACCOUNT: Final = "@clearing"
SYSTEM_ACCOUNTS: Final = (CLEARING_ACCOUNT, FEE_ACCOUNT, INSURANCE_ACCOUNT, RESIDUE_ACCOUNT)
SYSTEM_OWNER: Final = "@system"
# The world outside the kernel: deposits come from it, withdrawals go to it. It is not an
# account in the state; its postings balance the custody total.
EXTERNAL_ACCOUNT: Final = "@external"


def is_identifier(value: str) -> bool:
    """Return whether ``value`` is a well-formed public identifier (SK-ID-1)."""
    return _ID_PATTERN.fullmatch(value) is not None
