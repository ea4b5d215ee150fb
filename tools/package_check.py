"""Check what a plain ``pip install settlekernel`` gives: every command starts, demo runs.

Builds a fresh virtual environment, installs this checkout into it with no extras, then:
``import settlekernel``; ``settlekernel --version``; ``--help`` and ``-h`` of every command
and subcommand; ``demo``; and each command that needs an extra stops with one line naming
it (exit 2, no traceback). ``make package-check`` runs it; ``make test`` includes it.

    python tools/package_check.py [--venv DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
# Prints every command path of the CLI as JSON, e.g. [[], ["journal"], ["journal", "append"]].
LIST_COMMANDS = """
import json, click
from settlekernel.cli.main import main
def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, [*path, name])
print(json.dumps(list(walk(main, []))))
"""
# Commands that need an optional extra, and the extra their one-line error must name.
NEEDS_EXTRA = (
    (["stress", "--paths", "1", "--steps", "2"], "settlekernel[plots]"),
    (["capacity", "--events", "50", "--accounts", "5", "--plot", "c.png"], "settlekernel[plots]"),
    (["sweep", "--grid", "GRID", "--no-plots", "--scheduler", "tcp://127.0.0.1:1"], "[dask]"),
)


def run(command: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text."""
    return subprocess.run(command, capture_output=True, text=True, check=False, **options)  # type: ignore[call-overload, no-any-return]


def fail(what: str, result: subprocess.CompletedProcess[str]) -> None:
    """Stop with what failed and its output."""
    print(f"FAILED: {what} (exit {result.returncode})\n{result.stdout}\n{result.stderr}")
    raise SystemExit(1)


def source_copy(target: Path) -> Path:
    """Copy the checkout's files (tracked or new, not ignored) to ``target``; return it.

    Installing from a copy keeps setuptools' build/ out of the checkout, and a stale
    build/lib (modules that no longer exist) out of the wheel.
    """
    listed = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=CHECKOUT)
    if listed.returncode != 0:
        fail("git ls-files", listed)
    for name in listed.stdout.splitlines():
        source = CHECKOUT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def install(venv: Path, source: Path) -> Path:
    """Create a venv at ``venv`` and install ``source`` with no extras; return its bin/."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    binary = venv / "bin"
    result = run([str(binary / "python"), "-m", "pip", "install", "--quiet", str(source)])
    if result.returncode != 0:
        fail("pip install .", result)
    return binary


def check(binary: Path, scratch: Path) -> int:
    """Run every check against the installed CLI; return the number of commands checked."""
    python, cli = str(binary / "python"), str(binary / "settlekernel")
    for what, command in (
        ("import settlekernel", [python, "-c", "import settlekernel"]),
        ("settlekernel --version", [cli, "--version"]),
    ):
        result = run(command, cwd=scratch)
        if result.returncode != 0:
            fail(what, result)
    paths = json.loads(run([python, "-c", LIST_COMMANDS], cwd=scratch).stdout)
    for path in paths:
        for flag in ("--help", "-h"):
            result = run([cli, *path, flag], cwd=scratch)
            if result.returncode != 0 or "Usage:" not in result.stdout:
                fail(" ".join(["settlekernel", *path, flag]), result)
    for arguments, expected in (
        (["demo"], "all hold"),
        (["verify"], "theorems proved"),
        (["audit", "--html", "audit.html"], "CrossHair contracts NOT checked"),
    ):
        result = run([cli, *arguments], cwd=scratch)
        if result.returncode != 0 or expected not in result.stdout:
            fail(" ".join(["settlekernel", *arguments]), result)
    grid = scratch / "grid.toml"
    grid.write_text("[scenario]\npaths = 1\n", encoding="utf-8")
    for arguments, extra in NEEDS_EXTRA:
        result = run([cli, *[str(grid) if a == "GRID" else a for a in arguments]], cwd=scratch)
        lines = result.stderr.strip().splitlines()
        if result.returncode != 2 or len(lines) != 1 or extra not in lines[0]:
            fail(" ".join(arguments) + f" should name {extra} in one line", result)
    return len(paths)


def main() -> None:
    """Build the venv, check it, and say what was checked."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=None, help="where to build the venv")
    parser.add_argument("--keep", action="store_true", help="keep the venv afterwards")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="settlekernel-package-"))
    venv = options.venv or scratch / "venv"
    try:
        source = source_copy(scratch / "source")
        commands = check(install(venv, source), scratch)
    finally:
        if not options.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"package check: a plain install runs {commands} commands' --help/-h, demo, extras")


if __name__ == "__main__":
    main()
