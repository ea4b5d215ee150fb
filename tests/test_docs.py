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
        ("cli_reference.py", "reference/cli.md"),
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


def test_the_index_links_every_page():
    """Lists every page under docs/ in docs/README.md, so none is orphaned by a move."""
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / target).resolve() for target in LINK.findall(index.read_text())}
    pages = {page.resolve() for page in (ROOT / "docs").rglob("*.md")} - {index.resolve()}
    assert sorted(str(page) for page in pages - linked) == []


@pytest.mark.parametrize("page", ["how-to/events.md", "how-to/margin-a-portfolio.md"])
def test_guide_examples_run(page, monkeypatch):
    """Executes each Python block of the guide from the checkout; its assertions are tests."""
    monkeypatch.chdir(ROOT)
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, page, "exec"), {})  # noqa: S102


def test_api_reference_builds_without_warnings(tmp_path):
    """Builds the pdoc API reference (`make docs`) with no warning and a page per module."""
    built = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "api_docs.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert built.stderr == ""
    assert (tmp_path / "settlekernel" / "core" / "wire.html").exists()
    assert len(list(tmp_path.rglob("*.html"))) >= 80
