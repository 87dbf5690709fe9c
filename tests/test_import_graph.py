"""The package's import graph has no cycles, and its imports only point down the data flow.

Every import of one ptft module by another counts, at the top of a file or deferred into a
function (deferring hides a cycle from the interpreter, not from a reader); imports under
``if TYPE_CHECKING:`` are annotations only and do not count."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import ptft

PACKAGE = Path(ptft.__file__).parent

# The layers of docs/architecture.md, bottom first: a module may import its own layer and those
# below it. A name stands for the module and everything under it (the longest name wins).
LAYERS = (
    ("ptft", "ptft.errors", "ptft.grid", "ptft.registry", "ptft.sources", "ptft.data"),
    ("ptft.checkpoints",),
    ("ptft.task_types", "ptft.tasks"),
    ("ptft.tracking",),
    ("ptft.training",),
    ("ptft.evaluation",),
    ("ptft.store",),
    ("ptft.config",),
    ("ptft.engine",),
    ("ptft.lm_eval_import",),
    ("ptft.analysis",),
    ("ptft.report",),
    ("ptft.api",),
    ("ptft.cli", "ptft.__main__"),
)


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


def layer_of(module: str) -> int:
    """The index in LAYERS of the longest name that is the module or a package above it."""
    matches = [(len(name), i) for i, names in enumerate(LAYERS) for name in names
               if module == name or module.startswith(name + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)"
    return max(matches)[1]


def test_the_checker_finds_a_cycle_and_a_clean_graph_has_none():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_is_read_from_the_package():
    graph = import_graph()
    assert "ptft.grid" in graph["ptft.store"]  # a top-level import
    assert "ptft.engine.study" in graph["ptft.api"]  # one deferred into a function


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{module} imports {other}" for module, imports in sorted(graph.items())
            for other in sorted(imports) if layer_of(other) > layer_of(module)]


def test_every_import_points_down_or_stays_in_its_layer():
    assert layer_of("ptft.engine.study") > layer_of("ptft.store") > layer_of("ptft.grid") == 0
    # the store reaching up into the planner, as it once did for the grid's names, is caught
    assert upward_imports({"ptft.store": {"ptft.engine.cells", "ptft.grid"}}) == ["ptft.store imports ptft.engine.cells"]
    assert upward_imports(import_graph()) == []
