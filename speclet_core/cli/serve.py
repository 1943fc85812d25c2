"""``serve``: the dashboard and its worker(s) together (the Docker entry point)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from speclet_core.errors import SpecletError


def register_cli(
    subparsers: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]
) -> None:
    """Add ``serve`` to the ``python -m speclet_core`` parser."""
    p = subparsers.add_parser("serve", help="run the dashboard and its worker(s); stop with Ctrl-C or SIGTERM")
    p.add_argument("--port", type=int, default=None, help="port to listen on (default SPECLET_PORT)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default SPECLET_WORKERS)")
    commands["serve"] = _cmd_serve


def _cmd_serve(args: argparse.Namespace) -> int:
    from speclet_core.queue.serve import serve
    from speclet_core.settings import Settings

    settings = Settings.from_env()
    changes = {k: v for k, v in (("port", args.port), ("workers", args.workers)) if v is not None}
    if any(v < 0 for v in changes.values()):
        raise SpecletError("--port and --workers must not be negative")
    return serve(dataclasses.replace(settings, **changes))


