"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``.
"""

from __future__ import annotations

GENESIS_ROOT = "92c82494b06935d8cfe3da36c04c8794ebc07106d7d89852bb29dfe07cd0593c"
DEMO_ROOT = "014de2cae020b341ada594e5b7209828569a296e4661d0bfd2ad5cb74b78d3c8"


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
