"""What every ``settlekernel`` command shares: reading a ``--rules`` file."""

from __future__ import annotations

from pathlib import Path

import click

from settlekernel.core.rules import DEFAULT_RULES, RuleSet
from settlekernel.core.rules_toml import RulesError, parse_rules_toml


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
