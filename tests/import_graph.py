"""The project's static import graph, read from the source with ``ast`` (nothing is imported).

Every ``import`` statement counts, including those inside functions (the CLI and several
modules import lazily; a lazy import still runs when the command does), except those under
``if TYPE_CHECKING:``, which never run. Only project
modules are kept: third-party imports are dropped. Importing ``a.b.c`` also imports the
packages ``a`` and ``a.b`` (their ``__init__.py``), except the importing module's own
packages, which are already being imported when it runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("qdtrack", "serving", "components", "pipelines")


def module_file(module: str, root: Path = REPO) -> Path | None:
    """The source file of a project module (``a/b.py`` or ``a/b/__init__.py``), or None."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def project_modules(root: Path = REPO, packages: Iterable[str] = PACKAGES) -> list[str]:
    """Every module of the given packages, dotted."""
    names = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _resolve_from(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def direct_imports(module: str, root: Path = REPO) -> set[str]:
    """Project modules that ``module``'s source imports (any statement, any depth)."""
    path = module_file(module, root)
    if path is None:
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # ``if TYPE_CHECKING:`` blocks never run: their imports are for the type checker only.
    typing_only = {
        id(inner)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for inner in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, module, path.name == "__init__.py")
            targets = [base]
            # ``from package import module`` imports that submodule too.
            targets += [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            found.update(m for m in _with_parents(target) if module_file(m, root) is not None)
    # A module's own packages are being imported already when its body runs: those are
    # not edges (a package __init__ that imports its submodules is no cycle).
    return found - set(_with_parents(module))


def import_graph(root: Path = REPO, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """``module -> the project modules it imports directly`` for every project module."""
    return {name: direct_imports(name, root) for name in project_modules(root, packages)}


def closure(starts: Iterable[str], graph: dict[str, set[str]]) -> set[str]:
    """``starts`` and every project module they import, transitively (with parents)."""
    seen: set[str] = set()
    stack = [m for start in starts for m in _with_parents(start)]
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        seen.add(module)
        stack.extend(graph.get(module, ()))
    return {m for m in seen if m in graph}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for child in sorted(graph.get(node, ())):
            if child not in index:
                visit(child)
                low[node] = min(low[node], low[child])
            elif child in on_stack:
                low[node] = min(low[node], index[child])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)
