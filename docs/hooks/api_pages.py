"""MkDocs hook: the `cells` API reference covers every module and every exported name by itself.

- A module of `cells/` (or `cells/kernels/`) that no page of docs/api renders with a
  `::: cells.<module>` line gets a generated page `api/cells/<module>.md`, listed at the end of
  the navigation's cells section: a new cell module appears in the reference without an edit here.
- The marker `<!-- cells-names -->` in a page becomes a table of `cells.__all__`, each name
  linked to its entry in the reference (read from cells/__init__.py's `__all__` and imports,
  without importing JAX). An export that no page renders is then an unresolved reference, which
  fails `mkdocs build --strict`.
"""

from __future__ import annotations

import ast
import os
import re

PACKAGE = "cells"
API_DIR = "api/cells"
MARKER = "<!-- cells-names -->"
_DIRECTIVE = re.compile(r"^:::[ \t]+([\w.]+)", re.MULTILINE)


def _root(config) -> str:
    return os.path.dirname(os.path.abspath(config.config_file_path))


def modules(root: str) -> list[str]:
    """Dotted names of the package's public modules (cells.lstm, cells.kernels.step_grads, ...)."""
    out = []
    for folder, dirs, files in os.walk(os.path.join(root, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        package = os.path.relpath(folder, root).replace(os.sep, ".")
        if "__init__.py" not in files:
            continue
        out += [f"{package}.{f[:-3]}" for f in sorted(files) if f.endswith(".py") and f[0] != "_"]
    return out


def rendered(docs_dir: str) -> set[str]:
    """The objects the hand-written pages render (`::: name` lines)."""
    out = set()
    for folder, _, files in os.walk(docs_dir):
        for name in files:
            if name.endswith(".md"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    out.update(_DIRECTIVE.findall(f.read()))
    return out


def exports(root: str) -> list[tuple[str, str]]:
    """(name, dotted path of its definition) for each name in cells.__all__."""
    with open(os.path.join(root, PACKAGE, "__init__.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    where, names = {}, []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                where[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                where[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = list(ast.literal_eval(node.value))
    # Names not imported in __init__ (the lazily imported submodules) are modules of the package.
    return [(name, where.get(name, f"{PACKAGE}.{name}")) for name in names]


def _missing(config) -> list[str]:
    have = rendered(config.docs_dir)
    return [m for m in modules(_root(config)) if m not in have]


def _section(nav, page: str):
    """The nav list holding `page` (a nested list of dicts and strings), or None."""
    for entry in nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            if value == page:
                return nav
            if isinstance(value, list) and (found := _section(value, page)) is not None:
                return found
    return None


def on_config(config):
    section = _section(config.nav or [], f"{API_DIR}/index.md")
    if section is not None:
        section += [{m: f"{API_DIR}/{m.split('.', 1)[1]}.md"} for m in _missing(config)]
    return config


def on_files(files, config):
    from mkdocs.structure.files import File  # here: the rest imports without MkDocs (tests)

    for module in _missing(config):
        content = f"# `{module}`\n\n::: {module}\n"
        src_uri = f"{API_DIR}/{module.split('.', 1)[1]}.md"
        files.append(File.generated(config, src_uri, content=content))
    return files


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    rows = ["| name | defined in |", "|---|---|"]
    for name, path in exports(_root(config)):
        module = path if path == f"{PACKAGE}.{name}" else path.rsplit(".", 1)[0]
        rows.append(f"| [`cells.{name}`][{path}] | `{module}` |")
    return markdown.replace(MARKER, "\n".join(rows))
