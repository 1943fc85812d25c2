"""Architecture promises, checked on the code itself (every import, lazy ones inside functions too).

- ``speclet_core`` and ``model_store`` never import Streamlit; ``model_store`` never imports PyMC.
- ``model_store`` takes nothing from ``speclet_core`` but ``speclet_core.errors``.
- The core's subpackages are layers: a module imports only from its own layer or the ones below it
  (data → depmap → models → diagnostics → fitting → queue → analysis → cli); the loose modules at the
  top (errors, labels, records, settings, charts) import no subpackage.
- No module imports ``pages`` but ``app.py`` and the pages themselves; no import cycles anywhere.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("speclet_core", "model_store", "pages")
# The core's layers, bottom first; the loose modules at the top of the package are layer 0.
LAYERS = ("data", "depmap", "models", "diagnostics", "fitting", "queue", "analysis", "cli")
LOOSE_MODULES = {"__init__", "__main__", "errors", "labels", "records", "settings", "charts"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    files["app"] = ROOT / "app.py"
    return files


def _imports(path: Path, module: str) -> set[str]:
    """Every module named by an import statement in the file (absolute and relative, at any depth)."""
    out: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    sources = _sources()
    return {m: {i for i in _imports(p, m) if i in sources and i != m} for m, p in sources.items()}


@pytest.fixture(scope="module")
def all_imports() -> dict[str, set[str]]:
    return {m: _imports(p, m) for m, p in _sources().items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    if module == "speclet_core.__main__":  # the entry point sits above everything
        return len(LAYERS) + 1
    if len(parts) == 1 or parts[1] in LOOSE_MODULES:
        return 0
    return LAYERS.index(parts[1]) + 1


def test_the_core_is_laid_out_in_layers() -> None:
    core = ROOT / "speclet_core"
    packages = sorted(p.name for p in core.iterdir() if (p / "__init__.py").is_file())
    loose = sorted(p.stem for p in core.glob("*.py"))
    assert packages == sorted(LAYERS), "a subpackage was added or removed: give it its place in LAYERS"
    assert set(loose) <= LOOSE_MODULES, f"loose modules at the top of speclet_core: {sorted(set(loose) - LOOSE_MODULES)}"


def test_no_subpackage_imports_one_above_it(graph: dict[str, set[str]]) -> None:
    climbs = [
        f"{m} (layer {_layer(m)}) imports {i} (layer {_layer(i)})"
        for m, targets in graph.items() if m.startswith("speclet_core")
        for i in targets if i.startswith("speclet_core") and _layer(i) > _layer(m)
    ]
    assert not climbs, "\n".join(climbs)


def test_model_store_takes_only_errors_from_the_core(graph: dict[str, set[str]]) -> None:
    taken = {(m, i) for m, t in graph.items() if m.startswith("model_store") for i in t
             if i.startswith("speclet_core") and i != "speclet_core.errors" and i != "speclet_core"}
    assert not taken, sorted(taken)


def test_streamlit_and_pages_stay_in_the_pages(all_imports: dict[str, set[str]]) -> None:
    bad = [(m, i) for m, imps in all_imports.items() if not (m == "app" or m.startswith("pages"))
           for i in imps if i.split(".")[0] in {"streamlit", "pages"}]
    assert not bad, bad
    assert any(i.startswith("streamlit") for i in all_imports["app"]), "the check reads imports (app.py uses streamlit)"


def test_model_store_never_names_pymc(all_imports: dict[str, set[str]]) -> None:
    bad = [(m, i) for m, imps in all_imports.items() if m.startswith("model_store")
           for i in imps if i.split(".")[0] in {"pymc", "pytensor", "nutpie", "streamlit"}]
    assert not bad, bad


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # a package's __init__ importing its own modules is not a cycle a reader follows
    edges = {m: {i for i in t if not m.startswith(i + ".")} for m, t in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" → ".join(c) for c in cycles)


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_importing_every_core_and_store_module_loads_no_streamlit() -> None:
    modules = sorted(m for m in _sources() if m.startswith(("speclet_core", "model_store")) and not m.endswith("__main__"))
    loaded = _imported_after(modules)
    assert "speclet_core.data.screen" in loaded and "model_store.store" in loaded
    assert not any(m == "streamlit" or m.startswith("streamlit.") for m in loaded)


def test_the_store_runs_without_pymc() -> None:
    loaded = _imported_after(sorted(m for m in _sources() if m.startswith("model_store")))
    assert "model_store.ids" in loaded
    assert not any(m.split(".")[0] in {"streamlit", "pymc", "pytensor", "nutpie"} for m in loaded)
