"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``. ``JOURNAL_ROOT`` is the root after the journal tests' session
(the demo without the accounts that joined it later, ``journal_files.journal_steps``).
"""

from __future__ import annotations

GENESIS_ROOT = "8e5ab09b9501aab673ac4eb7c0afa3ea0a46cc786e57f0333e0514f9adeb8a77"
DEMO_ROOT = "473e355a904b6d398a86e42df565138d49262f7de27c7a5b44b44012d87b9067"
JOURNAL_ROOT = "8d7ac94ecdebb95d89f38f6a58c46cb5a98d0321a3cb271addd45fa0b66d7da4"


def _root_after(events: list[object]) -> str:
    import settlekernel as sk  # noqa: PLC0415 (only when recomputing)

    state = sk.genesis(sk.RuleSet.default())
    for event in events:
        outcome = sk.step(state, event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    return sk.state_root(state).hex()


def current_roots() -> tuple[str, str, str]:
    """Return (genesis root, demo root, journal session root) as the kernel computes them."""
    from journal_files import journal_steps  # noqa: PLC0415
    from settlekernel.cli.demo import demo_steps  # noqa: PLC0415

    return (
        _root_after([]),
        _root_after([demo_step.event for demo_step in demo_steps()]),
        _root_after([demo_step.event for demo_step in journal_steps()]),
    )


if __name__ == "__main__":
    print("GENESIS_ROOT = %r\nDEMO_ROOT = %r\nJOURNAL_ROOT = %r" % current_roots())  # noqa: UP031
