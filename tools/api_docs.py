"""Build the API reference from the docstrings with pdoc; exit 1 on any warning.

pdoc documents only what a package's ``__all__`` names, and the facade's ``__all__`` names
no subpackages, so each layer is passed explicitly. Run (``make docs`` does):

    python tools/api_docs.py build/docs
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import warnings
from pathlib import Path

# Importing the stress lab imports matplotlib, which on a machine without its font cache yet
# runs `fc-list` to build one. pdoc blocks subprocesses during import and warns, so the build
# failed on a fresh machine only; our own modules' imports are allowed to run it.
os.environ.setdefault("PDOC_ALLOW_EXEC", "1")

import pdoc
import pdoc.render

import settlekernel

SOURCE = Path(settlekernel.__file__).resolve().parent

# pdoc evaluates the annotations of a NamedTuple's generated __init__ in the namespace of
# collections, not of the module, so under `from __future__ import annotations` it cannot
# resolve names the module imports. That says nothing about our docstrings; every other
# warning fails the build.
_NAMEDTUPLE_INIT = re.compile(
    r"Error parsing type annotation .* for (settlekernel\.[\w.]+)\.__init__\."
)


def modules() -> list[str]:
    """Return the facade and every subpackage of it, in name order."""
    layers = sorted(path.parent.name for path in SOURCE.glob("*/__init__.py"))
    return ["settlekernel", *(f"settlekernel.{layer}" for layer in layers)]


def build(out: Path) -> list[str]:
    """Write the HTML into ``out``; return every warning pdoc raised."""
    pdoc.render.configure(docformat="google", search=True, show_source=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules(), output_directory=out)
    messages = [str(warning.message) for warning in caught]
    return [message for message in messages if not _is_namedtuple_init(message)]


def _is_namedtuple_init(message: str) -> bool:
    match = _NAMEDTUPLE_INIT.match(message)
    if match is None:
        return False
    module_name, _, class_name = match.group(1).rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def main() -> int:
    """Build into the directory named on the command line (default build/docs)."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/docs")
    problems = build(out)
    for problem in problems:
        print(f"pdoc: {problem}", file=sys.stderr)
    pages = len(list(out.rglob("*.html")))
    print(f"{pages} pages in {out}; {len(problems)} warnings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
