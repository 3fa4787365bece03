"""The import graph of ``rl_provider`` has no cycle (DESIGN: imports go only downwards).

What counts as an edge: every ``import`` and ``from ... import`` of an ``rl_provider`` module,
at module level *and* inside functions (a lazy import is still a dependency: it only moves the
cost to the first call), except those under ``if TYPE_CHECKING:`` (never executed: annotations
only). ``from rl_provider.pkg import name`` is an edge to ``rl_provider.pkg.name`` when that is a
module, else to ``rl_provider.pkg``. A package's ``__init__`` is its own node.
"""

from __future__ import annotations

import ast
from pathlib import Path

import rl_provider

ROOT = Path(rl_provider.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:  # only the else branch runs
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(name: str, importer: str, is_package: bool, level: int) -> str:
    if level == 0:
        return name
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve(node.module or "", name, is_package, node.level)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            for target in targets:
                while target and target not in known:  # import a.b.c of a non-module attr
                    target = target.rpartition(".")[0]
                if target.startswith("rl_provider") and target != name:
                    graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_graph_sees_lazy_imports_and_skips_type_checking_ones():
    graph = import_graph()
    # Lazy imports inside functions are edges: the estimator's create_model, the CLI's parser.
    assert "rl_provider.core.model" in graph["rl_provider.core.estimator"]
    assert "rl_provider.cli.jobs" in graph["rl_provider.cli.app"]
    # Module-level imports are edges; a TYPE_CHECKING import (model.py's of the estimator,
    # for annotations) is not.
    assert "rl_provider.core.jobs" in graph["rl_provider.backends.base"]
    assert "rl_provider.core.estimator" not in graph["rl_provider.core.model"]


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph[stack.pop()] - seen:
            seen.add(target)
            stack.append(target)
    return seen


def test_the_request_modules_reach_no_backend_and_no_stateful_module():
    # Issue 13: the requests are built by pure modules; the estimator and the model hold state.
    graph = import_graph()
    stateful = {"rl_provider.core.estimator", "rl_provider.core.model", "rl_provider.core.session"}
    for pure in (
        "rl_provider.core.training_request",
        "rl_provider.core.job_arguments",
        "rl_provider.core.model_request",
    ):
        reached = _reachable(graph, pure)
        assert not {m for m in reached if m.startswith("rl_provider.backends")}, pure
        assert not reached & stateful, pure


def test_the_model_does_not_know_the_estimator_even_for_types():
    # Issue 13: core/model.py takes settings through TrainingSettings, never RLEstimator.
    tree = ast.parse((ROOT / "core" / "model.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "rl_provider.core.model_request" in imported  # the walk sees model.py's imports
    assert "rl_provider.core.estimator" not in imported
