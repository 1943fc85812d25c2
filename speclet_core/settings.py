"""Settings from ``SPECLET_*`` environment variables (same names in Docker).

``Settings.from_env()`` reads them once; every field documents itself, and
``settings_table()`` renders the README's table from the same source.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speclet_core.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_HEADER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_RESOURCE_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=([0-9]+(?:\.[0-9]+)?)")

# The default memory limit of one fit process (SPECLET_FIT_MEMORY_MB unset): this share of the machine's memory
# (or of the container's cgroup limit, if lower), split between the fits that may run at once. The limit is on
# address space (RLIMIT_AS), which is several times a fit's resident memory (a small NUTS fit: 3.2 GiB reserved
# for 0.6 GiB resident), so it keeps the host's resident memory well below this share.
FIT_MEMORY_SHARE = 0.75
MIN_FIT_MEMORY_MB = 4_096  # below this even a small fit cannot load its libraries
# Address space a fit reserves beyond its resident memory (libraries, numba, thread stacks): a small NUTS fit
# reserved 3.2 GiB for 0.6 GiB resident, so a fit under an RLIMIT_AS of L MiB may be resident up to L - this.
ADDRESS_SPACE_OVERHEAD_MB = 2_700
DISK_RESERVE_MB = 1_024  # disk left free for everything else when the disk budget is the data folder's free space
_CGROUP_LIMITS = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))


def _env_field(env: str, default: Any, help: str, *, shown: str | None = None, names: bool = False) -> Any:
    """A setting read from ``env``; ``shown`` is its default as the README writes it; ``names``: a
    tuple of comma-separated names rather than of paths."""
    return field(default=default, metadata={"env": env, "help": help, "shown": shown, "names": names})


@dataclass(frozen=True)
class Settings:
    """Every tunable of a speclet installation."""

    data_dir: Path = _env_field(
        "SPECLET_DATA_DIR",
        PROJECT_ROOT / ".speclet-data",
        "Folder for stored fits, the job queue, logs and the demo screen (`/data` in Docker).",
    )
    screen: str = _env_field(
        "SPECLET_SCREEN",
        "",
        "Screen table the app opens first; empty means the built-in demo screen.",
    )
    workers: int = _env_field("SPECLET_WORKERS", 1, "Worker processes started by `make run` / `serve`.")
    max_concurrent_fits: int = _env_field("SPECLET_MAX_CONCURRENT_FITS", 1, "Fits one worker runs at the same time.")
    max_rows: int = _env_field(
        "SPECLET_MAX_ROWS",
        2_000_000,
        "Hard ceiling on the readings (rows) of one fit and of one screen table, whatever the machine could hold "
        "(a genome-wide lineage is ≈ 2.9 M: set `SPECLET_MAX_ROWS=3000000` on a machine meant for it; a shared server "
        "keeps the lower ceiling, which also bounds what an upload may parse). Below it a fit is admitted by its "
        "estimated memory and disk.",
    )
    max_genes: int = _env_field(
        "SPECLET_MAX_GENES",
        20_000,
        "Hard ceiling on the genes of one fit (a genome is ≈ 18,000); below it a fit is admitted by its estimated "
        "memory and disk.",
    )
    fit_memory_budget_mb: int | None = field(
        default=None,  # None: derived from the machine by fit_memory_budget()
        metadata={
            "env": "SPECLET_FIT_MEMORY_BUDGET_MB",
            "kind": 0,
            "help": "A fit whose estimated peak memory (MiB) is above this is refused before it starts, saying why; "
                    "`0`: no check. Default: the least of the memory available now, the fit's share of the machine "
                    "(as for `SPECLET_FIT_MEMORY_MB`) and that limit less the address space libraries reserve.",
        },
    )
    fit_disk_budget_mb: int | None = field(
        default=None,  # None: the free disk of the data folder, less a reserve
        metadata={
            "env": "SPECLET_FIT_DISK_BUDGET_MB",
            "kind": 0,
            "help": "A fit whose estimated temporary plus stored disk (MiB) is above this is refused before it "
                    f"starts; `0`: no check. Default: the free disk of `SPECLET_DATA_DIR` less {DISK_RESERVE_MB} MiB.",
        },
    )
    fit_timeout_s: int = _env_field(
        "SPECLET_FIT_TIMEOUT_S", 3_600, "A fit running longer than this is stopped and marked failed."
    )
    fit_memory_mb: int | None = field(
        default=None,  # None: derived from the machine by fit_memory_limit_mb()
        metadata={
            "env": "SPECLET_FIT_MEMORY_MB",
            "kind": 0,  # parsed as a whole number
            "help": f"Memory limit (address space) of one fit process in MiB; `0`: no limit. Default: "
                    f"{FIT_MEMORY_SHARE:.0%} of the machine's memory (or of the container's limit) divided by "
                    f"`SPECLET_WORKERS` × `SPECLET_MAX_CONCURRENT_FITS`, at least {MIN_FIT_MEMORY_MB}.",
        },
    )
    upload_limit_mb: int = _env_field(
        "SPECLET_UPLOAD_LIMIT_MB", 200, "Largest screen table a browser may upload, in MiB."
    )
    max_table_mb: int = _env_field(
        "SPECLET_MAX_TABLE_MB",
        512,
        "Largest screen table (CSV/TSV text once decompressed, Parquet uncompressed) that is read, in MiB.",
    )
    max_columns: int = _env_field(
        "SPECLET_MAX_COLUMNS", 1_000, "Most columns a screen table may have (checked on its header, before reading)."
    )
    parse_memory_mb: int = _env_field(
        "SPECLET_PARSE_MEMORY_MB",
        2_048,
        "Memory limit (address space) of the process that reads an uploaded or server screen table, in MiB "
        "(`0`: no limit).",
    )
    parse_timeout_s: float = _env_field(
        "SPECLET_PARSE_TIMEOUT_S",
        60.0,
        "Reading an uploaded or server screen table that takes longer than this is stopped, in seconds.",
    )
    allow_uploads: bool = _env_field(
        "SPECLET_ALLOW_UPLOADS", True, "Whether the Home page offers uploading a screen table."
    )
    allowed_data_dirs: tuple[Path, ...] = _env_field(
        "SPECLET_ALLOWED_DATA_DIRS",
        (),
        "Server folders (separated by `:`) whose files users may open by path; empty: none.",
    )
    read_only: bool = _env_field(
        "SPECLET_READ_ONLY",
        False,
        "Demo mode for projectors: browse stored fits, start no new fits, no uploads.",
    )
    heartbeat_timeout_s: float = _env_field(
        "SPECLET_HEARTBEAT_TIMEOUT_S",
        30.0,
        "A running job whose worker has been silent this long goes back to the queue.",
    )
    port: int = _env_field("SPECLET_PORT", 8501, "Port the dashboard listens on.")
    max_jobs: int = _env_field(
        "SPECLET_MAX_JOBS", 100, "Most fits queued or running at once on this server, everyone together (0: no cap)."
    )
    max_jobs_per_user: int = _env_field(
        "SPECLET_MAX_JOBS_PER_USER",
        10,
        "Most fits one submitter may have queued or running at once (0: no cap; administrators are exempt).",
    )
    user_header: str = _env_field(
        "SPECLET_USER_HEADER",
        "",
        "HTTP header in which an authenticating reverse proxy passes the user name (e.g. `X-Forwarded-User`); "
        "empty: each browser session is its own anonymous submitter.",
        shown="(none)",
    )
    admin_users: tuple[str, ...] = _env_field(
        "SPECLET_ADMIN_USERS",
        (),
        "Users (from `SPECLET_USER_HEADER`, separated by `,`) who may cancel anyone's fit; empty: none.",
        names=True,
    )
    nutpie_backend: str = _env_field(
        "SPECLET_NUTPIE_BACKEND",
        "numba",
        "What nutpie compiles a model with: `numba` (fastest on CPU) or `jax` (for a GPU; needs jax installed).",
    )
    dask_scheduler: str = _env_field(
        "SPECLET_DASK_SCHEDULER",
        "",
        "Address of a Dask scheduler (e.g. `tcp://head:8786`) to which workers send their fits; empty: each worker "
        "runs its fits as processes on its own machine.",
        shown="(none)",
    )
    dask_resources: str = _env_field(
        "SPECLET_DASK_RESOURCES",
        "",
        "Dask worker resources each fit asks for (e.g. `GPU=1`: only workers started with `--resources GPU=1` run "
        "it); empty: any worker.",
        shown="(none)",
    )

    def __post_init__(self) -> None:
        if self.nutpie_backend not in ("numba", "jax"):
            raise SettingsError(
                f"SPECLET_NUTPIE_BACKEND={self.nutpie_backend!r}: expected numba (the default, CPU) or jax (GPU)"
            )
        if self.user_header and not _HEADER_RE.fullmatch(self.user_header):
            raise SettingsError(
                f"SPECLET_USER_HEADER={self.user_header!r}: expected an HTTP header name such as X-Forwarded-User "
                "(letters, digits and -)"
            )
        if self.dask_scheduler and "://" not in self.dask_scheduler:
            raise SettingsError(
                f"SPECLET_DASK_SCHEDULER={self.dask_scheduler!r}: expected a scheduler address such as "
                "tcp://head:8786 (protocol://host:port), or leave it empty to run fits as local processes"
            )
        self.dask_fit_resources()  # refuses a malformed SPECLET_DASK_RESOURCES at start

    def dask_fit_resources(self) -> dict[str, float]:
        """``SPECLET_DASK_RESOURCES`` as Dask's ``resources=`` argument (``{}``: none)."""
        out: dict[str, float] = {}
        for item in (i.strip() for i in self.dask_resources.split(",")):
            if not item:
                continue
            match = _RESOURCE_RE.fullmatch(item.replace(" ", ""))
            if match is None:
                raise SettingsError(
                    f"SPECLET_DASK_RESOURCES={self.dask_resources!r}: {item!r} is not NAME=AMOUNT; write e.g. GPU=1 "
                    "(several separated by ,), the same names as the Dask workers' --resources"
                )
            out[match.group(1)] = float(match.group(2))
        return out

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read every field from the environment, with a clear error on bad values."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(name, raw.strip(), f.metadata.get("kind", f.default),
                                    names=f.metadata.get("names", False))
        return cls(**values)

    def fit_memory_limit_mb(self, fits_per_worker: int | None = None) -> int:
        """The memory limit of one fit process in MiB (0: none): ``SPECLET_FIT_MEMORY_MB`` or the machine's share.

        ``fits_per_worker`` is a worker's concurrency when it differs from ``max_concurrent_fits``.
        """
        if self.fit_memory_mb is not None:
            return self.fit_memory_mb
        concurrent = max(1, self.workers) * max(1, fits_per_worker or self.max_concurrent_fits)
        return default_fit_memory_mb(concurrent)

    def fit_memory_budget(self, fits_per_worker: int | None = None) -> tuple[int, str]:
        """(MiB, what sets it) of the peak memory a fit may be expected to need to be admitted; 0: no check."""
        if self.fit_memory_budget_mb is not None:
            return self.fit_memory_budget_mb, f"SPECLET_FIT_MEMORY_BUDGET_MB={self.fit_memory_budget_mb}"
        options: list[tuple[int, str]] = []
        available = available_memory_mb()
        if available is not None:
            options.append((available, "memory available on this machine now"))
        concurrent = max(1, self.workers) * max(1, fits_per_worker or self.max_concurrent_fits)
        machine = machine_memory_mb()
        if machine:
            share = int(machine * FIT_MEMORY_SHARE) // concurrent
            options.append((share, f"a fit's share of this machine ({FIT_MEMORY_SHARE:.0%} of {machine:,} MiB"
                                   + (f" over {concurrent} fits at once)" if concurrent > 1 else ")")))
        limit = self.fit_memory_limit_mb(fits_per_worker)
        if limit:
            options.append((max(0, limit - ADDRESS_SPACE_OVERHEAD_MB),
                            f"the fit process's memory limit ({limit:,} MiB of address space, SPECLET_FIT_MEMORY_MB) "
                            f"less {ADDRESS_SPACE_OVERHEAD_MB:,} MiB its libraries reserve"))
        if not options:
            return 0, "unknown (no check)"
        return min(options)

    def fit_disk_budget(self) -> tuple[int, str]:
        """(MiB, what sets it) of the temporary plus stored disk a fit may need to be admitted; 0: no check."""
        if self.fit_disk_budget_mb is not None:
            return self.fit_disk_budget_mb, f"SPECLET_FIT_DISK_BUDGET_MB={self.fit_disk_budget_mb}"
        folder = next((p for p in (self.data_dir, *self.data_dir.parents) if p.exists()), None)
        if folder is None:
            return 0, "unknown (no check)"
        try:
            free = shutil.disk_usage(folder).free // 2**20
        except OSError:
            return 0, "unknown (no check)"
        return max(1, free - DISK_RESERVE_MB), f"free disk of {self.data_dir} less a {DISK_RESERVE_MB:,} MiB reserve"

    @property
    def fits_dir(self) -> Path:
        return self.data_dir / "fits"

    @property
    def queue_dir(self) -> Path:
        return self.data_dir / "queue"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def machine_memory_mb() -> int | None:
    """This machine's memory in MiB, or the container's cgroup limit when that is lower; None if unknown."""
    sizes: list[int] = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in _CGROUP_LIMITS:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means no limit; v1 writes a huge number instead
            sizes.append(int(text))
    sizes = [s for s in sizes if s > 0]
    return min(sizes) // 2**20 if sizes else None


def available_memory_mb() -> int | None:
    """Memory available for a new process now (``MemAvailable``), in MiB; None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available // 2**20)
    except (ImportError, OSError):
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_fit_memory_mb(concurrent_fits: int, machine_mb: int | None = None) -> int:
    """The default memory limit of one fit (``SPECLET_FIT_MEMORY_MB`` unset); 0 only if the machine's size is unknown."""
    machine_mb = machine_memory_mb() if machine_mb is None else machine_mb
    if not machine_mb:
        return 0
    return max(MIN_FIT_MEMORY_MB, int(machine_mb * FIT_MEMORY_SHARE) // max(1, concurrent_fits))


def _parse(name: str, raw: str, default: Any, *, names: bool = False) -> Any:
    if isinstance(default, bool):
        low = raw.lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name}={raw!r}: expected true or false (also 1/0, yes/no, on/off)")
    if isinstance(default, int):
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected a whole number, e.g. {default}") from None
        if value < 0:
            raise SettingsError(f"{name}={raw!r}: must not be negative")
        return value
    if isinstance(default, float):
        try:
            fvalue = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected a number, e.g. {default}") from None
        if not fvalue > 0:
            raise SettingsError(f"{name}={raw!r}: must be positive")
        return fvalue
    if isinstance(default, Path):
        return Path(raw).expanduser()
    if isinstance(default, tuple) and names:
        return tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    if isinstance(default, tuple):
        return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip())
    return raw


def settings_table() -> str:
    """The settings as a Markdown table (kept in the README)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = f.default
        if f.metadata.get("shown") is not None:
            default = f.metadata["shown"]
        elif isinstance(default, Path):
            default = "`.speclet-data/` in the checkout"
        elif isinstance(default, tuple):
            default = "(none)"
        elif default == "":
            default = "(demo screen)"
        elif default is None:
            default = "(from the machine)"
        else:
            default = f"`{str(default).lower() if isinstance(default, bool) else default}`"
        rows.append(f"| `{f.metadata['env']}` | {default} | {f.metadata['help']} |")
    return "\n".join(rows)
