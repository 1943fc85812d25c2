"""The Docker image, built from the unmodified Dockerfile and run as `docker build` / `docker run` would.

A stand-in for the official Python base is made from Debian packages (see buildah_image.py) and cached; the image
itself is built fresh every run (a vanished apt pin fails here) and removed afterwards. Then, on one /data volume:

1. a first start serves the dashboard, answers its own HEALTHCHECK, queues the demo fit and completes it; SIGTERM to
   PID 1 stops it with exit status 0 within 10 s, leaving no process;
2. a restart on the same /data keeps the fit and queues nothing; every file in /data belongs to the image's user;
3. a read-only start (`SPECLET_READ_ONLY`, /data mounted `:ro`, a non-default `SPECLET_PORT`) starts no worker,
   stays healthy by its own HEALTHCHECK and writes nothing; Home (an AppTest run inside the container) says why
   fits cannot be queued there and still lists the stored fit.

Needs root, buildah and debootstrap (`.ci/run` installs them); skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from buildah_image import (  # tests/docker/buildah_image.py
    BuiltImage,
    Container,
    build_image,
    ensure_base_image,
    healthcheck_command,
    missing_tools,
    sh,
)

IMAGE_UID = 1000  # the Dockerfile's USER
DEMO_FIT_TIMEOUT_S = 900  # the demo fit took ≈ 2 min on 2 cores (compiling included); generous for CI
STOP_WITHIN_S = 10  # `docker stop`'s grace period before SIGKILL

_missing = missing_tools()
pytestmark = [pytest.mark.docker, pytest.mark.skipif(_missing is not None, reason=_missing or "")]

TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def image() -> Iterator[BuiltImage]:
    base, TIMES["base_build_s"] = ensure_base_image()
    built = build_image(base)
    TIMES["image_build_s"] = built.build_s
    try:
        yield built
    finally:
        built.remove()
        print("\nimage test times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in TIMES.items()))


@pytest.fixture(scope="module")
def data_volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host folder standing in for the named volume `-v speclet-data:/data` (Docker gives it the image's owner)."""
    data = tmp_path_factory.mktemp("docker") / "data"
    data.mkdir()
    os.chown(data, IMAGE_UID, IMAGE_UID)
    return data


def _sha256_in(image: str, path: str) -> str:
    ctr = sh(["buildah", "from", image]).strip()
    try:
        return sh(["buildah", "run", "--isolation", "chroot", ctr, "--", "sha256sum", path]).split()[0]
    finally:
        sh(["buildah", "rm", ctr])


def _jobs(ctr: Container) -> list[tuple[str, str]]:
    """(job id, status) of every job, read by the image's own CLI inside the container."""
    r = ctr.exec(["python", "-m", "speclet_core", "jobs", "list", "--limit", "100"])
    assert r.returncode == 0, r.stdout + r.stderr
    return [(line.split()[0], line.split()[1]) for line in r.stdout.splitlines() if line.strip()]


def _stored_fits(ctr: Container) -> list[dict]:
    r = ctr.exec(["python", "-m", "speclet_core", "store", "list", "--json"])
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def _run_healthcheck(ctr: Container, image: BuiltImage, env: dict[str, str] | None = None) -> int:
    """The image's own HEALTHCHECK command, run inside the container as Docker runs it."""
    r = ctr.exec(healthcheck_command(image.inspect()), env=env, timeout=30)
    return r.returncode


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_uid)
            for p in folder.rglob("*")}


def test_the_image_builds_from_the_unmodified_dockerfile(image: BuiltImage) -> None:
    config = image.inspect()["Docker"]["config"]
    assert config["User"] == f"{IMAGE_UID}:{IMAGE_UID}"
    assert config["Entrypoint"] == ["tini", "--", "python", "-m", "speclet_core", "serve"]
    assert "/data" in config["Volumes"] and "8501/tcp" in config["ExposedPorts"]
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["SPECLET_DATA_DIR"] == "/data" and env["SPECLET_PORT"] == "8501" and env["HOME"] == "/home/speclet"
    assert "SPECLET_PORT" in " ".join(healthcheck_command(image.inspect()))  # the check follows the port
    if image.ca_mounted_at:  # the host's CA bundle was mounted for the build's RUN steps only: none of it stays
        assert _sha256_in(image.name, image.ca_mounted_at) == _sha256_in(image.base, image.ca_mounted_at)


def test_first_start_serves_fits_the_demo_and_stops_on_sigterm(
    image: BuiltImage, data_volume: Path, tmp_path: Path
) -> None:
    ctr = Container(image, data_volume, tmp_path / "first.log")
    try:
        TIMES["first_healthy_s"] = ctr.wait_healthy()
        assert _run_healthcheck(ctr, image) == 0
        status, html = ctr.curl("/")
        assert status == 200 and "<title>" in html and 'id="root"' in html  # Streamlit's page shell
        workers = [p for p in ctr.processes() if "worker" in p.cmdline()]
        assert workers, "serve started no worker"

        t, deadline = time.monotonic(), time.monotonic() + DEMO_FIT_TIMEOUT_S
        while True:  # an empty installation gets the demo's first fit; the worker completes it
            jobs = _jobs(ctr)
            if jobs and jobs[0][1] in ("done", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, f"the demo fit did not finish in {DEMO_FIT_TIMEOUT_S} s: {jobs}"
            assert ctr.proc.poll() is None, ctr.log_text()
            time.sleep(5)
        TIMES["demo_fit_s"] = time.monotonic() - t
        assert len(jobs) == 1 and jobs[0][1] == "done", f"{jobs}\n{ctr.log_text()}"
        [fit] = _stored_fits(ctr)

        rc, took, alive = ctr.stop(STOP_WITHIN_S)
        TIMES["stop_s"] = took
        assert rc == 0, f"exit status {rc} after SIGTERM to PID 1:\n{ctr.log_text()}"
        assert took < STOP_WITHIN_S and alive == []
    finally:
        ctr.remove()
    (data_volume.parent / "first-fit.json").write_text(json.dumps({"fit_id": fit["fit_id"], "jobs": jobs}))


def test_restart_on_the_same_data_keeps_the_fit_and_queues_nothing(
    image: BuiltImage, data_volume: Path, tmp_path: Path
) -> None:
    first = json.loads((data_volume.parent / "first-fit.json").read_text())
    ctr = Container(image, data_volume, tmp_path / "restart.log")
    try:
        ctr.wait_healthy()
        time.sleep(3)  # long enough for serve's start-up to have queued a first fit, were it going to
        assert [f["fit_id"] for f in _stored_fits(ctr)] == [first["fit_id"]]
        assert [list(j) for j in _jobs(ctr)] == first["jobs"]  # nothing queued, nothing re-run
        rc, took, alive = ctr.stop(STOP_WITHIN_S)
        assert rc == 0 and took < STOP_WITHIN_S and alive == []
    finally:
        ctr.remove()
    not_ours = [f"{p} (uid {p.stat().st_uid})" for p in [data_volume, *data_volume.rglob("*")]
                if p.stat().st_uid != IMAGE_UID or p.stat().st_gid != IMAGE_UID]
    assert not_ours == [], f"files in /data not owned by the image's user {IMAGE_UID}: {not_ours[:10]}"


HOME_PAGE_CHECK = """
import json
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=120)
at.run()
print(json.dumps({"exceptions": [str(e.value) for e in at.exception], "errors": [e.value for e in at.error],
                  "table_rows": [len(t.value) for t in at.dataframe]}))
"""


def test_a_read_only_server_on_a_read_only_volume_starts_no_worker_and_writes_nothing(
    image: BuiltImage, data_volume: Path, tmp_path: Path
) -> None:
    before = _snapshot(data_volume)
    assert before, "the earlier tests left no fit in the volume"
    port = 8600  # not the default: the HEALTHCHECK must follow SPECLET_PORT
    ctr = Container(image, data_volume, tmp_path / "read-only.log", read_only_data=True,
                    env={"SPECLET_READ_ONLY": "1", "SPECLET_PORT": str(port)})
    try:
        ctr.wait_healthy(port)
        assert _run_healthcheck(ctr, image) == 0
        assert ctr.curl("/_stcore/health", 8501)[0] == 0  # it really moved
        assert _run_healthcheck(ctr, image, env={"SPECLET_PORT": "8501"}) != 0  # the check can fail: it asks the port
        time.sleep(3)
        assert [p.cmdline() for p in ctr.processes() if "worker" in p.cmdline()] == []
        assert len(_stored_fits(ctr)) == 1
        rc, took, alive = ctr.stop(STOP_WITHIN_S)
        assert rc == 0 and took < STOP_WITHIN_S and alive == []
    finally:
        ctr.remove()
    assert _snapshot(data_volume) == before


def test_home_renders_on_a_read_only_server_with_a_read_only_volume(
    image: BuiltImage, data_volume: Path, tmp_path: Path
) -> None:
    before = _snapshot(data_volume)
    ctr = Container(image, data_volume, tmp_path / "home.log", read_only_data=True, env={"SPECLET_READ_ONLY": "1"})
    try:
        ctr.wait_healthy()
        home = ctr.exec(["python", "-c", HOME_PAGE_CHECK], timeout=180)
        assert home.returncode == 0, f"{home.stdout}\n{home.stderr[-3000:]}"
        page = json.loads(home.stdout.strip().splitlines()[-1])
        assert page["exceptions"] == [], page  # no traceback
        # the queue cannot be opened on a read-only volume: said so, naming the cause and the fix …
        assert any("read-only filesystem" in e and "without `:ro`" in e for e in page["errors"]), page
        assert page["table_rows"] == [1], page  # … and the stored fit is still listed, to open
    finally:
        ctr.remove()
    assert _snapshot(data_volume) == before
