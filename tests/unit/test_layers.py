"""The package's import layers (docs/architecture.md): a module imports only from its own layer or below,
and no import — at module level or inside a function — closes a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "myreinflow"
# bottom to top; a top-level module or subpackage of myreinflow by its name
LAYERS = (
    ("errors", "utils", "stats", "names", "provenance", "tracking"),
    ("options",),
    ("data", "nets", "flows", "envs"),
    ("configs",),
    ("checkpoint",),
    ("policy",),
    ("evaluation",),
    ("run",),
    ("algos",),
    ("analysis",),
    ("toy2d",),
    ("schema", "cli", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """The myreinflow modules `source` (the module `module`) imports, anywhere in it: `from P import n`
    counts as P.n where P.n is a module, else P."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {name for name in found if name.split(".")[0] == "myreinflow" and name != module}


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}


def import_graph(sources: dict[str, str] | None = None) -> dict[str, set[str]]:
    """module → the modules it imports, from the package's files (or `sources`: module → source)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    sources = sources or {m: p.read_text() for m, p in files.items()}
    return {m: imports_of(src, m, files[m].name == "__init__.py") for m, src in sources.items()}


def layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK[parts[1]] if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
        for m, targets in graph.items()
        for t in targets
        if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, first = last), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return [*path[path.index(t) :], t]
            if t not in state and (cycle := visit(t)):
                return cycle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_every_module_has_a_layer():
    assert not [m for m in MODULES if m != "myreinflow" and m.split(".")[1] not in RANK]


def test_no_upward_import():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


@pytest.mark.parametrize(
    "module, planted",
    [
        ("myreinflow.evaluation", "from myreinflow.analysis import cli\n"),  # at module level
        ("myreinflow.flows.base", "def f():\n    from myreinflow.configs import FlowOptions\n"),  # local
    ],
)
def test_a_planted_upward_import_is_caught(module, planted):
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    sources = {m: p.read_text() for m, p in files.items()}
    sources[module] += "\n" + planted
    assert any(line.startswith(module) for line in upward_imports(import_graph(sources)))


def test_a_planted_cycle_is_caught():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    sources = {m: p.read_text() for m, p in files.items()}
    sources["myreinflow.data.tasks"] += "\ndef f():\n    from myreinflow.data.offline import load_offline\n"
    cycle = find_cycle(import_graph(sources))
    assert cycle is not None and "myreinflow.data.tasks" in cycle
