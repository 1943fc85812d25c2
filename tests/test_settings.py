"""SPECLET_* settings: defaults, parsing, clear errors."""

from __future__ import annotations

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
