"""Who may do what with the queue: submitters, the cancel rule and the caps on queued jobs.

The one home of these rules: ``JobQueue.submit_request`` and ``JobQueue.cancel`` enforce them,
and the pages ask the same functions whether to offer a Cancel button.

Identities
    A browser session is ``session-<random>`` (kept for that session only), or, when
    ``SPECLET_USER_HEADER`` names a header set by an authenticating reverse proxy, the user
    that header carries. Users listed in ``SPECLET_ADMIN_USERS`` (proxy identities only: a
    session id can never be an admin) may cancel anyone's fit and are exempt from the
    per-submitter cap. In-process callers (the CLI, the first-start fit, scripts) have shell
    access to ``SPECLET_DATA_DIR`` anyway: they are the local administrator ``cli:<user>``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping

from pydantic import Field

from speclet_core.queue.records import JobRecord
from speclet_core.records import Record
from speclet_core.settings import Settings

SUBMITTER_MAX = 120
SESSION_PREFIX = "session-"
SERVER_SUBMITTER = "server"  # the first-start demo fit
READ_ONLY_CANCEL = ("this speclet server is read-only (SPECLET_READ_ONLY is set): it cancels no fits; unset "
                    "SPECLET_READ_ONLY to cancel fits")


class Submitter(Record):
    """Who submits or cancels a fit."""

    name: str = Field(min_length=1, max_length=SUBMITTER_MAX,
                      description="The submitter's identity: a proxy user, a browser session, or cli:<user>.")
    admin: bool = Field(default=False, description="May cancel anyone's fit; exempt from the per-submitter cap.")


def local_admin(user: str) -> Submitter:
    """The identity of an in-process caller (CLI, scripts): ``cli:<user>``, an administrator."""
    return Submitter(name=f"cli:{_clean(user) or 'unknown'}", admin=True)


LOCAL_ADMIN = Submitter(name="cli:local", admin=True)


def new_session_name() -> str:
    """A fresh anonymous identity for one browser session."""
    return f"{SESSION_PREFIX}{secrets.token_hex(4)}"


def identify_submitter(headers: Mapping[str, str], session_name: str, settings: Settings) -> Submitter:
    """The submitter of a browser session.

    Parameters
    ----------
    headers
        The session's HTTP request headers (case-insensitive lookup is tried as given, then lower-case).
    session_name
        This session's anonymous identity (``new_session_name``), used without a proxy header.
    settings
        ``user_header`` (which header, empty: none) and ``admin_users``.
    """
    if settings.user_header:
        raw = headers.get(settings.user_header)
        if raw is None:
            raw = {k.lower(): v for k, v in headers.items()}.get(settings.user_header.lower())
        user = _clean(raw or "")
        if user:
            return Submitter(name=user, admin=user in settings.admin_users)
    return Submitter(name=session_name, admin=False)


def _clean(text: str) -> str:
    return " ".join(str(text).split())[:SUBMITTER_MAX]


def cancel_refusal(job: JobRecord, by: Submitter, settings: Settings) -> str | None:
    """Why ``by`` may not cancel ``job`` (None: it may). The one cancel rule."""
    if settings.read_only:
        return READ_ONLY_CANCEL
    if not job.active:
        return f"job {job.job_id[:12]}… has already finished ({job.status}); there is nothing to cancel"
    if by.admin or (job.submitter and job.submitter == by.name):
        return None
    owner = job.submitter or "an earlier speclet version"
    return (f"job {job.job_id[:12]}… was submitted by {owner}, not by you ({by.name}): only its submitter or an "
            "administrator (SPECLET_ADMIN_USERS, or `python -m speclet_core jobs cancel` on the server) may cancel it")


def may_cancel(job: JobRecord, by: Submitter, settings: Settings) -> bool:
    return cancel_refusal(job, by, settings) is None


def cap_refusal(by: Submitter, active_submitters: Iterable[str], settings: Settings) -> str | None:
    """Why ``by`` may not queue one more job, given the submitters of every queued or running job (None: it may)."""
    owners = list(active_submitters)
    if settings.max_jobs and len(owners) >= settings.max_jobs:
        return (f"the queue is full: {len(owners)} fits are queued or running on this server (SPECLET_MAX_JOBS = "
                f"{settings.max_jobs}); wait until some finish, or ask the administrator to raise the cap")
    if settings.max_jobs_per_user and not by.admin:
        mine = sum(1 for o in owners if o == by.name)
        if mine >= settings.max_jobs_per_user:
            return (f"you ({by.name}) already have {mine} fits queued or running (SPECLET_MAX_JOBS_PER_USER = "
                    f"{settings.max_jobs_per_user}); wait until one finishes or cancel one, then submit again")
    return None
