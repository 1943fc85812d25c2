"""A full disk before and during a store write: a clear error, nothing half-written (on a real small tmpfs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_store import ModelStore
from model_store.store import INCOMING_DIR
from speclet_core.errors import StoreError
from speclet_core.settings import PROJECT_ROOT
from tests.model_store.store_helpers import make_idata, put_example

TMPFS_MB = 16
BIG_DRAWS = 20_000  # ≈ 32 MB of float32 draws: more than the tmpfs holds


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 16 MB filesystem (tmpfs), mounted for this test only."""
    mount_point = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m,mode=0700", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root?'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _leftovers(store: ModelStore) -> list[str]:
    incoming = store.root / INCOMING_DIR
    return sorted(os.listdir(incoming)) if incoming.exists() else []


def test_a_fit_larger_than_the_free_space_is_refused_before_writing(small_disk: Path) -> None:
    store = ModelStore(small_disk / "fits")
    with pytest.raises(StoreError) as info:
        put_example(store, idata=make_idata(draws=BIG_DRAWS))
    message = str(info.value)
    assert message.startswith(f"disk full: not enough free disk in {store.root}: need ≈")
    need_mb = int(message.split("need ≈")[1].split(" MB")[0].replace(",", ""))
    free_mb = float(message.split("MB, ")[1].split(" MB free")[0].replace(",", ""))
    assert need_mb > TMPFS_MB and 0 < free_mb <= TMPFS_MB
    assert "free space" in message and "SPECLET_DATA_DIR" in message
    assert store.fit_ids() == [] and _leftovers(store) == []
    assert shutil.disk_usage(small_disk).used < 1 << 20  # nothing written


def test_a_fit_that_fits_is_stored_on_the_same_small_disk(small_disk: Path) -> None:
    store = ModelStore(small_disk / "fits")
    fit_id, _ = put_example(store)
    assert store.fit_ids() == [fit_id] and store.verify() == []


# The disk fills up during the write (the pre-check is switched off to get there), in its own process
# that exits as the worker's fit process does (os._exit: h5py's exit-time cleanup crashes after a
# write failed on a full disk).
DURING = textwrap.dedent("""
    import os
    import sys
    import model_store.store as store_module
    from model_store import ModelStore
    from speclet_core.errors import StoreError
    from tests.model_store.store_helpers import make_idata, put_example
    store_module.needed_free_bytes = lambda estimate: 0
    try:
        put_example(ModelStore(sys.argv[1]), idata=make_idata(draws=int(sys.argv[2])))
    except StoreError as exc:
        print(exc, flush=True)
        os._exit(3)
    os._exit(0)
""")


def test_the_disk_filling_up_during_the_write_is_reported_and_cleaned_up(small_disk: Path) -> None:
    root = small_disk / "fits"
    done = subprocess.run([sys.executable, "-c", DURING, str(root), str(BIG_DRAWS)], cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 3, (done.returncode, done.stdout[-2000:], done.stderr[-3000:])
    assert done.stdout.startswith(f"disk full: not enough free disk in {root}"), done.stdout
    assert "Traceback" not in done.stdout  # (h5py logs its failed cleanups on stderr: the fit's log)
    store = ModelStore(root)
    assert store.fit_ids() == [] and _leftovers(store) == []
    assert shutil.disk_usage(small_disk).used < 1 << 20  # the half-written file is gone
