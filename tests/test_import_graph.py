"""The package's import graph has no cycles.

Every import of one ptft module by another counts, at the top of a file or deferred into a
function (deferring hides a cycle from the interpreter, not from a reader); imports under
``if TYPE_CHECKING:`` are annotations only and do not count."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ptft

PACKAGE = Path(ptft.__file__).parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("ptft", *path.relative_to(PACKAGE).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imported(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The ptft modules a module imports (``from ptft.x import y`` counts ``ptft.x.y`` when it is a
    module, else ``ptft.x``)."""
    found = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if is_type_checking(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                         for a in node.names)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    graph = defaultdict(set)
    for name, path in modules.items():
        graph[name] = imported(ast.parse(path.read_text()), modules) - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle_and_a_clean_graph_has_none():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_is_read_from_the_package():
    graph = import_graph()
    assert "ptft.grid" in graph["ptft.store"]  # a top-level import
    assert "ptft.engine.study" in graph["ptft.api"]  # one deferred into a function


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []
