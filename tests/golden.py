"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``. ``JOURNAL_ROOT`` is the root after the journal tests' session
(the demo without the accounts that joined it later, ``journal_files.journal_steps``).
"""

from __future__ import annotations

GENESIS_ROOT = "68b58ef8adf32560cf30a6cbc99e9831464a91bf6398b5854c388d8eb3040ca6"
DEMO_ROOT = "7b5b3e40c7d44d693879556faed74460cdf7eb3ca29e2d894df5121a8d4b4b16"
JOURNAL_ROOT = "a670bfabaff8be78c7f3b26a5ac8fb6013a5e8390aaec82ef51eaf9cbb781e46"


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
