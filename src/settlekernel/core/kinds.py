"""What an instrument is: its kind and, for an option, its right (spec/10-containers.md).

The lowest layer of the containers: events and instruments both name these, so they live
apart from either.
"""

from __future__ import annotations

import enum


class InstrumentKind(enum.Enum):
    """What an instrument is: its settlement style follows from its kind."""

    PERPETUAL = "perpetual"
    FUTURE = "future"
    OPTION = "option"


class OptionType(enum.Enum):
    """The right an option gives its holder."""

    CALL = "call"
    PUT = "put"
