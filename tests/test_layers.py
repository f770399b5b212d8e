"""The package's layers: each imports only the layers below it, and no modules import in a cycle.

models <- datasets <- engine <- apis <- deploy <- analysis; ``compat``, ``registry`` and
``model_zoo`` sit below them all. ``deploy/ort`` runs without torch: it imports nothing of the
package but ``image_files``, a base module that imports nothing of the package. Every import
counts, also those inside functions or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgenext_dense"
LAYERS = ("base", "models", "datasets", "engine", "apis", "deploy", "analysis")
BASE_MODULES = {"compat", "registry", "model_zoo", "image_files"}
TORCH_FREE = {"edgenext_dense.image_files"}  # the base modules the runtime may import


def module_name(path: Path) -> str:
    """``edgenext_dense.engine.runner`` for ``edgenext_dense/engine/runner.py``."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path) -> Set[str]:
    """The ``edgenext_dense`` modules a file imports, resolved to module names.

    Args:
        path (Path): A ``.py`` file of the package.

    Returns:
        set[str]: Imported modules (``from X import name`` yields ``X.name`` when that is a
        module of the package, else ``X``).
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "edgenext_dense")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "edgenext_dense":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
    return found


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer_of(module: str) -> str:
    """The layer a module belongs to; ``'ort'`` for the stand-alone runtime."""
    parts = module.split(".")
    if parts[1:3] == ["deploy", "ort"]:
        return "ort"
    if len(parts) == 1 or parts[1] in BASE_MODULES:
        return "base"
    return parts[1]


def import_graph() -> Dict[str, Set[str]]:
    """Every package module and the package modules it imports."""
    return {module_name(p): package_imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def upward_imports(graph: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    """The (importer, imported) pairs that break the layer order."""
    bad = []
    for module, imported in graph.items():
        if module == "edgenext_dense":  # the package's entry registers the models
            continue
        layer = layer_of(module)
        for target in imported:
            target_layer = layer_of(target)
            if module in TORCH_FREE:
                allowed = False
            elif layer == "ort" or target_layer == "ort":
                # the runtime imports only itself and TORCH_FREE; deploy and above may use it
                allowed = (target_layer == "ort" or target in TORCH_FREE) and (
                    layer == "ort" or _rank(layer) >= _rank("deploy")
                )
            else:
                allowed = target != "edgenext_dense" and _rank(target_layer) <= _rank(layer)
            if not allowed:
                bad.append((module, target))
    return bad


def _rank(layer: str) -> int:
    return LAYERS.index(layer)


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            # a package __init__ importing its own modules is not a cycle
            if succ not in graph or succ == node or node.startswith(succ + "."):
                continue
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"edgenext_dense.models.a": {"edgenext_dense.apis.b"}}, "upward"),
        ({"edgenext_dense.deploy.ort.a": {"edgenext_dense.models.b"}}, "upward"),
        ({"edgenext_dense.deploy.ort.a": {"edgenext_dense.compat"}}, "upward"),
        ({"edgenext_dense.deploy.ort.a": {"edgenext_dense.image_files"}}, None),
        ({"edgenext_dense.image_files": {"edgenext_dense.compat"}}, "upward"),
        ({"edgenext_dense.engine.a": {"edgenext_dense.deploy.ort.b"}}, "upward"),
        (
            {
                "edgenext_dense.engine.a": {"edgenext_dense.engine.b"},
                "edgenext_dense.engine.b": {"edgenext_dense.engine.a"},
            },
            "cycle",
        ),
        ({"edgenext_dense.apis.a": {"edgenext_dense.models.b"}}, None),
    ],
)
def test_the_checks_catch_what_they_should(graph: Dict[str, Set[str]], expected: str) -> None:
    assert bool(upward_imports(graph)) == (expected == "upward")
    assert bool(cycles(graph)) == (expected == "cycle")
