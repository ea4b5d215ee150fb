"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``. ``JOURNAL_ROOT`` is the root after the journal tests' session
(the demo without the accounts that joined it later, ``journal_files.journal_steps``).
"""

from __future__ import annotations

GENESIS_ROOT = "9e0a653bc9ab1c7f9197994f6ddfd1fb175d80c19cc5d582dc740e3b532909e7"
DEMO_ROOT = "477a3a674b3f1ce8a613444a65f2ed48084f9113920dafd2c42fb1d33b3f9908"
JOURNAL_ROOT = "0c5c68d8ffc7b124f1f2936e621fbd63623f3fcb2d3c5851545455901a304c75"


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
