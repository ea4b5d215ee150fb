"""The README's library example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_opens_with_the_two_commands():
    """Opens with `make demo` then `make test`, before anything else."""
    first_block = README.read_text(encoding="utf-8").split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line]
    assert commands == ["make demo", "make test"]


def test_readme_python_example_runs():
    """Executes the README's Python block; its assertions are part of the test."""
    block = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    exec(compile(block.group(1), str(README), "exec"), {})  # noqa: S102


def test_readme_reads_in_two_minutes():
    """Keeps the README short: long tables and limits live in docs/."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 80
    assert "docs/README.md" in text
