"""Commands ``fit`` (submit through the queue, optionally wait), ``worker`` and ``jobs``.

``fit`` prints the fit id as the last line of stdout, also with ``--wait`` (progress goes
to stderr, so ``FIT=$(python -m speclet_core fit … --wait | tail -1)`` works).

The CLI is the local administrator: whoever can run it can read and write ``SPECLET_DATA_DIR``
anyway. It submits and cancels as ``cli:<login name>`` with administrator rights (it may cancel
anyone's fit and is exempt from ``SPECLET_MAX_JOBS_PER_USER``, not from ``SPECLET_MAX_JOBS``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from speclet_core.cli.args import add_model_options, model_options, positive_int
from speclet_core.errors import JobError, SpecletError
from speclet_core.queue.access import local_admin
from speclet_core.queue.records import JobRecord, JobStatus
from speclet_core.settings import Settings

if TYPE_CHECKING:
    from speclet_core.queue.jobs import JobQueue

EXIT_FIT_FAILED = 1
WAIT_POLL_S = 0.5
BAR_WIDTH = 30


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 0 and 4294967295, got {value}")
    return value


def register_cli(
    subparsers: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]
) -> None:
    """Add ``fit``, ``worker`` and ``jobs`` to the ``python -m speclet_core`` parser."""
    from speclet_core.records import SamplerSettings

    defaults = SamplerSettings()
    p = subparsers.add_parser("fit", help="submit a fit through the job queue (the last line printed is the fit id)")
    p.add_argument("--data", required=True, help="screen table (CSV, TSV or Parquet)")
    p.add_argument("--model", required=True, help="model name (see the Models page)")
    p.add_argument("--genes", default="all", help="comma-separated gene symbols, or all (default)")
    p.add_argument("--lineages", default="all", help="comma-separated lineages, or all (default)")
    p.add_argument("--cell-lines", default="all", help="comma-separated DepMap ids, or all (default)")
    p.add_argument("--method", choices=["nuts", "quick"], default=defaults.method.value,
                   help="nuts: full MCMC (default); quick: approximate first look")
    p.add_argument("--chains", type=positive_int, default=defaults.chains)
    p.add_argument("--tune", type=positive_int, default=defaults.tune)
    p.add_argument("--draws", type=positive_int, default=defaults.draws)
    p.add_argument("--seed", type=_seed, default=1)
    p.add_argument("--label", default=None, help="shown in the job list (default: cli:<your user name>)")
    p.add_argument("--wait", action="store_true",
                   help="show progress and exit 0 when the fit is stored, non-zero if it failed")
    add_model_options(p)
    commands["fit"] = _cmd_fit

    p = subparsers.add_parser("worker", help="run fits from the queue until stopped (Ctrl-C / SIGTERM)")
    p.add_argument("--concurrency", type=positive_int, default=None,
                   help="fits run at the same time (default SPECLET_MAX_CONCURRENT_FITS)")
    commands["worker"] = _cmd_worker

    p = subparsers.add_parser("jobs", help="list jobs, or cancel one")
    jsub = p.add_subparsers(dest="jobs_command", required=True)
    pl = jsub.add_parser("list", help="jobs, newest first")
    pl.add_argument("--status", choices=[s.value for s in JobStatus], default=None)
    pl.add_argument("--limit", type=positive_int, default=20)
    pc = jsub.add_parser("cancel", help="cancel a queued or running job")
    pc.add_argument("job_id")
    commands["jobs"] = _cmd_jobs


# --------------------------------------------------------------------------- fit


def _cmd_fit(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from speclet_core.fitting.request import prepare_fit
    from speclet_core.queue.jobs import JobQueue
    from speclet_core.records import SamplerSettings

    settings = Settings.from_env()
    if settings.read_only:
        raise JobError("SPECLET_READ_ONLY is set: this installation starts no new fits; unset it to run fits")
    try:
        sampler = SamplerSettings(method=args.method, chains=args.chains, tune=args.tune, draws=args.draws)
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpecletError(f"sampler settings: {problems}") from None
    request, estimate = prepare_fit(  # refuses a fit this machine cannot hold, saying why
        args.data, args.model, genes=args.genes, lineages=args.lineages, cell_lines=args.cell_lines,
        sampler=sampler, seed=args.seed, settings=settings, options=model_options(args),
    )
    print(f"estimate: {estimate.describe()}", file=sys.stderr)
    if estimate.approximate:
        print("note: the quick method is approximate (ADVI): a first look whose intervals are too narrow; "
              "use --method nuts for results to trust", file=sys.stderr)
    who = local_admin(_user())
    label = args.label if args.label is not None else who.name
    with JobQueue.from_settings(settings) as queue:
        job, stored, created = queue.submit_request(request, label, submitter=who, estimate=estimate)
        if stored:
            print(f"already stored: fit {job.fit_id}")
        elif created:
            print(f"queued: job {job.job_id} ({request.model}, {request.sampler.method}, attempt {job.attempt})")
        else:
            print(f"already in the queue ({job.status}, submitted by {job.label or 'someone'}): job {job.job_id}")
        code = 0
        if args.wait and not stored:
            sys.stdout.flush()
            code = _wait(queue, job.job_id, settings)
    print(job.fit_id)
    return code


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _wait(queue: JobQueue, job_id: str, settings: Settings) -> int:
    """Follow a job on stderr until it ends; 0 when stored, 1 when it failed or was cancelled."""
    from speclet_core.queue.jobs import worker_status

    tty = sys.stderr.isatty()
    warned_no_worker = False
    last_line = ""
    started = time.monotonic()
    try:
        while True:
            job = queue.get(job_id)
            if job.status == JobStatus.DONE:
                _status_line("", tty, last_line, final=True)
                print(f"done: fit stored{f' (verdict: {job.verdict})' if job.verdict else ''}", file=sys.stderr)
                if str(job.request.sampler.method) == "quick":
                    print("note: an approximate (quick) fit: a first look only, intervals too narrow; refit with "
                          "--method nuts before trusting them", file=sys.stderr)
                return 0
            if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
                _status_line("", tty, last_line, final=True)
                what = "failed" if job.status == JobStatus.FAILED else "cancelled"
                for line in (job.error or what).splitlines():
                    print(f"error: fit {what}: {line}" if line else "", file=sys.stderr)
                return EXIT_FIT_FAILED
            if job.status == JobStatus.QUEUED and not warned_no_worker and time.monotonic() - started > 2:
                if not worker_status(settings)["alive"]:
                    _status_line("", tty, last_line, final=True)
                    print("warning: no live worker is running; start one with: python -m speclet_core worker",
                          file=sys.stderr)
                    last_line = ""
                warned_no_worker = True
            last_line = _status_line(_describe(job), tty, last_line)
            time.sleep(WAIT_POLL_S)
    except KeyboardInterrupt:
        print(f"\nstopped waiting; the fit goes on in the queue (job {job_id})", file=sys.stderr)
        return 130


def _describe(job: JobRecord) -> str:
    from speclet_core.analysis.fitview import COUNTING_PHASES, eta_text, phase_text

    if job.status == JobStatus.QUEUED:
        return "queued, waiting for a worker"
    phase = str(job.phase or "starting")
    eta = eta_text(job)  # the same ETA as the pages: draw rate, or the estimate while compiling and saving
    left = f", {eta} left" if eta and eta[0].isdigit() else (f", {eta}" if eta else "")
    if job.progress is None or phase not in COUNTING_PHASES:
        return f"{phase_text(job) or phase} …{left}"
    filled = round(job.progress * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    div = f", {job.divergences} divergent" if job.divergences else ""
    return f"{phase:<9} [{bar}] {job.draws_done}/{job.draws_total}{left}{div}"


def _status_line(text: str, tty: bool, last: str, *, final: bool = False) -> str:
    """Redraw one line on a terminal; elsewhere print a line only when the phase changes."""
    if tty:
        if text or final:
            pad = max(0, len(last) - len(text))
            end = "\n" if final and last else ""
            sys.stderr.write("\r" + text + " " * pad + end)
            sys.stderr.flush()
        return text
    head = text.split()[0] if text else ""  # the phase: one line per phase, however its seconds tick
    if text and head != (last.split()[0] if last else ""):
        print(text, file=sys.stderr, flush=True)
        return text
    return last


# --------------------------------------------------------------------------- worker and jobs


def _cmd_worker(args: argparse.Namespace) -> int:
    from speclet_core.queue.worker import Worker, setup_logging

    settings = Settings.from_env()
    path = setup_logging(settings)
    print(f"worker log: {path}", file=sys.stderr)
    return Worker(settings, concurrency=args.concurrency).run()


def _cmd_jobs(args: argparse.Namespace) -> int:
    from speclet_core.queue.jobs import JobQueue

    with JobQueue.from_settings(Settings.from_env()) as queue:
        if args.jobs_command == "cancel":
            job = queue.cancel(args.job_id, by=local_admin(_user()))
            print(f"job {job.job_id}: {'stopping' if job.status == 'running' else job.status}")
            return 0
        for job in queue.list(status=args.status, limit=args.limit):
            when = datetime.fromtimestamp(job.submitted_at).strftime("%Y-%m-%d %H:%M")
            extra = f" {job.phase}" if job.phase else ""
            error = f"  {job.error.splitlines()[0][:80]}" if job.error else ""
            by = f" [{job.submitter}]" if job.submitter else ""
            print(f"{job.job_id}  {job.status:<9}{extra:<10} {when}  {job.request.model:<16} {job.label}{by}{error}")
    return 0
