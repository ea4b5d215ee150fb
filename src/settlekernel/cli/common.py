"""What every ``settlekernel`` command shares: input errors, ``--rules`` files, optional extras."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from typing import Any, Final

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
    click.echo(f"error: {needed_for} needs {module}: pip install 'settlekernel[{extra}]'", err=True)
    raise SystemExit(EXIT_USAGE)


class InputError(click.ClickException):
    """A usage or input error: one line, ``Error: ...``, on stderr and exit 2.

    Exit 1 is kept for a broken invariant or a failed verification, so a script can tell
    "the ledger is wrong" from "the command was given something it cannot use".
    """

    exit_code = EXIT_USAGE


class CommandGroup(click.Group):
    """The ``settlekernel`` group: one place that turns unusable input into ``InputError``.

    A command that meets a path it cannot read or write (``OSError``: no such directory,
    ``/proc``, a refused connection) or a file that is not UTF-8 ends with one line and exit
    2, never a traceback and never exit 1. Output that the terminal's encoding cannot hold is
    backslash-escaped rather than fatal, so no environment setting (``PYTHONIOENCODING``,
    the locale) can make a command fail after its work is done.
    """

    def invoke(self, ctx: click.Context) -> Any:  # noqa: ANN401 (click's own signature)
        """Invoke the command; report an unusable path or encoding as an input error."""
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(errors="backslashreplace")
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # The reader went away: click's own handling applies.
        except OSError as error:
            raise InputError(describe_os_error(error)) from error
        except UnicodeDecodeError as error:
            raise InputError(f"an input file is not UTF-8 text ({error.reason})") from error


def describe_os_error(error: OSError) -> str:
    """Return ``path: reason`` for an error about a path, else the error's own words."""
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error) or type(error).__name__


def read_text(path: Path, what: str) -> str:
    """Return a UTF-8 file's text; an unreadable or non-UTF-8 file is an ``InputError``."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{what} {describe_os_error(error)}") from error
    except UnicodeDecodeError as error:
        raise InputError(f"{what} {path}: not UTF-8 text ({error.reason})") from error


def load_rules(path: Path | None, *, check: bool = True) -> RuleSet:
    """Return the rules file's rule set, or the built-in one; a bad file is a usage error.

    ``check=False`` loads a well-formed rule set that SK-RULES would refuse: ``verify`` and
    ``audit`` need it to show what such rules break.
    """
    if path is None:
        return DEFAULT_RULES
    text = read_text(path, "--rules")
    try:
        return parse_rules_toml(text, check=check)
    except RulesError as error:
        raise InputError(f"--rules {path}: {error}") from error


# The `--rules FILE` option of every command that runs under a rule set.
rules_option: Final = click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A TOML rules file (defaults to the built-in rule set).",
)
