"""The golden roots: the state root after genesis and after the built-in demo (INV-DETERMINISM).

One place for the values several tests pin. A rule change that alters them must change them
here deliberately, with its reason in the commit and a CHANGELOG line; recompute with
``python tests/golden.py``. ``JOURNAL_ROOT`` is the root after the journal tests' session
(the demo without the accounts that joined it later, ``journal_files.journal_steps``).
"""

from __future__ import annotations

GENESIS_ROOT = "51991cee4b9c031883c70c3671730b0d52bd0d95256c167b7fa44fb3f0b4721d"
DEMO_ROOT = "36d4a482ec5f964d414b4dc3f30dd40161a447a15e418761453346d66182bbe3"
JOURNAL_ROOT = "b5e9a53b39d454ca72c2b0ac2540aceefe2a5f381620c4f7334ff826be2e707d"


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
