"""Build and run the project's Dockerfile with Debian's buildah, as `docker build` / `docker run` would.

No Docker daemon and no registry for base images are reachable from these machines, so the official
``python:3.11.7-slim-bookworm`` base is replaced by a stand-in made from Debian packages (``debootstrap`` →
``python3.11`` + ``python3.11-venv``, a venv at ``/usr/local`` so ``/usr/local/bin/python`` and ``pip`` sit where the
official image has them) and passed as the Dockerfile's ``BASE_IMAGE`` build argument; the Dockerfile itself is
built unmodified. The stand-in is cached in buildah's storage under a tag derived from its recipe, so only the first
run on a machine pays for it.

A container runs with ``buildah run --isolation chroot`` inside its own network namespace (``unshare -n``); the
test reaches it with ``nsenter -t PID -n``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

BASE_SUITE = "bookworm"
# libpython3.11-dev: the headers and libpython the official image has (PyTensor compiles C against them)
BASE_PACKAGES = ("ca-certificates", "python3.11", "python3.11-venv", "libpython3.11-dev")
BASE_REPO = "localhost/speclet-test-base"
# What the official image's apt sees (bookworm, its updates and security fixes): pins are checked against these.
DEBIAN_SOURCES = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
BASE_ENV = ("PATH=/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


class BuildahError(RuntimeError):
    """A buildah / debootstrap step failed; the message holds the command and its output."""


def missing_tools() -> str | None:
    """Why the image test cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the image test needs root (buildah with chroot isolation, unshare -n)"
    for tool, package in (("buildah", "buildah"), ("debootstrap", "debootstrap"), ("unshare", "util-linux"),
                          ("nsenter", "util-linux"), ("ip", "iproute2"), ("curl", "curl")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package}; .ci/run installs it)"
    return None


def sh(cmd: Sequence[str], *, timeout: float = 600, check: bool = True, **kwargs: object) -> str:
    """Run a command; its stdout, or BuildahError with the full output when it fails."""
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    if check and r.returncode != 0:
        raise BuildahError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return r.stdout


def debian_mirror() -> str:
    """The host's Debian mirror (from /etc/apt), else deb.debian.org."""
    texts = [p.read_text() for p in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for text in texts:
        for line in text.splitlines():
            if line.startswith("URIs:"):
                uri = line.split()[1]
                if uri.rstrip("/").endswith("/debian"):
                    return uri
    listing = Path("/etc/apt/sources.list")
    if listing.is_file():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[1].rstrip("/").endswith("/debian"):
                return parts[1]
    return DEFAULT_MIRROR


def image_exists(name: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", name], capture_output=True).returncode == 0


def image_ids() -> set[str]:
    return set(sh(["buildah", "images", "--all", "--quiet", "--no-trunc"]).split())


def base_image_tag() -> str:
    """The stand-in base's name: a hash of its recipe (this module's constants and builder)."""
    recipe = json.dumps([BASE_SUITE, BASE_PACKAGES, DEBIAN_SOURCES, BASE_ENV, inspect.getsource(_build_base_image)])
    return f"{BASE_REPO}:{hashlib.sha256(recipe.encode()).hexdigest()[:16]}"


def ensure_base_image() -> tuple[str, float]:
    """The cached stand-in base (built when missing); returns (name, seconds spent building it, 0 when cached)."""
    name = base_image_tag()
    if image_exists(name):
        return name, 0.0
    t = time.monotonic()
    _build_base_image(name)
    return name, time.monotonic() - t


def _build_base_image(name: str) -> None:
    """debootstrap a minimal bookworm, import it, add python3.11 with a venv at /usr/local, commit it as ``name``."""
    with tempfile.TemporaryDirectory(prefix="speclet-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        sh(["debootstrap", "--variant=minbase", BASE_SUITE, str(rootfs), debian_mirror()], timeout=900)
        ctr = sh(["buildah", "from", "scratch"]).strip()
        try:
            mnt = sh(["buildah", "mount", ctr]).strip()
            # tar keeps owners, modes and special files exactly as debootstrap made them
            with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as pack:
                sh(["tar", "-C", mnt, "-x", "--numeric-owner"], stdin=pack.stdout, timeout=600)
            sh(["buildah", "umount", ctr])
            config = ["buildah", "config"]
            for env in BASE_ENV:
                config += ["--env", env]
            sh([*config, "--cmd", "python3", ctr])
            script = (
                "set -e; rm -f /etc/apt/sources.list; "
                f"printf '%s' '{DEBIAN_SOURCES}' > /etc/apt/sources.list.d/debian.sources; "
                "apt-get update -qq; "
                f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {' '.join(BASE_PACKAGES)}; "
                "apt-get clean; rm -rf /var/lib/apt/lists/*; "
                # the official image's /usr/local/bin/python and pip
                "python3.11 -m venv /usr/local; /usr/local/bin/python -m pip --version"
            )
            sh(["buildah", "run", "--isolation", "chroot", ctr, "--", "sh", "-c", script], timeout=900)
            sh(["buildah", "commit", "--rm", "--format", "docker", ctr, name], timeout=600)
        except BaseException:
            subprocess.run(["buildah", "rm", ctr], capture_output=True)
            raise


def pip_ca_bundle(base: str) -> str:
    """Where pip in ``base`` reads its CA certificates (Debian's pip: the system bundle; the official image: certifi)."""
    ctr = sh(["buildah", "from", base]).strip()
    try:
        code = "import pip._vendor.certifi as c; print(c.where())"
        return sh(["buildah", "run", "--isolation", "chroot", ctr, "--", "python", "-c", code]).strip()
    finally:
        sh(["buildah", "rm", ctr])


@dataclass
class BuiltImage:
    name: str
    base: str
    build_s: float
    layer_ids: set[str] = field(default_factory=set)  # every image the build added (the layer cache included)
    ca_mounted_at: str | None = None

    def inspect(self) -> dict:
        return json.loads(sh(["buildah", "inspect", "--type", "image", self.name]))

    def remove(self) -> None:
        """Remove the image and the layer images its build added; the cached base stays."""
        subprocess.run(["buildah", "rmi", "--force", self.name], capture_output=True)
        for image_id in self.layer_ids:
            subprocess.run(["buildah", "rmi", "--force", image_id], capture_output=True)


def build_image(base: str, *, context: Path = ROOT) -> BuiltImage:
    """``docker build`` of the unmodified Dockerfile on ``base``.

    Behind an intercepting proxy pip inside the build cannot verify TLS: the host's CA bundle is bind-mounted over
    the one pip reads, for the build's RUN steps only (a bind mount is not part of any layer).
    """
    name = f"localhost/speclet-image-test:{uuid.uuid4().hex[:12]}"
    cmd = ["buildah", "bud", "--isolation", "chroot", "--format", "docker", "--layers",
           "--build-arg", f"BASE_IMAGE={base}", "-t", name]
    ca_target = None
    if HOST_CA_BUNDLE.is_file():
        ca_target = pip_ca_bundle(base)
        cmd += ["--volume", f"{HOST_CA_BUNDLE}:{ca_target}:ro"]
    before = image_ids()
    t = time.monotonic()
    try:
        sh([*cmd, str(context)], timeout=1500)
    finally:
        added = image_ids() - before
    image = BuiltImage(name=name, base=base, build_s=time.monotonic() - t, layer_ids=added, ca_mounted_at=ca_target)
    return image


def healthcheck_command(config: dict) -> list[str]:
    """The image's HEALTHCHECK as argv (exec form ``CMD`` or shell form ``CMD-SHELL``)."""
    test = (config.get("Docker", {}).get("config", {}).get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        raise AssertionError(f"the image has no HEALTHCHECK: {test}")
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    raise AssertionError(f"unknown HEALTHCHECK form: {test}")


def entrypoint(config: dict) -> list[str]:
    docker = config.get("Docker", {}).get("config", {})
    return list(docker.get("Entrypoint") or []) + list(docker.get("Cmd") or [])


class Container:
    """One running container of an image: ``docker run [-e …] -v DATA:/data[:ro] IMAGE``."""

    def __init__(self, image: BuiltImage, data_dir: Path, log: Path, *, env: dict[str, str] | None = None,
                 read_only_data: bool = False) -> None:
        self.image, self.data_dir, self.log = image, data_dir, log
        self.volume = f"{data_dir}:/data" + (":ro" if read_only_data else "")
        self.name = f"speclet-test-{uuid.uuid4().hex[:12]}"
        sh(["buildah", "from", "--name", self.name, image.name])
        # without this the image's anonymous VOLUME /data hides the bind mount
        config = ["buildah", "config", "--volume", "/data-"]
        for k, v in (env or {}).items():  # `docker run -e K=V`
            config += ["--env", f"{k}={v}"]
        sh([*config, self.name])
        argv = entrypoint(image.inspect())
        script = ('ip link set lo up && V="$1" C="$2" && shift 2 && '
                  'exec buildah run --isolation chroot -v "$V" "$C" -- "$@"')
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(["unshare", "-n", "sh", "-c", script, "sh", self.volume, self.name, *argv],
                                         stdout=out, stderr=subprocess.STDOUT)
        self.env = env or {}

    # ------------------------------------------------------------------ looking in
    def curl(self, path: str, port: int = 8501, timeout: float = 5) -> tuple[int, str]:
        """(HTTP status, body) of a GET inside the container's network namespace; (0, '') when nothing answers."""
        r = subprocess.run(["nsenter", "-t", str(self.proc.pid), "-n", "curl", "-s", "-m", str(timeout),
                            "-w", "\n%{http_code}", f"http://127.0.0.1:{port}{path}"],
                           capture_output=True, text=True, timeout=timeout + 5)
        body, _, code = r.stdout.rpartition("\n")
        return (int(code) if code.isdigit() else 0), body

    def exec(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``docker exec [-e K=V]``: run argv in the same container (same network, same /data, the image's user)."""
        extra = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-n", "buildah", "run", "--isolation", "chroot",
                               *extra, "-v", self.volume, self.name, "--", *argv],
                              capture_output=True, text=True, timeout=timeout)

    def wait_healthy(self, port: int = 8501, timeout: float = 180) -> float:
        t = time.monotonic()
        while time.monotonic() - t < timeout:
            if self.proc.poll() is not None:
                raise AssertionError(f"the container exited {self.proc.returncode}:\n{self.log_text()}")
            if self.curl("/_stcore/health", port, timeout=2) == (200, "ok"):
                return time.monotonic() - t
            time.sleep(0.5)
        raise AssertionError(f"/_stcore/health never answered within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def processes(self) -> list[psutil.Process]:
        """Every process of the container (all descendants of the runner)."""
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def pid1(self) -> psutil.Process:
        """The entry point's first process (tini): what `docker stop` signals."""
        argv0 = entrypoint(self.image.inspect())[0]
        for p in self.processes():
            try:
                cmd = p.cmdline()
            except psutil.NoSuchProcess:
                continue
            if cmd and os.path.basename(cmd[0]) == argv0:
                return p
        raise AssertionError(f"no {argv0} process in the container: {[p.cmdline() for p in self.processes()]}")

    # ------------------------------------------------------------------ stopping
    def stop(self, timeout: float = 10) -> tuple[int, float, list[psutil.Process]]:
        """``docker stop``: SIGTERM to PID 1; returns (exit status, seconds, processes still alive after it)."""
        procs = self.processes()
        pid1 = self.pid1()
        t = time.monotonic()
        pid1.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = -1
        took = time.monotonic() - t
        _, alive = psutil.wait_procs(procs, timeout=2)
        return rc, took, alive

    def remove(self) -> None:
        """Kill whatever is left and remove the working container."""
        for p in [*self.processes(), psutil.Process(self.proc.pid)] if self.proc.poll() is None else []:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        subprocess.run(["buildah", "rm", self.name], capture_output=True)
