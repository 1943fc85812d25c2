"""SPECLET_* settings: defaults, parsing, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from speclet_core.errors import SettingsError
from speclet_core.settings import Settings, settings_table


def test_defaults_and_overrides() -> None:
    s = Settings.from_env({})
    assert s.workers == 1 and s.allow_uploads is True and s.read_only is False
    s = Settings.from_env(
        {
            "SPECLET_DATA_DIR": "/srv/speclet",
            "SPECLET_WORKERS": "3",
            "SPECLET_READ_ONLY": "yes",
            "SPECLET_ALLOWED_DATA_DIRS": "/data/a:/data/b",
            "SPECLET_HEARTBEAT_TIMEOUT_S": "12.5",
        }
    )
    assert s.data_dir == Path("/srv/speclet") and s.fits_dir == Path("/srv/speclet/fits")
    assert s.workers == 3 and s.read_only is True and s.heartbeat_timeout_s == 12.5
    assert s.allowed_data_dirs == (Path("/data/a"), Path("/data/b"))


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SPECLET_WORKERS", "two", "expected a whole number"),
        ("SPECLET_MAX_ROWS", "-5", "must not be negative"),
        ("SPECLET_READ_ONLY", "maybe", "expected true or false"),
        ("SPECLET_HEARTBEAT_TIMEOUT_S", "0", "must be positive"),
    ],
)
def test_bad_values_are_named(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}={value!r}: {message}"):
        Settings.from_env({name: value})


def test_table_lists_every_variable() -> None:
    table = settings_table()
    for var in ("SPECLET_DATA_DIR", "SPECLET_WORKERS", "SPECLET_READ_ONLY", "SPECLET_UPLOAD_LIMIT_MB"):
        assert f"`{var}`" in table


def test_readme_settings_table_is_current() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert settings_table() in readme, "README's settings table is stale: paste settings_table() output"


def test_the_fit_memory_limit_defaults_to_a_share_of_the_machine() -> None:
    from speclet_core.settings import FIT_MEMORY_SHARE, MIN_FIT_MEMORY_MB, default_fit_memory_mb, machine_memory_mb

    machine = machine_memory_mb()
    assert machine is not None and machine > 0
    assert machine <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    s = Settings.from_env({})
    assert s.fit_memory_mb is None  # unset: derived
    assert s.fit_memory_limit_mb() == max(MIN_FIT_MEMORY_MB, int(machine * FIT_MEMORY_SHARE)) > 0
    # split between every fit that may run at once: workers × fits per worker
    s4 = Settings.from_env({"SPECLET_WORKERS": "2", "SPECLET_MAX_CONCURRENT_FITS": "2"})
    assert s4.fit_memory_limit_mb() == default_fit_memory_mb(4)
    assert s.fit_memory_limit_mb(fits_per_worker=4) == default_fit_memory_mb(4)
    assert default_fit_memory_mb(1, machine_mb=16_000) == 12_000
    assert default_fit_memory_mb(2, machine_mb=16_000) == 6_000
    assert default_fit_memory_mb(8, machine_mb=16_000) == MIN_FIT_MEMORY_MB  # never below what a fit needs to load
    # explicit values win; 0 means no limit only when written
    assert Settings.from_env({"SPECLET_FIT_MEMORY_MB": "0"}).fit_memory_limit_mb() == 0
    assert Settings.from_env({"SPECLET_FIT_MEMORY_MB": "1500"}).fit_memory_limit_mb(fits_per_worker=4) == 1500
    with pytest.raises(SettingsError, match="SPECLET_FIT_MEMORY_MB='lots': expected a whole number"):
        Settings.from_env({"SPECLET_FIT_MEMORY_MB": "lots"})
