"""Architecture promises: the core and the store never import Streamlit; the store never imports PyMC."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(package: str) -> list[str]:
    return [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(ROOT / package)]) if m.name != "__main__"]


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


def test_core_never_imports_streamlit() -> None:
    mods = _modules("speclet_core")
    assert "speclet_core.data" in mods
    loaded = _imported_after(mods)
    assert "speclet_core.data" in loaded
    assert not any(m == "streamlit" or m.startswith("streamlit.") for m in loaded)


def test_store_never_imports_streamlit_or_pymc() -> None:
    loaded = _imported_after(["model_store", *_modules("model_store")])
    assert "model_store.ids" in loaded
    assert not any(m.split(".")[0] in {"streamlit", "pymc", "pytensor", "nutpie"} for m in loaded)
