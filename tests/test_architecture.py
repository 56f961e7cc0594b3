"""The layout of docs/architecture.md holds: imports flow one way (the import-linter contracts in pyproject.toml),
no import cycles between modules, modules stay small, and only mcuforge/toolchain runs external commands."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tasks", "schemas", "mcuforge")
MAX_MODULE_LINES = 400


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's command on the tree at `root` (its pyproject.toml, its packages first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(root))
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
               "sys.exit(lint_imports_command())", "--no-cache"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def _copy_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("importer, imported, contract", [
    ("mcuforge/ir/graph.py", "mcuforge.report.diff", "layers"),          # a low layer reaching up
    ("mcuforge/core/io.py", "tasks.config", "layers"),                   # the library importing a doit stage
    ("schemas/board.py", "mcuforge.ml.data", "schemas (the configuration contract)"),
    ("mcuforge/codegen/writer.py", "schemas.pipeline", "the layers below ml"),
])
def test_contracts_catch_a_backward_import(tmp_path, importer, imported, contract):
    """The same contracts on a copy of the tree with one forbidden import added: broken, and the report names it."""
    root = _copy_tree(tmp_path)
    module = root / importer
    module.write_text(module.read_text() + f"\nimport {imported}  # noqa: E402,F401\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    importer_name = importer.removesuffix(".py").replace("/", ".")
    assert f"{importer_name} -> {imported}" in result.stdout
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout


def _strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[set[str]]:
    """Tarjan's algorithm over the direct imports between `modules` (iterative: no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            if child < len(edges[node]):
                work.append((node, child + 1))
                nxt = edges[node][child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def test_no_import_cycles():
    """No two modules import each other, directly or through others (a package's __init__ importing its own
    modules is not a cycle unless a module imports the package back)."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = set(graph.modules)
    cycles = [sorted(c) for c in _strongly_connected(graph, modules) if len(c) > 1]
    assert cycles == []


def test_tarjan_finds_a_planted_cycle():
    graph = grimp.ImportGraph()
    for name in ("a", "b", "c", "d"):
        graph.add_module(name)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    found = [c for c in _strongly_connected(graph, {"a", "b", "c", "d"}) if len(c) > 1]
    assert found == [{"a", "b", "c"}]


def test_modules_are_small():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines())
             for package in ("mcuforge", "tasks") for path in (ROOT / package).rglob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}


def test_only_the_toolchain_runs_commands():
    """Every external command goes through mcuforge/toolchain (timeout, checked exit code, one error type)."""
    graph = grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)
    importers = graph.find_modules_that_directly_import("subprocess")
    assert sorted(m for m in importers if not m.startswith("mcuforge.toolchain")) == []


def test_mcuforge_is_the_only_installed_package():
    """pyproject installs the library only: no top-level `tasks` or `schemas` in site-packages."""
    text = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["mcuforge*"]' in text
    assert 'packages = ["tasks", "schemas"]' not in text
