"""Shared Hypothesis strategies: edge-biased integers, identifiers and hostile values."""

from __future__ import annotations

from hypothesis import strategies as st

from settlekernel.core.units import PPM, TIMESTAMP_LIMIT_MS, VALUE_LIMIT

# Limits worth probing: each bound, one below it and one above it.
EDGES = (
    0,
    1,
    2,
    PPM - 1,
    PPM,
    PPM + 1,
    2**63 - 1,
    2**63,
    2**64,
    VALUE_LIMIT - 1,
    VALUE_LIMIT,
    VALUE_LIMIT + 1,
    TIMESTAMP_LIMIT_MS - 1,
    TIMESTAMP_LIMIT_MS,
    10**12,
    10**12 + 1,
    10**15,
    10**15 + 1,
)


def edge_ints(low: int, high: int) -> st.SearchStrategy[int]:
    """Integers in [low, high], biased towards the bounds and the kernel's limits."""
    edges = sorted({e for e in (*EDGES, low, low + 1, high - 1, high) if low <= e <= high})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def signed_edge_ints() -> st.SearchStrategy[int]:
    """Any integer an attacker might send, including negatives and values beyond 2**96."""
    return st.one_of(
        st.sampled_from([-VALUE_LIMIT, -(2**63), -1, *EDGES]),
        st.integers(-(2**100), 2**100),
    )


identifiers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}", fullmatch=True)

bad_identifiers = st.one_of(
    st.just(""),
    st.just("@fees"),
    st.just("a" * 65),
    st.just("has space"),
    st.just("pipe|char"),
    st.just("é"),
    st.text(min_size=1, max_size=70).filter(lambda s: not s.isascii() or "|" in s or " " in s),
)

# Values of the wrong type for any field: floats, bools, containers, None; numeric strings
# are wrong for numeric fields only, so they are kept separate.
non_string_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
)
hostile_values = st.one_of(non_string_values, st.sampled_from(["1", "100", "1e3", "0x10", ""]))
