"""The import direction of the layers, read from the source (ast; nothing is imported).

cells -> nothing of ours; train -> cells; experiments -> train and cells. Every module under
cells/, train/ and experiments/ is parsed, with every import in it (at the top, inside functions,
absolute and relative), into a graph of module -> module arrows; the tests fail on

* an import cycle between modules (each one reported as a path a -> b -> ... -> a),
* an arrow from cells to train or experiments, or from train to experiments,
* a string literal in the code of train/ or cells/ naming experiments/data (the bundled data
  lives in data/, which every layer may read; docstrings and comments may mention it).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("cells", "train", "experiments")
# Which top-level packages each one may import (itself included).
ALLOWED = {
    "cells": {"cells"},
    "train": {"train", "cells"},
    "experiments": {"experiments", "train", "cells"},
}
# String literals that may name experiments/data: (file, literal, why).
FORMER_DATA_PATHS = {
    ("train/data/base.py", "experiments/data/"): "maps the former place of the bundled data, "
    "named by configs recorded before the move, to data/ (it reads nothing there)",
}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, pathlib.Path]:
    """Every module of ours: dotted name -> file (folders without __init__.py included, as the
    namespace packages they are)."""
    files = (p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py")))
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


MODULES = _sources()


def _rel(path: pathlib.Path) -> str:
    return path.relative_to(REPO).as_posix()


def _ours(name: str) -> str | None:
    """The most specific module of ours that importing `name` executes, or None."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, int]]:
    """(imported module of ours, line) for every import statement in the module."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - (node.level - (1 if is_package else 0))]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            # `from a import b` imports the module a.b when there is one, else a name from a.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        found += [(t, node.lineno) for t in map(_ours, targets) if t and t != module]
    return found


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """One cycle (a path a -> ... -> a) through each strongly connected component of more than
    one module (Tarjan's algorithm; iterative, so deep graphs cannot overflow the stack)."""
    succ = {m: sorted({t for t, _ in edges}) for m, edges in graph.items()}
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(set(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(succ[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [_path_back(min(c), c, succ) for c in components]


def _path_back(start: str, component: set[str], succ: dict[str, list[str]]) -> list[str]:
    """A shortest path start -> ... -> start inside `component` (breadth first)."""
    parent, frontier = {}, [start]
    while frontier:
        following = []
        for node in frontier:
            for child in succ[node]:
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, start]
                if child in component and child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in a component it has no path back from")


def _describe(cycle: list[str]) -> str:
    lines = dict(((m, t), n) for m in cycle for t, n in GRAPH[m])
    pairs = zip(cycle[:-1], cycle[1:], strict=True)
    hops = [f"{_rel(MODULES[a])}:{lines[a, b]} imports {b}" for a, b in pairs]
    return " -> ".join(cycle) + "\n    " + "\n    ".join(hops)


def test_the_graph_sees_every_kind_of_import():
    """The parser finds the arrows the layers are built on (so an empty graph cannot pass)."""
    arrows = {(m, t) for m, edges in GRAPH.items() for t, _ in edges}
    assert ("train.models", "cells") in arrows  # import cells
    assert ("train.models", "cells.base") in arrows  # from cells import base as cells_base
    assert ("cells", "cells.lstm") in arrows  # from cells.lstm import ... (in a package)
    assert {"cells", "train", "experiments", "experiments.lab"} <= set(MODULES)


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles:\n  " + "\n  ".join(map(_describe, cycles))


def test_cycle_finder_reports_a_path():
    graph = {"a": [("b", 1)], "b": [("c", 2)], "c": [("a", 3), ("d", 4)], "d": []}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": [("b", 1)], "b": []}) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_down_the_layers(package):
    wrong = [
        f"{_rel(MODULES[m])}:{line} imports {t}"
        for m, edges in sorted(GRAPH.items())
        if m.split(".")[0] == package
        for t, line in edges
        if t.split(".")[0] not in ALLOWED[package]
    ]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes of the module, its classes and functions."""
    owners = [tree] + [
        n
        for n in ast.walk(tree)
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    return {
        id(o.body[0].value)
        for o in owners
        if o.body and isinstance(o.body[0], ast.Expr) and isinstance(o.body[0].value, ast.Constant)
    }


@pytest.mark.parametrize("package", ["cells", "train"])
def test_library_code_names_no_data_under_experiments(package):
    found = []
    for module, path in sorted(MODULES.items()):
        if module.split(".")[0] != package:
            continue
        tree = ast.parse(path.read_text(), str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
                and "experiments/data" in node.value
                and (_rel(path), node.value) not in FORMER_DATA_PATHS
            ):
                found.append(f"{_rel(path)}:{node.lineno}: {node.value!r}")
    assert not found, "bundled data is read from data/, not experiments/data:\n" + "\n".join(found)
