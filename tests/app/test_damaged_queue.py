"""A damaged queue file: every page says so (what, where, what to do) and stored fits still open."""

from __future__ import annotations

from pathlib import Path


def _damage_queue(data_dir: Path) -> Path:
    path = data_dir / "queue" / "cache.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database " * 4096)
    return path


def test_home_explains_a_damaged_queue_and_still_lists_and_opens_stored_fits(  # type: ignore[no-untyped-def]
    open_page, data_dir, fake_fit
) -> None:
    path = _damage_queue(data_dir)
    at = open_page("home")
    [error] = [e.value for e in at.error]
    assert "The job queue cannot be read" in error and str(path) in error and "damaged" in error
    assert "moves the damaged file aside" in error and "Stored fits are not affected" in error
    assert not any("No fitting worker" in w.value for w in at.warning)  # the real problem, not a worker warning
    assert any("cannot be read just now" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert list(table["model"]) == ["hierarchical"]  # stored fits listed as usual
    forest = open_page("forest", fit=fake_fit)  # and a stored fit opens on a results page
    assert forest.title[0].value == "Forest plot" and forest.get("vega_lite_chart")
    assert any("The job queue cannot be read" in e.value for e in forest.error)


def test_fit_page_shows_the_queue_as_unavailable(open_page, data_dir) -> None:  # type: ignore[no-untyped-def]
    _damage_queue(data_dir)
    at = open_page("fit")
    assert any("The job queue cannot be read" in e.value for e in at.error)
    assert any("cannot be read just now" in c.value for c in at.caption)
