"""``python -m speclet_core serve``: the dashboard and its worker(s) together (``make run``, Docker).

Starts ``streamlit run app.py`` and ``SPECLET_WORKERS`` worker processes, each in its own
process group (so a terminal's Ctrl-C reaches them only through here, once), and stops
them all on SIGTERM / SIGINT within ``STOP_TIMEOUT_S``. A worker that dies on its own is
started again after a back-off (``restart_delay``: 1 s doubling to 60 s, from 1 s again once
a worker has lived ``STABLE_S``) while the dashboard keeps answering; the fit it held goes
back to the queue at the new worker's first heartbeat (its process is gone on this host).
If Streamlit dies, everything stops and ``serve`` exits non-zero, so Docker's restart policy
or the person at the terminal sees it. A damaged queue file is moved aside at start.
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
from dataclasses import dataclass
from pathlib import Path

from speclet_core.errors import SpecletError
from speclet_core.settings import PROJECT_ROOT, Settings

STOP_TIMEOUT_S = 8.0  # SIGTERM → SIGKILL; under Docker's default 10 s grace period
POLL_S = 0.25
HEALTH_TIMEOUT_S = 60.0
EXIT_CHILD_DIED = 1
RESTART_FIRST_S = 1.0  # a dead worker's first restart waits this long …
RESTART_MAX_S = 60.0  # … doubling on each quick death up to this
STABLE_S = 60.0  # a worker that lived this long before dying starts the back-off afresh
STREAMLIT = "streamlit"

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


def restart_delay(quick_deaths: int) -> float:
    """Seconds to wait before starting a worker again after its ``quick_deaths``-th death in a row (1, 2, 4 … 60)."""
    return min(RESTART_MAX_S, RESTART_FIRST_S * 2.0 ** max(0, quick_deaths - 1))


@dataclass
class _Child:
    cmd: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0  # monotonic
    quick_deaths: int = 0  # deaths in a row, each within STABLE_S of its start
    restart_at: float | None = None  # monotonic time of the next start while it is dead


class _Children:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.children: dict[str, _Child] = {}

    @property
    def procs(self) -> dict[str, subprocess.Popen[bytes]]:
        return {name: c.proc for name, c in self.children.items() if c.proc is not None}

    def start(self, name: str, cmd: list[str]) -> None:
        child = self.children.setdefault(name, _Child(cmd=cmd))
        child.proc = subprocess.Popen(
            cmd, cwd=PROJECT_ROOT, env=self.env, stdin=subprocess.DEVNULL, preexec_fn=_new_group_dying_with_parent,
        )
        child.started, child.restart_at = time.monotonic(), None
        log.info("started %s (process %d)", name, child.proc.pid)

    def supervise(self) -> tuple[str, int] | None:
        """Schedule and perform worker restarts; (name, status) if Streamlit died (serve must stop)."""
        now = time.monotonic()
        for name, child in self.children.items():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self.start(name, child.cmd)
                continue
            rc = child.proc.poll() if child.proc is not None else None
            if rc is None:
                continue
            if name == STREAMLIT:
                return name, rc
            assert child.proc is not None
            lived = now - child.started
            child.quick_deaths = 1 if lived >= STABLE_S else child.quick_deaths + 1
            delay = restart_delay(child.quick_deaths)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.proc.pid, signal.SIGKILL)  # its fits die with it anyway (PDEATHSIG)
            log.error("%s (process %d) exited unexpectedly (status %d) after %.0f s: starting it again in %.0f s "
                      "(its fit goes back to the queue); the dashboard keeps running", name, child.proc.pid, rc,
                      lived, delay)
            child.proc, child.restart_at = None, now + delay
        return None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        for c in self.children.values():
            c.restart_at = None
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
    """Run Streamlit and the workers (restarting dead workers) until a signal or until Streamlit dies.

    Returns the exit status: 0 after a signal, ``EXIT_CHILD_DIED`` when Streamlit died.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [serve] %(message)s")
    app = app or PROJECT_ROOT / "app.py"
    if not app.is_file():
        raise SpecletError(f"{app}: the dashboard's entry point is missing; run serve from a complete speclet checkout")
    from speclet_core.data.demo import ensure_demo_screen

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_demo_screen(settings.data_dir)
    _heal_queue(settings)

    stop = threading.Event()
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    memory_mb = settings.fit_memory_limit_mb()  # derived once here for all workers (SPECLET_WORKERS × concurrency)
    env = {**os.environ, "SPECLET_DATA_DIR": str(settings.data_dir), "SPECLET_PORT": str(settings.port),
           "SPECLET_FIT_MEMORY_MB": str(memory_mb)}
    children = _Children(env)
    code = 0
    try:
        n_workers = 0 if settings.read_only else settings.workers
        for i in range(n_workers):
            children.start(f"worker {i + 1}", [sys.executable, "-m", "speclet_core", "worker",
                                               "--concurrency", str(max(1, settings.max_concurrent_fits))])
        if not settings.read_only:  # before the dashboard answers: a first visit already sees the demo fit queued
            _first_fit(settings)
        children.start(STREAMLIT, streamlit_command(settings, app))
        log.info("speclet is at http://localhost:%d (%d worker%s, each fit limited to %s); stop with Ctrl-C",
                 settings.port, n_workers, "" if n_workers == 1 else "s",
                 f"{memory_mb} MiB" if memory_mb else "no memory limit")
        while not stop.wait(POLL_S):
            dead = children.supervise()
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


def _heal_queue(settings: Settings) -> None:
    """Before anything opens it: move a damaged queue file aside (kept for inspection) so serve starts clean."""
    from speclet_core.queue.disk import damaged_message, move_aside_if_damaged, queue_damage

    if settings.read_only:  # a read-only server writes nothing; the pages say the queue is damaged
        reason = queue_damage(settings.queue_dir)
        if reason is not None:
            log.warning("%s", damaged_message(settings.queue_dir, reason))
        return
    try:
        moved = move_aside_if_damaged(settings.queue_dir)
    except SpecletError as exc:
        log.error("%s", exc)
        return
    if moved is not None:
        log.warning("the job queue file was damaged (%s): moved it aside to %s and started an empty queue; stored "
                    "fits are kept, queued and running fits must be submitted again", moved[1], moved[0])


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
