"""Run conformance cases against another program over the line protocol (SK-CONF-3).

The program is started once per case with the case's header on its first input line, then
the case's input; it answers on standard output, one JSON object per line, and exits.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Sequence
from typing import Any, Final

from settlekernel.conformance.vectors import StepResult

PROTOCOL: Final = 1
TIMEOUT_S: Final = 120


class ProgramError(Exception):
    """The program failed, timed out, or answered outside the protocol."""


class Program:
    """An implementation behind a command line, spoken to over the line protocol."""

    def __init__(self, command: str) -> None:
        """Keep the command (split as a POSIX shell would, but run without a shell)."""
        self.argv = shlex.split(command)
        if not self.argv:
            raise ProgramError("the command is empty")

    def _exchange(self, header: dict[str, Any], lines: Sequence[str]) -> list[dict[str, Any]]:
        text = "\n".join([json.dumps(header, sort_keys=True), *lines]) + "\n"
        try:
            done = subprocess.run(  # noqa: S603 (the user's own command, without a shell)
                self.argv,
                input=text,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ProgramError(f"{self.argv[0]}: {error}") from error
        if done.returncode != 0:
            raise ProgramError(f"{self.argv[0]} exited {done.returncode}: {done.stderr.strip()}")
        try:
            answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        except json.JSONDecodeError as error:
            raise ProgramError(f"{self.argv[0]} wrote a line that is not JSON: {error}") from error
        if not all(isinstance(answer, dict) for answer in answers):
            raise ProgramError(f"{self.argv[0]} wrote a JSON value that is not an object")
        return answers

    def run(self, rules_toml: str, lines: Sequence[str]) -> tuple[str, list[StepResult]]:
        """Return the genesis root and each line's result, as the program reports them."""
        header = {"conformance": PROTOCOL, "kind": "lifecycle", "rules_toml": rules_toml}
        answers = self._exchange(header, lines)
        if not answers or "genesis_root" not in answers[0]:
            raise ProgramError('the first answer must be {"genesis_root": ...}')
        try:
            results = [
                StepResult(
                    str(a["outcome"]),
                    tuple(tuple(p) for p in a["postings"]),
                    str(a["root"]),
                )
                for a in answers[1:]
            ]
        except (KeyError, TypeError) as error:
            raise ProgramError(f"an answer lacks outcome, postings or root: {error}") from error
        return str(answers[0]["genesis_root"]), results

    def margin(self, portfolio: str, rules_toml: str) -> dict[str, Any]:
        """Return the program's margin report of a portfolio file's text."""
        header = {"conformance": PROTOCOL, "kind": "margin", "rules_toml": rules_toml}
        answers = self._exchange(header, [portfolio])
        if len(answers) != 1:
            raise ProgramError(f"a margin case is answered by one line, not {len(answers)}")
        return answers[0]
