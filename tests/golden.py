"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``.
"""

from __future__ import annotations

GENESIS_ROOT = "2b563250a54f32c94802dee4e03a4fa1d6afb457a53e0d03b52997b94a991065"
DEMO_ROOT = "d528d922928b4c75b3515a7fac97f2d14f560b9b2d50dad43c65611462bbefab"


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
