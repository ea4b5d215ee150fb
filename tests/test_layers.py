"""The package's layers, read off the import graph (spec/README.md, "Layers").

Every ``import`` in every module counts, including those inside functions and under
``TYPE_CHECKING``: a lazy import is still a dependency, and a circle hidden behind one is
still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "settlekernel"
# Bottom to top. A module may import its own layer and those below; peers share a rank
# and may not import each other.
LAYERS = (
    ("core",),
    ("margin",),
    ("kernel",),
    ("commitments",),
    ("journal",),
    ("proofs", "stress", "capacity"),
    ("cli",),
)
RANK = {layer: rank for rank, peers in enumerate(LAYERS) for layer in peers}
# The pure layers do no I/O, read no clock and draw no random numbers: the standard
# library modules that would let them are not imported there at all.
PURE_LAYERS = ("core", "margin", "kernel")
IMPURE_MODULES = frozenset({
    "asyncio", "datetime", "io", "os", "pathlib", "random", "secrets", "shutil", "socket",
    "sqlite3", "subprocess", "sys", "tempfile", "threading", "time", "urllib",
})


def module_name(path: Path) -> str:
    """Return the dotted name of a module file under the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Return every module of the package, by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> tuple[set[str], set[str]]:
    """Return the settlekernel modules and the other top-level modules a file imports."""
    internal: set[str] = set()
    external: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from package import module`` depends on the module itself.
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in modules
                else node.module
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            (internal if name.split(".")[0] == "settlekernel" else external).add(
                name if name.split(".")[0] == "settlekernel" else name.split(".")[0]
            )
    return internal, external


def layer_of(module: str) -> str | None:
    """Return the layer of a module; None for the facade (``settlekernel``, ``__main__``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in RANK) else None


GRAPH = {
    name: imports_of(path, all_modules())[0] for name, path in all_modules().items()
}


def test_every_module_belongs_to_a_layer():
    """Places every module of the package in one of the named layers, or the facade."""
    stray = [
        name for name in GRAPH
        if layer_of(name) is None and name not in {"settlekernel", "settlekernel.__main__"}
    ]
    assert stray == []
    assert {layer_of(name) for name in GRAPH} - {None} == set(RANK)


def upward_imports(module: str, targets: set[str]) -> list[str]:
    """Return the imports of ``module`` that reach above or beside its layer, or the facade."""
    layer = layer_of(module)
    if layer is None:
        return []
    return sorted(
        target for target in targets
        if layer_of(target) is None
        or (layer_of(target) != layer and RANK[layer_of(target)] >= RANK[layer])
    )


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import circle of ``graph`` as a path, or None when it is acyclic."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        path.append(module)
        for target in sorted(graph.get(module, ())):
            circle = visit(target)
            if circle:
                return circle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        circle = visit(module)
        if circle:
            return circle
    return None


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_a_module_imports_only_its_own_layer_and_those_below(module):
    """Finds no import of a higher layer, of a peer layer, or of the facade from inside."""
    assert upward_imports(module, GRAPH[module]) == []


def test_the_module_graph_has_no_circle():
    """Orders every module so that each comes after all it imports: no import circle."""
    assert find_circle(GRAPH) is None


@pytest.mark.parametrize(
    "module", sorted(name for name in GRAPH if layer_of(name) in PURE_LAYERS)
)
def test_the_pure_layers_import_no_io_clock_or_randomness(module):
    """Keeps os, time, random, sqlite3 and the like out of the core, margin and kernel."""
    external = imports_of(all_modules()[module], all_modules())[1]
    assert sorted(external & IMPURE_MODULES) == []


def test_planted_upward_imports_and_circles_are_caught(tmp_path):
    """Shows each check can fail: a lazy upward import, a peer import and a circle."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "def later():\n    from settlekernel.journal import durable\n", encoding="utf-8"
    )
    targets = imports_of(planted, all_modules())[0]
    assert upward_imports("settlekernel.core.planted", targets) == ["settlekernel.journal.durable"]
    assert upward_imports("settlekernel.stress.x", {"settlekernel.proofs.engine"}) != []
    assert upward_imports("settlekernel.kernel.x", {"settlekernel"}) == ["settlekernel"]
    circled = {**GRAPH, "settlekernel.core.units": {"settlekernel.core.model"}}
    assert find_circle(circled) is not None
