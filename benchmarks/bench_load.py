"""Load benchmark (issue #10): simulated sessions browse stored fits on a served app while a fit runs.

The app is started as in production (``python -m speclet_core serve``: Streamlit through
run_app.py plus one worker) on 127.0.0.1 only, with a fresh data folder holding stored fits.
Each simulated session is a real Streamlit websocket client (``/_stcore/stream``, protobuf
``BackMsg`` / ``ForwardMsg``, exactly what the browser sends when someone clicks through the
sidebar): it asks for a page (``diagnostics``, ``forest``, ``heatmap``, ``rankings`` with
``?fit=FIT_ID``) and times the script run from the request to ``script_finished``, counting
every element the server sent. A "page response" is therefore the server's full answer
(everything the browser needs to draw the page), not Chromium's drawing time.

Scenarios, in order: a cold pass (empty caches), ``idle-1`` (one session, no fit running),
``idle-N`` (N sessions, no fit), ``fit-N`` (N sessions while a NUTS fit submitted with
``python -m speclet_core fit`` runs in the worker). Sessions pause a random "reading time"
between pages (``--think``); every loop is bounded (rounds × pages) and stops by itself.

    .venv/bin/python benchmarks/bench_load.py [--sessions 20 --rounds 3 --think 1 3 --json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGES = ("diagnostics", "forest", "heatmap", "rankings")
PAGE_TIMEOUT_S = 120.0
RERUN_EARLY = 2  # ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN: another run follows
ALERT_ERROR = 1  # Alert.Format.ERROR


# --------------------------------------------------------------------------- one page load


@dataclass(frozen=True)
class PageLoad:
    """One page asked for by one session, and what came back."""

    scenario: str
    session: int
    page: str
    fit_id: str
    seconds: float
    bytes: int
    elements: int
    charts: int
    problem: str | None = None  # exception shown, no chart, timeout, lost connection…
    error_alerts: tuple[str, ...] = ()  # st.error boxes the page shows (content, e.g. a verdict)


class StreamlitSession:
    """A websocket session speaking Streamlit's browser protocol (one per simulated person)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ws: Any = None

    async def __aenter__(self) -> StreamlitSession:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit"],  # type: ignore[list-item]
            origin=f"http://127.0.0.1:{self.port}", max_size=None, open_timeout=PAGE_TIMEOUT_S,  # type: ignore[arg-type]
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()

    async def load(self, scenario: str, session: int, page: str, fit_id: str) -> PageLoad:
        """Ask for ``/<page>?fit=<fit_id>`` as a sidebar click does; wait for the script run to finish."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = f"fit={fit_id}"
        msg.rerun_script.page_name = page
        n_bytes = elements = charts = 0
        alerts: list[str] = []
        problem: str | None = None
        t0 = time.perf_counter()
        try:
            await self.ws.send(msg.SerializeToString())
            while True:
                left = PAGE_TIMEOUT_S - (time.perf_counter() - t0)
                raw = await asyncio.wait_for(self.ws.recv(), timeout=max(left, 0.001))
                n_bytes += len(raw)
                fwd = ForwardMsg()
                fwd.ParseFromString(raw)
                kind = fwd.WhichOneof("type")
                if kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                    el = fwd.delta.new_element
                    elements += 1
                    el_kind = el.WhichOneof("type")
                    if el_kind == "vega_lite_chart":
                        charts += 1
                    elif el_kind == "exception":
                        problem = problem or f"exception shown: {el.exception.type} {el.exception.message[:160]}"
                    elif el_kind == "alert" and el.alert.format == ALERT_ERROR:
                        alerts.append(el.alert.body.split("\n")[0][:120])
                elif kind == "page_not_found":
                    problem = problem or f"page not found: {fwd.page_not_found.page_name}"
                elif kind == "script_finished" and fwd.script_finished != RERUN_EARLY:
                    break
        except TimeoutError:
            problem = f"no answer within {PAGE_TIMEOUT_S:.0f} s"
        except Exception as exc:  # any lost connection is a failed page load, reported
            problem = f"connection: {type(exc).__name__}: {exc}"[:200]
        seconds = time.perf_counter() - t0
        if problem is None and charts == 0:
            problem = "no chart on the page"
        return PageLoad(scenario, session, page, fit_id, seconds, n_bytes, elements, charts, problem, tuple(alerts))


async def _browse_one(port: int, scenario: str, session: int, fit_ids: Sequence[str], rounds: int,
                      think: tuple[float, float], rng: random.Random, start_delay: float) -> list[PageLoad]:
    await asyncio.sleep(start_delay)  # people do not all click at the same millisecond
    out: list[PageLoad] = []
    try:
        async with StreamlitSession(port) as s:
            for r in range(rounds):
                pages = list(PAGES)
                rng.shuffle(pages)
                fit_id = fit_ids[(session + r) % len(fit_ids)]
                for page in pages:
                    out.append(await s.load(scenario, session, page, fit_id))
                    if think[1] > 0:
                        await asyncio.sleep(rng.uniform(*think))
    except Exception as exc:  # could not even connect: one failed load, reported
        out.append(PageLoad(scenario, session, "(connect)", "", 0.0, 0, 0, 0, f"connect: {type(exc).__name__}: {exc}"[:200]))
    return out


def browse(port: int, scenario: str, fit_ids: Sequence[str], *, sessions: int, rounds: int,
           think: tuple[float, float] = (1.0, 3.0), seed: int = 0) -> list[PageLoad]:
    """``sessions`` concurrent sessions, each visiting every page ``rounds`` times (shuffled order)."""

    async def _all() -> list[list[PageLoad]]:
        tasks = [
            _browse_one(port, scenario, i, fit_ids, rounds, think, random.Random(seed * 1000 + i),
                        random.Random(seed * 1000 + i).uniform(0, think[1]) if sessions > 1 else 0.0)
            for i in range(sessions)
        ]
        return await asyncio.gather(*tasks)

    return [load for per_session in asyncio.run(_all()) for load in per_session]


# --------------------------------------------------------------------------- numbers


@dataclass
class Scenario:
    name: str
    sessions: int
    loads: list[PageLoad] = field(repr=False)
    wall_s: float
    cpu_busy: float  # fraction of all CPUs busy during the scenario (whole machine)
    loadavg: tuple[float, float]  # 1-minute load average before, after
    fit: dict[str, Any] | None = None  # the background fit's phase / draws at start and end

    def stats(self) -> dict[str, Any]:
        secs = np.array([x.seconds for x in self.loads if x.problem is None and x.page != "(connect)"])
        per_page = {
            p: round(float(np.median([x.seconds for x in self.loads if x.page == p and x.problem is None] or [np.nan])), 3)
            for p in PAGES
        }
        return {
            "scenario": self.name,
            "sessions": self.sessions,
            "page_loads": len(self.loads),
            "problems": sum(x.problem is not None for x in self.loads),
            "median_s": round(float(np.median(secs)), 3) if secs.size else None,
            "p95_s": round(float(np.percentile(secs, 95)), 3) if secs.size else None,
            "max_s": round(float(secs.max()), 3) if secs.size else None,
            "per_page_median_s": per_page,
            "pages_per_s": round(len(self.loads) / self.wall_s, 2) if self.wall_s else None,
            "mean_kib": round(float(np.mean([x.bytes for x in self.loads])) / 1024, 1) if self.loads else None,
            "wall_s": round(self.wall_s, 1),
            "cpu_busy": round(self.cpu_busy, 2),
            "loadavg_before_after": [round(v, 2) for v in self.loadavg],
            "fit": self.fit,
        }


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def run_scenario(name: str, port: int, fit_ids: Sequence[str], *, sessions: int, rounds: int,
                 think: tuple[float, float], seed: int, fit_probe: Any = None) -> Scenario:
    before = _cpu_times()
    load_before = os.getloadavg()[0]
    fit_start = fit_probe() if fit_probe else None
    t0 = time.perf_counter()
    loads = browse(port, name, fit_ids, sessions=sessions, rounds=rounds, think=think, seed=seed)
    wall = time.perf_counter() - t0
    fit_end = fit_probe() if fit_probe else None
    after = _cpu_times()
    busy = (after[0] - before[0]) / max(after[1] - before[1], 1)
    fit = {"start": fit_start, "end": fit_end} if fit_probe else None
    return Scenario(name, sessions, loads, wall, busy, (load_before, os.getloadavg()[0]), fit)


# --------------------------------------------------------------------------- the served app and its data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPECLET_")}
    env.update({
        "SPECLET_DATA_DIR": str(data_dir), "SPECLET_PORT": str(port), "SPECLET_WORKERS": "1",
        "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",  # loopback only
        "PYTHONPATH": str(ROOT),
    })
    return env


@contextlib.contextmanager
def served_app(data_dir: Path, port: int, *, log_path: Path | None = None) -> Iterator[subprocess.Popen]:
    """``python -m speclet_core serve`` on 127.0.0.1:port until the block ends (SIGTERM, then SIGKILL)."""
    log_path = log_path or data_dir / "serve-load.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "speclet_core", "serve"], cwd=ROOT, env=app_env(data_dir, port),
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"serve exited with {proc.returncode}; see {log_path}")
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not answer /_stcore/health within 120 s; see {log_path}")
                time.sleep(0.5)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def fitting_available() -> bool:
    return find_spec("speclet_core.fitting.engine") is not None


def store_fits(data_dir: Path, n_fits: int, *, real: bool, draws: int = 500,
               demo_sized: bool = True) -> tuple[list[str], str]:
    """Stored fits to browse: real NUTS fits of the demo screen (``gene_lineage``, different seeds), or, when
    ``real`` is false, synthetic posteriors of the demo screen's size (30 genes × 120 cell lines, 2 × ``draws``;
    ``demo_sized=False``: the store tests' 7 genes × 8 cell lines, quick to store)."""
    from model_store import ModelStore
    from speclet_core.data.demo import ensure_demo_screen
    from speclet_core.settings import Settings

    settings = Settings(data_dir=data_dir)
    store = ModelStore(settings.fits_dir)
    screen_path = ensure_demo_screen(data_dir)
    ids: list[str] = []
    if real:
        from speclet_core.fitting.engine import run_fit
        from speclet_core.fitting.request import prepare_request
        from speclet_core.records import SamplerSettings

        for seed in range(1, n_fits + 1):
            request = prepare_request(screen_path, "gene_lineage", sampler=SamplerSettings(chains=2, tune=draws,
                                      draws=draws), seed=seed, settings=settings)
            result = run_fit(request, settings=settings)
            store.put(request.fit_id, result.idata, request=request.model_dump(mode="json"),
                      roles=result.spec.roles(), diagnostics=result.diagnostics, timings=result.timings,
                      provenance=result.provenance)
            ids.append(request.fit_id)
        return ids, "real NUTS fits (gene_lineage, demo screen, 2 chains)"

    sys.path.insert(0, str(ROOT / "tests" / "model_store"))
    import pandas as pd
    from store_helpers import DIAGNOSTICS, ROLES, TIMINGS, make_idata, make_request

    demo = pd.read_parquet(screen_path) if screen_path.suffix == ".parquet" else pd.read_csv(screen_path)
    genes = sorted(demo["hugo_symbol"].unique()) if demo_sized else None
    cells = sorted(demo["depmap_id"].unique()) if demo_sized else None
    for seed in range(1, n_fits + 1):
        request = make_request(seed=100 + seed)
        idata = make_idata(seed, draws=draws, genes=genes, cell_lines=cells)
        store.put(request.fit_id, idata, request=request.model_dump(mode="json"), roles=ROLES,
                  diagnostics=DIAGNOSTICS, timings=TIMINGS)
        ids.append(request.fit_id)
    shape = idata.posterior["gene_cell_line_effect"].shape
    return ids, f"synthetic posteriors ({shape[2]} genes × {shape[3]} cell lines, 2 × {draws} draws)"


# --------------------------------------------------------------------------- the fit that keeps the worker busy


class BackgroundFit:
    """A NUTS fit submitted through ``python -m speclet_core fit`` and run by the served app's worker."""

    def __init__(self, data_dir: Path, port: int, *, tune: int, draws: int, seed: int = 99,
                 via_cli: bool = True) -> None:
        from speclet_core.data.demo import ensure_demo_screen

        self.data_dir = data_dir
        if not via_cli:  # the same request the command builds, without starting a Python that imports PyMC
            from speclet_core.fitting.request import prepare_request
            from speclet_core.records import SamplerSettings
            from speclet_core.settings import Settings

            settings = Settings(data_dir=data_dir)
            request = prepare_request(ensure_demo_screen(data_dir), "gene_lineage", seed=seed, settings=settings,
                                      sampler=SamplerSettings(chains=2, tune=tune, draws=draws))
            with self._queue() as q:
                self.job_id = q.submit(request, "bench_load")[0].job_id
            return
        cmd = [sys.executable, "-m", "speclet_core", "fit", "--data", str(ensure_demo_screen(data_dir)),
               "--model", "gene_lineage", "--chains", "2", "--tune", str(tune), "--draws", str(draws),
               "--seed", str(seed)]
        out = subprocess.run(cmd, cwd=ROOT, env=app_env(data_dir, port), capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd[1:])}` failed ({out.returncode}): {out.stderr.strip()[-500:]}")
        self.job_id = out.stdout.strip().splitlines()[-1]

    def _queue(self) -> Any:
        from speclet_core.queue.jobs import JobQueue
        from speclet_core.settings import Settings

        return JobQueue.from_settings(Settings(data_dir=self.data_dir))

    def probe(self) -> dict[str, Any]:
        with self._queue() as q:
            job = q.get(self.job_id)
        return {"status": str(job.status), "phase": str(job.phase) if job.phase else None,
                "draws_done": job.draws_done, "draws_total": job.draws_total, "error": job.error}

    def wait_until(self, phases: Sequence[str], timeout_s: float = 300) -> dict[str, Any]:
        """Wait until the fit runs in one of ``phases`` (e.g. tuning/sampling, after compiling)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.probe()
            if state["status"] == "running" and state["phase"] in phases:
                return state
            if state["status"] not in ("queued", "running"):
                raise RuntimeError(f"the background fit ended before the measurement: {state}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the background fit did not reach {phases} within {timeout_s:.0f} s: {state}")
            time.sleep(0.5)

    def cancel(self) -> None:
        from speclet_core.queue.access import LOCAL_ADMIN

        with contextlib.suppress(Exception), self._queue() as q:
            q.cancel(self.job_id, by=LOCAL_ADMIN)


STAND_IN_SCRIPT = """
import sys
from pathlib import Path

import numpy as np
import pymc as pm

from speclet_core.data.screen import load_screen

screen, marker, tune, draws = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
df = load_screen(screen).data
gene, genes = df["hugo_symbol"].factorize()
lineage, lineages = df["lineage"].factorize()
with pm.Model():
    mu = pm.Normal("mu", 0, 1)
    sigma_gene = pm.HalfNormal("sigma_gene", 1)
    gene_effect = pm.Normal("gene_effect", mu, sigma_gene, shape=len(genes))
    sigma_gl = pm.HalfNormal("sigma_gl", 0.5)
    z = pm.Normal("z", 0, 1, shape=(len(genes), len(lineages)))
    sigma = pm.HalfNormal("sigma", 1)
    pm.Normal("lfc", gene_effect[gene] + sigma_gl * z[gene, lineage], sigma, observed=df["lfc"].to_numpy())

    def started(trace, draw):
        if not marker.exists():
            marker.write_text("sampling")

    pm.sample(draws=draws, tune=tune, chains=2, cores=2, progressbar=False, callback=started, random_seed=1)
"""


class StandInFit:
    """Used only while ``speclet_core.fitting.engine`` does not exist: the same kind of work as the worker's fit (PyMC
    NUTS, 2 chains on 2 processes, a gene + gene × lineage model of the demo screen) in a child process."""

    def __init__(self, data_dir: Path, port: int, *, tune: int, draws: int, seed: int = 99) -> None:
        from speclet_core.data.demo import ensure_demo_screen

        self.marker = data_dir / "stand-in-sampling"
        self.log = open(data_dir / "stand-in-fit.log", "w")  # closed in cancel()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STAND_IN_SCRIPT, str(ensure_demo_screen(data_dir)), str(self.marker), str(tune),
             str(draws)], cwd=ROOT, env=app_env(data_dir, port), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: PyMC's chain processes are stopped with it
        )
        self.job_id = f"stand-in pid {self.proc.pid}"

    def probe(self) -> dict[str, Any]:
        code = self.proc.poll()
        return {"status": "running" if code is None else f"exited {code}",
                "phase": "sampling" if self.marker.exists() else "compiling"}

    def wait_until(self, phases: Sequence[str], timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.probe()
            if state["status"] != "running":
                raise RuntimeError(f"the stand-in fit ended before the measurement: {state}")
            if state["phase"] in phases:
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stand-in fit did not reach {phases} within {timeout_s:.0f} s")
            time.sleep(0.5)

    def cancel(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)  # the group: the sampler and its chain processes
            try:
                self.proc.wait(timeout=15)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # chain processes that outlived their parent
        self.log.close()


def start_background_fit(data_dir: Path, port: int, *, tune: int, draws: int, real: bool | None = None,
                         via_cli: bool = True) -> BackgroundFit | StandInFit:
    """The real fit through the queue (default when ``speclet_core.fitting.engine`` exists), else the stand-in."""
    if fitting_available() if real is None else real:
        return BackgroundFit(data_dir, port, tune=tune, draws=draws, via_cli=via_cli)
    return StandInFit(data_dir, port, tune=tune, draws=draws)


# --------------------------------------------------------------------------- report


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| scenario | sessions | page loads | problems | median s | p95 s | max s | pages/s | CPU busy |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['scenario']} | {r['sessions']} | {r['page_loads']} | {r['problems']} | {r['median_s']} | "
                     f"{r['p95_s']} | {r['max_s']} | {r['pages_per_s']} | {r['cpu_busy']:.0%} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3, help="times each session visits every page")
    p.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                   help="seconds a session pauses between pages (uniform)")
    p.add_argument("--fits", type=int, default=2, help="stored fits to browse")
    p.add_argument("--synthetic", action="store_true", help="synthetic stored posteriors instead of real fits")
    p.add_argument("--stand-in", action="store_true", help="a stand-in NUTS process instead of a fit in the worker")
    p.add_argument("--fit-draws", type=int, default=20000, help="tune and draws of the background fit (it is "
                   "cancelled after the measurement)")
    p.add_argument("--json", type=Path, help="write every number (and every page load) here")
    p.add_argument("--keep", action="store_true", help="keep the data folder")
    args = p.parse_args()
    real = fitting_available()  # decided once: the file may appear while this runs
    if not real:
        print("speclet_core.fitting.engine is missing: the stored fits are synthetic and the background fit is a stand-in "
              "(PyMC NUTS in a child process, not the worker)")

    data_dir = Path(tempfile.mkdtemp(prefix="speclet-bench-load-"))
    port = free_port()
    t0 = time.perf_counter()
    fit_ids, fits_text = store_fits(data_dir, args.fits, real=real and not args.synthetic)
    print(f"stored {len(fit_ids)} fits to browse ({fits_text}) in {time.perf_counter() - t0:.0f} s")
    think = (args.think[0], args.think[1])
    scenarios: list[Scenario] = []
    with served_app(data_dir, port):
        print(f"app on 127.0.0.1:{port}; data in {data_dir}")
        cold = run_scenario("cold (first visit, empty caches)", port, fit_ids, sessions=1, rounds=1,
                            think=(0.0, 0.0), seed=1)
        scenarios.append(cold)
        browse(port, "warm-up", fit_ids, sessions=1, rounds=len(fit_ids), think=(0.0, 0.0), seed=2)
        scenarios.append(run_scenario("idle-1", port, fit_ids, sessions=1, rounds=args.rounds * 2, think=think, seed=3))
        scenarios.append(run_scenario(f"idle-{args.sessions}", port, fit_ids, sessions=args.sessions,
                                      rounds=args.rounds, think=think, seed=4))
        fit = start_background_fit(data_dir, port, tune=args.fit_draws, draws=args.fit_draws,
                                   real=real and not args.stand_in)
        try:
            state = fit.wait_until(("tuning", "sampling"))
            print(f"background fit ({fit.job_id[:24]}) running: {state}")
            scenarios.append(run_scenario(f"fit-{args.sessions}", port, fit_ids, sessions=args.sessions,
                                          rounds=args.rounds, think=think, seed=4, fit_probe=fit.probe))
            scenarios.append(run_scenario("fit-1", port, fit_ids, sessions=1, rounds=args.rounds * 2, think=think,
                                          seed=3, fit_probe=fit.probe))
        except RuntimeError as exc:  # the fit failed: still report what was measured
            print(f"background fit: {str(exc)[:400]}")
        finally:
            fit.cancel()
    rows = [s.stats() for s in scenarios]
    print(markdown_table(rows))
    by = {r["scenario"]: r for r in rows}
    idle1, idle_n, fit_n = by["idle-1"], by[f"idle-{args.sessions}"], by.get(f"fit-{args.sessions}")
    if fit_n:
        print(f"median fit-{args.sessions} / idle-1: {fit_n['median_s'] / idle1['median_s']:.2f}×; "
              f"/ idle-{args.sessions}: {fit_n['median_s'] / idle_n['median_s']:.2f}×")
    for r in rows:
        print(f"{r['scenario']}: per-page medians {r['per_page_median_s']}, {r['mean_kib']} KiB/page, "
              f"load avg {r['loadavg_before_after']}, fit {r['fit']}")
    problems = [x for s in scenarios for x in s.loads if x.problem]
    for x in problems[:20]:
        print(f"problem: {x.scenario} session {x.session} {x.page}: {x.problem}")
    log = data_dir / "serve-load.log"
    if problems and log.exists():  # the browser sees a redacted message; the traceback is in the server's log
        tracebacks = log.read_text(errors="replace").split("Traceback")[1:]
        for tb in tracebacks[:2]:
            print("server log: Traceback" + tb[-1500:])
    if args.json:
        args.json.write_text(json.dumps({
            "fits": fits_text, "background_fit": type(fit).__name__, "think_s": think, "rounds": args.rounds, "summary": rows,
            "loads": [asdict(x) for s in scenarios for x in s.loads],
        }, indent=1))
    if not args.keep:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)
    return 1 if problems or not fit_n else 0


if __name__ == "__main__":
    sys.exit(main())
