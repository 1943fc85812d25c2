"""``python -m speclet_core serve``: the dashboard and its worker(s) together (``make run``, Docker).

Starts ``streamlit run app.py`` and ``SPECLET_WORKERS`` worker processes, each in its own
process group (so a terminal's Ctrl-C reaches them only through here, once), and stops
them all on SIGTERM / SIGINT within ``STOP_TIMEOUT_S``. If any of them dies on its own,
the others are stopped and ``serve`` exits non-zero, so Docker's restart policy or the
person at the terminal sees it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from speclet_core.errors import SpecletError
from speclet_core.settings import PROJECT_ROOT, Settings

STOP_TIMEOUT_S = 8.0  # SIGTERM → SIGKILL; under Docker's default 10 s grace period
POLL_S = 0.25
HEALTH_TIMEOUT_S = 60.0
EXIT_CHILD_DIED = 1

log = logging.getLogger("speclet.serve")


def streamlit_command(settings: Settings, app: Path) -> list[str]:
    """The ``streamlit run`` command line for a shared server."""
    return [
        # run_app.py (beside app.py) starts `streamlit run app.py` with st.navigation routing from the
        # first request; see its docstring for why plain `streamlit run` breaks deep links here.
        sys.executable, str(app.with_name("run_app.py")),
        "--server.port", str(settings.port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--server.enableXsrfProtection", "true",
        "--server.maxUploadSize", str(settings.upload_limit_mb),
        "--server.fileWatcherType", "none",  # a server does not edit its own code
    ]


def wait_until_healthy(port: int, timeout_s: float = HEALTH_TIMEOUT_S, *, host: str = "127.0.0.1") -> bool:
    """Whether Streamlit's ``/_stcore/health`` answered ``ok`` within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    url = f"http://{host}:{port}/_stcore/health"
    while time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.URLError, OSError, TimeoutError):
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200 and resp.read().strip() == b"ok":
                    return True
        time.sleep(0.25)
    return False


def _new_group_dying_with_parent() -> None:
    """Run in the child before exec: own process group, and SIGTERM when serve dies."""
    os.setsid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class _Children:
    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.procs[name] = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, preexec_fn=_new_group_dying_with_parent,
        )
        log.info("started %s (process %d)", name, self.procs[name].pid)

    def first_dead(self) -> tuple[str, int] | None:
        for name, proc in self.procs.items():
            rc = proc.poll()
            if rc is not None:
                return name, rc
        return None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killing it", name, timeout_s)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers in its group, too
            proc.wait()


def serve(settings: Settings, *, app: Path | None = None) -> int:
    """Run Streamlit and the workers until a signal or until one of them dies; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [serve] %(message)s")
    app = app or PROJECT_ROOT / "app.py"
    if not app.is_file():
        raise SpecletError(f"{app}: the dashboard's entry point is missing; run serve from a complete speclet checkout")
    from speclet_core.data.demo import ensure_demo_screen

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_demo_screen(settings.data_dir)

    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    env = {**os.environ, "SPECLET_DATA_DIR": str(settings.data_dir), "SPECLET_PORT": str(settings.port)}
    children = _Children()
    code = 0
    try:
        children.start("streamlit", streamlit_command(settings, app), env)
        n_workers = 0 if settings.read_only else settings.workers
        for i in range(n_workers):
            children.start(f"worker {i + 1}", [sys.executable, "-m", "speclet_core", "worker",
                                               "--concurrency", str(max(1, settings.max_concurrent_fits))], env)
        if not settings.read_only:
            _first_fit(settings)
        log.info("speclet is at http://localhost:%d (%d worker%s); stop with Ctrl-C", settings.port, n_workers,
                 "" if n_workers == 1 else "s")
        while not stop.wait(POLL_S):
            dead = children.first_dead()
            if dead is not None:
                log.error("%s exited unexpectedly (status %d): stopping everything", *dead)
                print(f"error: {dead[0]} exited unexpectedly (status {dead[1]}); see the output above", file=sys.stderr)
                code = EXIT_CHILD_DIED
                break
        if received:
            log.info("received %s: stopping", signal.Signals(received[0]).name)
    finally:
        children.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return code


def _first_fit(settings: Settings) -> None:
    """Queue the demo fit on an empty installation; a problem here must not stop the dashboard."""
    from speclet_core.queue.bootstrap import ensure_first_fit

    try:
        job = ensure_first_fit(settings)
    except SpecletError as exc:
        log.warning("could not queue the first demo fit: %s", exc)
        return
    except ImportError as exc:  # the fitting engine is missing from this checkout
        log.warning("could not queue the first demo fit (%s)", exc)
        return
    if job is not None:
        log.info("queued the first demo fit: job %s (%s)", job.job_id[:12], job.request.model)
