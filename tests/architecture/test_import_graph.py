"""The shape of the package, checked from the source: no import cycles, arrows one way, and
``safety``/``contracts`` free of I/O.

Every ``import`` counts, at module level or inside a function (a lazy import is still an
arrow), except those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("supervisor", "safety", "contracts", "platform_adapters")

# Layers, top to bottom: a module may import its own layer's modules or lower ones, never higher.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("supervisor.cli",),
    ("supervisor.run", "supervisor.views"),
    ("supervisor.worker", "supervisor.git", "supervisor.records", "supervisor.hook"),
    ("safety", "platform_adapters"),
    ("contracts",),
)

# What a pure package may not import: processes, sockets, files, clocks and our effectful code.
IMPURE = {
    "subprocess", "socket", "shutil", "fcntl", "signal", "psutil", "http", "urllib",
    "tempfile", "time", "os", "io", "sqlite3", "select", "threading", "multiprocessing",
    "unattended.supervisor", "unattended.platform_adapters",
}  # fmt: skip
PURE_ALLOWED = {"contracts": {"os"}}  # contracts.paths builds paths (no I/O) with os.path


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO_ROOT).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["unattended", *parts])


def source_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    return skipped


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The modules ``name`` imports (ours resolved to modules; others by top-level name)."""
    tree = ast.parse(path.read_text())
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield full if full in known else base


def graph() -> dict[str, set[str]]:
    modules = source_modules()
    known = set(modules)
    return {
        name: {m for m in imports_of(name, path, known) if m in known and m != name}
        for name, path in modules.items()
    }


def layer_of(name: str) -> int:
    short = name.removeprefix("unattended.")
    for depth, layer in enumerate(LAYERS):
        if any(short == p or short.startswith(p + ".") for p in layer):
            return depth
    return -1  # the package roots (``unattended.supervisor``): docstrings only


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules, or None (iterative DFS with colours)."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for start in edges:
        if colour[start] != white:
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        colour[start] = grey
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = black
                stack.pop()
                path.pop()
            elif colour[child] == grey:
                return [*path[path.index(child) :], child]
            elif colour[child] == white:
                colour[child] = grey
                stack.append((child, iter(sorted(edges[child]))))
                path.append(child)
    return None


def test_the_graph_is_not_empty() -> None:
    edges = graph()
    assert len(edges) > 100
    assert "unattended.contracts.state" in edges["unattended.supervisor.records.state"]


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_arrows_point_down() -> None:
    upward = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if layer_of(target) < layer_of(name) and layer_of(name) >= 0
    ]
    assert upward == []


def test_nothing_imports_the_root_app_but_the_entry_point() -> None:
    importers = {n for n, targets in graph().items() if "unattended.supervisor.cli.app" in targets}
    assert importers == {"unattended.supervisor.cli.entry"}


@pytest.mark.parametrize("package", ["safety", "contracts"])
def test_pure_packages_do_no_io(package: str) -> None:
    modules = source_modules()
    allowed = PURE_ALLOWED.get(package, set())
    found = []
    for name, path in modules.items():
        if not name.startswith(f"unattended.{package}"):
            continue
        for target in imports_of(name, path, set(modules)):
            hit = next(
                (
                    bad
                    for bad in IMPURE
                    if target.partition(".")[0] == bad
                    or target == bad
                    or target.startswith(bad + ".")
                ),
                None,
            )
            if hit and hit not in allowed:
                found.append(f"{name} imports {target}")
    assert found == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_import_of_ours_names_a_module_that_exists() -> None:
    """Lazy imports (inside a function) run only on their path: one naming a module that was
    moved or removed would fail there, perhaps in the middle of the night."""
    modules = source_modules()
    known = set(modules) | {"unattended"}
    missing = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                target = node.module
            elif isinstance(node, ast.Import):
                target = next((a.name for a in node.names if a.name.startswith("unattended")), "")
            else:
                continue
            if target.startswith("unattended") and target not in known:
                missing.append(f"{name} imports {target}")
    assert missing == []
