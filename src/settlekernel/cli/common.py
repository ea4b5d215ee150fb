"""What every ``settlekernel`` command shares: reading a ``--rules`` file, optional extras."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Final

import click

from settlekernel.core.rules import DEFAULT_RULES, RuleSet
from settlekernel.core.rules_toml import RulesError, parse_rules_toml

EXIT_USAGE: Final = 2
# The optional extras (pyproject.toml), by the top-level module each brings.
EXTRAS: Final = {
    "matplotlib": "plots",
    "dask": "dask",
    "distributed": "dask",
    "crosshair": "contracts",
}


def has_module(name: str) -> bool:
    """Return whether a top-level module can be imported, without importing it."""
    return importlib.util.find_spec(name) is not None


def require_extra(module: str, needed_for: str) -> None:
    """Stop with one line naming the extra to install when ``module`` is missing (exit 2)."""
    if has_module(module):
        return
    extra = EXTRAS[module]
    click.echo(
        f"error: {needed_for} needs {module}: pip install 'settlekernel[{extra}]'", err=True
    )
    raise SystemExit(EXIT_USAGE)


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
