"""Command ``atlas``: one fit per lineage of a screen (a pan-cancer atlas), each through the queue.

Each lineage's fit is an ordinary request (``prepare_request`` with that one lineage), so it is
deduplicated like any fit: an atlas submitted again, or one overlapping another, runs only what is not
stored or queued yet. The atlas itself is a small JSON record, ``DATA_DIR/atlases/<atlas id>.json``
(lineage → fit id), written atomically; the atlas id is the hash of the model and those fit ids, so the
same atlas always gets the same id. The last line of stdout is the atlas id; ``--wait`` follows every
fit on stderr and exits 0 when all are stored, 1 if any failed or was cancelled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from speclet_core.analysis.atlas import ATLAS_DIR
from speclet_core.cli.args import positive_int
from speclet_core.cli.jobs import EXIT_FIT_FAILED, WAIT_POLL_S, _seed, _user
from speclet_core.errors import JobError, SpecletError
from speclet_core.queue.access import local_admin
from speclet_core.queue.records import JobStatus
from speclet_core.settings import Settings

__all__ = ["ATLAS_DIR", "atlas_id_of", "register_cli", "write_atlas"]


def register_cli(
    subparsers: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]
) -> None:
    """Add ``atlas`` to the ``python -m speclet_core`` parser."""
    from speclet_core.records import SamplerSettings

    defaults = SamplerSettings()
    p = subparsers.add_parser(
        "atlas", help="one fit per lineage (the last line printed is the atlas id); `atlas show ATLAS_ID`: its state",
    )
    p.add_argument("show", nargs="*", metavar="show ATLAS_ID",
                   help="print each lineage's fit, its state and verdict (then compare with `rank --atlas ATLAS_ID`)")
    p.add_argument("--data", help="screen table (CSV, TSV or Parquet); required to submit an atlas")
    p.add_argument("--model", help="model name, e.g. sgrna_gene_cell_line (fitted to one lineage); required to submit")
    p.add_argument("--genes", default="all", help="comma-separated gene symbols, or all (default)")
    p.add_argument("--lineages", default="all", help="comma-separated lineages, or all (default): one fit each")
    p.add_argument("--method", choices=["nuts", "quick"], default=defaults.method.value)
    p.add_argument("--chains", type=positive_int, default=defaults.chains)
    p.add_argument("--tune", type=positive_int, default=defaults.tune)
    p.add_argument("--draws", type=positive_int, default=defaults.draws)
    p.add_argument("--seed", type=_seed, default=1)
    p.add_argument("--wait", action="store_true",
                   help="show progress across the fits; exit 0 when all are stored, 1 if any failed")
    commands["atlas"] = _cmd_atlas


def atlas_id_of(model: str, fits: dict[str, str]) -> str:
    """The atlas id: sha256 of the model and the (lineage, fit id) pairs, whatever their order."""
    text = json.dumps({"model": model, "fits": sorted(fits.items())}, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_atlas(settings: Settings, record: dict[str, Any]) -> Path:
    """Write the atlas record atomically (temp file in the same folder, fsync, rename)."""
    folder = settings.data_dir / ATLAS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['atlas_id']}.json"
    tmp = folder / f".{record['atlas_id']}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def _cmd_show(words: list[str]) -> int:
    """``atlas show ATLAS_ID``: one line per lineage (fit, state, verdict) and a summary line."""
    from model_store import ModelStore
    from speclet_core.analysis.atlas import MemberState, atlas_status, read_atlas
    from speclet_core.queue.jobs import JobQueue

    if len(words) != 2 or words[0] != "show":
        raise SpecletError(f"unexpected words {' '.join(words)!r}: use `atlas show ATLAS_ID`, or `atlas --data FILE "
                           "--model NAME` to submit one")
    settings = Settings.from_env()
    record = read_atlas(settings.data_dir, words[1])
    store = ModelStore(settings.fits_dir)
    if settings.queue_dir.is_dir():
        with JobQueue.from_settings(settings) as queue:
            members = atlas_status(record, store, queue.find)
    else:
        members = atlas_status(record, store)
    for member in members:
        print(member.describe())
    stored = sum(m.state == MemberState.STORED for m in members)
    flagged = sum(m.flagged for m in members)
    print(f"atlas {record.atlas_id[:12]} ({record.model}): {stored}/{len(members)} fits stored"
          f"{f', {flagged} did not pass their diagnostics' if flagged else ''}"
          f"{'; compare them with `rank --atlas ' + record.atlas_id[:12] + '`' if stored == len(members) else ''}")
    return 0


def _cmd_atlas(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from speclet_core.data.screen import load_screen
    from speclet_core.data.selection import select_screen
    from speclet_core.fitting.request import prepare_request
    from speclet_core.labels import ALL
    from speclet_core.queue.jobs import JobQueue
    from speclet_core.records import SamplerSettings

    if args.show:
        return _cmd_show(list(args.show))
    missing = [flag for flag, value in (("--data FILE", args.data), ("--model NAME", args.model)) if not value]
    if missing:
        raise SpecletError(f"atlas: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required to submit "
                           "an atlas (or `atlas show ATLAS_ID` for its state)")
    settings = Settings.from_env()
    if settings.read_only:
        raise JobError("SPECLET_READ_ONLY is set: this installation starts no new fits; unset it to run fits")
    try:
        sampler = SamplerSettings(method=args.method, chains=args.chains, tune=args.tune, draws=args.draws)
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SpecletError(f"sampler settings: {problems}") from None
    lineages = select_screen(load_screen(Path(args.data).expanduser()), args.genes, args.lineages, ALL).lineages
    requests = {
        lineage: prepare_request(args.data, args.model, genes=args.genes, lineages=[lineage], sampler=sampler,
                                 seed=args.seed, settings=settings)
        for lineage in lineages
    }  # every lineage checked before anything is queued: a bad one queues none
    fits = {lineage: r.fit_id for lineage, r in requests.items()}
    atlas_id = atlas_id_of(args.model, fits)
    write_atlas(settings, {"atlas_id": atlas_id, "model": args.model, "data_path": str(Path(args.data).resolve()),
                           "sampler": sampler.model_dump(mode="json"), "seed": args.seed, "fits": fits})
    who = local_admin(_user())
    with JobQueue.from_settings(settings) as queue:
        for lineage, request in requests.items():
            job, stored, created = queue.submit_request(request, f"atlas {atlas_id[:12]}: {lineage}", submitter=who)
            state = "already stored" if stored else "queued" if created else f"already {job.status}"
            print(f"{lineage}: {state}: fit {job.fit_id}")
        code = 0
        if args.wait:
            sys.stdout.flush()
            code = _wait_all(queue, fits)
    print(atlas_id)
    return code


def _wait_all(queue: Any, fits: dict[str, str]) -> int:
    """Follow every fit of the atlas on stderr until all ended; 0 when all are stored."""
    last = ""
    try:
        while True:
            jobs = {lineage: queue.get(fit_id) for lineage, fit_id in fits.items()}
            counts = {s: sum(j.status == s for j in jobs.values()) for s in JobStatus}
            running = [j for j in jobs.values() if j.status == JobStatus.RUNNING]
            share = sum(j.progress or 0.0 for j in running) / max(1, len(running))
            line = (f"atlas: {counts[JobStatus.DONE]}/{len(fits)} stored, {counts[JobStatus.RUNNING]} running"
                    f"{f' ({share:.0%} through their phase)' if running else ''}, {counts[JobStatus.QUEUED]} queued")
            if line.split(" (")[0] != last.split(" (")[0]:
                print(line, file=sys.stderr, flush=True)
                last = line
            if counts[JobStatus.QUEUED] + counts[JobStatus.RUNNING] == 0:
                bad = {lin: j for lin, j in jobs.items() if j.status != JobStatus.DONE}
                for lineage, job in bad.items():
                    print(f"error: {lineage}: fit {job.status}: {(job.error or '').splitlines()[0] if job.error else ''}",
                          file=sys.stderr)
                if not bad:
                    print(f"done: all {len(fits)} fits stored", file=sys.stderr)
                return EXIT_FIT_FAILED if bad else 0
            time.sleep(WAIT_POLL_S)
    except KeyboardInterrupt:
        print("\nstopped waiting; the fits go on in the queue", file=sys.stderr)
        return 130
