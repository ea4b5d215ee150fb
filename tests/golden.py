"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``. ``JOURNAL_ROOT`` is the root after the journal tests' session
(the demo without the accounts that joined it later, ``journal_files.journal_steps``).
"""

from __future__ import annotations

GENESIS_ROOT = "8ef7a0902770d6eaf81833c18843fe1d09830be4c1edf7cb45485032f0484b6b"
DEMO_ROOT = "4d72d8d598c06096aff35731968b99c751145bea45a59cd12c0bfbd8ee13e29d"
JOURNAL_ROOT = "58cc9e6c19953825edb7a0762ce062b9bb513f5e1be3b301414c9382234b19dd"


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
