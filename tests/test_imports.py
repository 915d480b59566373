"""The package's import graph: no cycles anywhere, and `search/` reached only through its public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hpsearch"
# Modules outside search/ that may use it: only through `hpsearch.search` (its __init__).
SEARCH_CLIENTS = ("hpsearch.cli", "hpsearch.dashboard", "hpsearch.reports")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module → the hpsearch modules it imports (at any depth of its code, lazy imports included).

    `from pkg import name` counts as importing `pkg.name` when that is a module, else `pkg`.
    A submodule's implicit import of its parent package is not an edge (Python runs the parent's
    __init__ first, but that is not a dependency the code chose).
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
                edges |= submodules
                if len(submodules) < len(node.names):  # names defined in (or re-exported by) the package
                    edges.add(node.module)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_hpsearch_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_graph_sees_lazy_imports_and_from_imports() -> None:
    graph = import_graph()
    assert "hpsearch.search.backend" in graph["hpsearch.search.study"]
    assert "hpsearch.search" in graph["hpsearch.cli"]


@pytest.mark.parametrize("client", SEARCH_CLIENTS)
def test_search_is_used_only_through_its_public_api(client: str) -> None:
    graph = import_graph()
    users = [m for m in graph if m == client or m.startswith(client + ".")]
    private = sorted((m, dep) for m in users for dep in graph[m] if dep.startswith("hpsearch.search."))
    assert not private, f"import from hpsearch.search, not its modules: {private}"


def test_the_public_api_exports_what_it_names() -> None:
    import hpsearch.search as search

    assert all(hasattr(search, name) for name in search.__all__)
