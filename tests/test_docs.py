"""Generated documentation stays true to the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

LINK = re.compile(r"\]\(([^)\s]+)\)")

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("tool", "page"),
    [
        ("margin_example.py", "concepts/margin.md"),
        ("waterfall_example.py", "concepts/waterfall.md"),
    ],
)
def test_generated_pages_are_what_the_kernel_computes(tool, page):
    """Ships each generated docs page exactly as its tool writes it today."""
    written = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (ROOT / "docs" / page).read_text(encoding="utf-8") == written


def _pages():
    docs = sorted((ROOT / "docs").rglob("*.md"))
    return [ROOT / "README.md", *docs, *sorted((ROOT / "spec").glob("*.md"))]


@pytest.mark.parametrize("page", _pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    """Points every relative link of the README, docs/ and spec/ at a file that exists."""
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == []
