"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``.
"""

from __future__ import annotations

GENESIS_ROOT = "490ba8ca1859421fb02889f23e0cfd9de7248fb2ce7695af76127e3a3b6747a9"
DEMO_ROOT = "e9d6a3a00b311e989300fcd9d76c7f70d194133175a91a2dbeabc46fa98cd7b9"


def current_roots() -> tuple[str, str]:
    """Return (genesis root, demo root) as the kernel computes them now."""
    import settlekernel as sk  # noqa: PLC0415 (only when recomputing)
    from settlekernel.cli.demo import demo_steps  # noqa: PLC0415

    state = sk.genesis(sk.RuleSet.default())
    genesis = sk.state_root(state).hex()
    for demo_step in demo_steps():
        outcome = sk.step(state, demo_step.event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    return genesis, sk.state_root(state).hex()


if __name__ == "__main__":
    print("GENESIS_ROOT = %r\nDEMO_ROOT = %r" % current_roots())  # noqa: UP031
