"""What every browser test shares: Debian's chromium, a served app on a free port, and where screenshots go.

Import it from a test module in this folder (``from serving import …``); ``needs_chromium`` is the module mark that
skips with a reason when chromium is missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Debian's chromium is not installed (apt-get install chromium)")
HEALTH_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(data_dir: Path, *, how: str = "serve", log_name: str = "serve.log") -> Iterator[str]:
    """The app on ``data_dir``, answering its health check; yields its URL and stops it afterwards.

    ``how``: ``serve`` (``python -m speclet_core serve``: worker and demo fit included) or ``streamlit``
    (``run_app.py`` alone: the pages over what is stored, no worker).
    """
    port = free_port()
    env = {**os.environ, "SPECLET_DATA_DIR": str(data_dir), "SPECLET_PORT": str(port)}
    if how == "serve":
        command = [sys.executable, "-m", "speclet_core", "serve"]
    else:
        command = [sys.executable, "run_app.py", "--server.headless", "true", "--server.port", str(port),
                   "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    log_path = data_dir / log_name
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_healthy(url: str, log_path: Path) -> None:
    deadline = time.time() + HEALTH_TIMEOUT_S
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer /_stcore/health within {HEALTH_TIMEOUT_S} s; see {log_path}")


def launch(pw: Any) -> Any:
    """Headless Debian chromium through Playwright (never Playwright's own browser download)."""
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
