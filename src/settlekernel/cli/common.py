"""What every ``settlekernel`` command shares: input errors and reading a ``--rules`` file."""

from __future__ import annotations

from pathlib import Path

import click

from settlekernel.core.rules import DEFAULT_RULES, RuleSet
from settlekernel.core.rules_toml import RulesError, parse_rules_toml

EXIT_USAGE = 2


class InputError(click.ClickException):
    """A usage or input error: one line, ``Error: ...``, on stderr and exit 2.

    Exit 1 is kept for a broken invariant or a failed verification, so a script can tell
    "the ledger is wrong" from "the command was given something it cannot use".
    """

    exit_code = EXIT_USAGE


def load_rules(path: Path | None, *, check: bool = True) -> RuleSet:
    """Return the rules file's rule set, or the built-in one; a bad file is a usage error.

    ``check=False`` loads a well-formed rule set that SK-RULES would refuse: ``verify`` and
    ``audit`` need it to show what such rules break.
    """
    if path is None:
        return DEFAULT_RULES
    try:
        return parse_rules_toml(path.read_text(encoding="utf-8"), check=check)
    except (OSError, RulesError) as error:
        raise click.UsageError(f"--rules {path}: {error}") from error
