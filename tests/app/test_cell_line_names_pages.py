"""Cell lines by name: a real fit of a named screen keeps its names through the store, and pages show them.

One quick (ADVI) fit of ``gene_lineage`` (it has a gene × cell-line effect) on a tiny synthetic screen whose table names five of its six cell
lines, stored once for the module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import arviz as az
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from model_store import ModelStore
from speclet_core.analysis.cell_lines import annotation_columns, cell_line_labels, fit_cell_line_table
from speclet_core.data.cell_lines import CELL_LINE_GROUP

pytestmark = pytest.mark.slow
UNNAMED = 2  # the third cell line has no name in the table


def _rows(at: AppTest, title_part: str) -> pd.DataFrame:
    for el in at.get("vega_lite_chart"):
        spec = json.loads(el.proto.spec)
        title = spec.get("title", "")
        title = title.get("text", "") if isinstance(title, dict) else title
        if title_part in str(title):
            frames = [pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in el.proto.datasets]
            return pd.concat(frames, ignore_index=True)
    raise AssertionError(f"no chart titled {title_part!r}")


@pytest.fixture(scope="module")
def named_fit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str], Path]:
    """(data dir, fit id, id → name, screen path) of a stored quick fit of a screen with cell-line names."""
    from speclet_core.data.synthetic import simulate_screen
    from speclet_core.fitting.engine import run_fit
    from speclet_core.fitting.request import prepare_request
    from speclet_core.records import SamplerSettings
    from speclet_core.settings import Settings

    data_dir = tmp_path_factory.mktemp("named-fit")
    screen = simulate_screen(n_genes=4, n_cell_lines=6, n_lineages=2, seed=3, sgrnas_per_gene=(2, 2))
    df = screen.data.copy()
    ids = sorted(df["depmap_id"].unique())
    names = {c: f"LINE-{i}" for i, c in enumerate(ids) if i != UNNAMED}
    df["cell_line_name"] = df["depmap_id"].map(names)
    df["primary_or_metastasis"] = df["depmap_id"].map({c: "metastasis" if i % 2 else "primary" for i, c in enumerate(ids)})
    path = data_dir / "named_screen.csv"
    df.to_csv(path, index=False)
    settings = Settings(data_dir=data_dir)
    request = prepare_request(path, "gene_lineage", sampler=SamplerSettings(method="quick"), seed=1, settings=settings)
    result = run_fit(request, settings=settings)
    ModelStore(settings.fits_dir).put(
        request.fit_id, result.idata, request=request.model_dump(mode="json"), roles=result.spec.roles(),
        diagnostics=result.diagnostics, timings=result.timings, provenance=result.provenance,
    )
    return data_dir, request.fit_id, names, path


@pytest.fixture
def named_env(named_fit: tuple[Path, str, dict[str, str], Path], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SPECLET_DATA_DIR", str(named_fit[0]))
    monkeypatch.setenv("SPECLET_SCREEN", str(named_fit[3]))
    return named_fit[1]


def test_a_stored_fit_keeps_its_cell_line_names(named_fit: tuple[Path, str, dict[str, str], Path]) -> None:
    data_dir, fit_id, names, _ = named_fit
    store = ModelStore(data_dir / "fits")
    assert store.verify() == []
    with store.get(fit_id) as fit:
        labels = cell_line_labels(fit)
        cells = list(fit.manifest.cell_lines)
        assert list(labels) == cells and len(cells) == 6
        assert labels == {c: (f"{names[c]} ({c})" if c in names else c) for c in cells}
        assert labels[cells[UNNAMED]] == cells[UNNAMED]  # no name: the bare id
        table = fit_cell_line_table(fit)
        assert set(table["primary_or_metastasis"]) == {"primary", "metastasis"}
        assert annotation_columns(fit) == {"lineage": "lineage", "primary_or_metastasis": "primary / metastasis"}
        # a plain ArviZ reader sees the group on the cell_line dimension
        idata = az.from_netcdf(fit.posterior_path)
        group = idata[CELL_LINE_GROUP]
        assert list(group["cell_line"].values) == cells
        assert str(group["cell_line_name"].sel(cell_line=cells[0]).values) == names[cells[0]]


def test_forest_across_cell_lines_shows_names(open_page: Callable[..., AppTest], named_env: str,
                                              named_fit: tuple[Path, str, dict[str, str], Path]) -> None:
    names = named_fit[2]
    at = open_page("forest", fit=named_env, forest_view="One gene across cell lines")
    rows = _rows(at, "One gene across cell lines")
    assert len(rows) == 6
    shown = dict(zip(rows["depmap_id"], rows["label"], strict=True))
    assert shown == {c: (f"{names[c]} ({c})" if c in names else c) for c in shown}
    assert "approximate" in "\n".join(w.value for w in at.warning).lower()  # the shared banner: a quick fit


def fit_cell_line_table_ids(named_fit: tuple[Path, str, dict[str, str], Path]) -> list[str]:
    data_dir, fit_id, _, _ = named_fit
    fit = ModelStore(data_dir / "fits").get(fit_id)
    try:
        return [str(c) for c in fit.manifest.cell_lines]
    finally:
        fit.close()


def test_heatmap_columns_show_names(open_page: Callable[..., AppTest], named_env: str,
                                    named_fit: tuple[Path, str, dict[str, str], Path]) -> None:
    names = named_fit[2]
    at = open_page("heatmap", fit=named_env, heat_kind="gene_cell_line")
    el = at.get("vega_lite_chart")[0]
    frames = [pa.ipc.open_stream(ds.data.data).read_all().to_pandas() for ds in el.proto.datasets]
    cells = next(f for f in frames if "gene" in f.columns)
    ids = fit_cell_line_table_ids(named_fit)
    expected = {f"{names[c]} ({c})" if c in names else c for c in ids}
    assert set(cells["column"]) == expected and len(expected) == 6
    band = next(f for f in frames if "n_cell_lines" in f.columns)
    assert set(band["column"]) == expected  # the lineage band sits over the same (named) columns


def test_forest_sorted_by_name_follows_the_names(open_page: Callable[..., AppTest], named_env: str) -> None:
    at = open_page("forest", fit=named_env, forest_view="One gene across cell lines", forest_sort="name")
    rows = _rows(at, "One gene across cell lines").sort_values("order")
    assert rows["label"].tolist() == sorted(rows["label"])


def test_ppc_split_by_cell_line_titles_panels_by_name(open_page: Callable[..., AppTest], named_env: str,
                                                      named_fit: tuple[Path, str, dict[str, str], Path]) -> None:
    names = named_fit[2]
    at = open_page("ppc", fit=named_env, ppc_by="cell line")
    groups = set(_rows(at, "per cell line")["group"])
    first = sorted(names)[0]
    assert f"{names[first]} ({first})" in groups
    assert not any(g in names for g in groups)  # never a bare id where a name is known


def test_data_explorer_colours_cell_lines_by_annotation(open_page: Callable[..., AppTest], named_env: str,
                                                        named_fit: tuple[Path, str, dict[str, str], Path]) -> None:
    names = named_fit[2]
    at = open_page("data", screen="config", colour_by="primary / metastasis")
    box = at.selectbox(key="colour_by")
    assert box.value == "primary_or_metastasis"
    assert set(box.options) == {"lineage", "primary / metastasis"}
    rows = _rows(at, "Mean LFC per cell line")
    assert set(rows["group"]) == {"primary", "metastasis"}
    by_cell = rows.drop_duplicates("cell_line").set_index("cell_line")
    assert all(by_cell.loc[c, "label"] == f"{n} ({c})" for c, n in names.items())
    # the colour follows the table: even-numbered cell lines were written as primary
    ids = sorted(by_cell.index)
    assert all(by_cell.loc[c, "group"] == ("metastasis" if i % 2 else "primary") for i, c in enumerate(ids))
    # the table of the cell lines shown lists their names and sites
    listed = next(d.value for d in at.dataframe if "cell_line_name" in d.value.columns).set_index("depmap_id")
    assert listed["cell_line_name"].dropna().to_dict() == names
    assert set(listed["primary_or_metastasis"]) == {"primary", "metastasis"}
    # the cell-line filter lists names too
    cells = at.multiselect(key="cells")
    assert f"{names[ids[0]]} ({ids[0]})" in cells.options


def test_a_fit_without_stored_annotations_labels_cell_lines_by_id(data_dir: Path, fake_fit: str) -> None:
    with ModelStore(data_dir / "fits").get(fake_fit) as fit:  # stored without the group (as fits before it)
        assert not fit.manifest.has_group(CELL_LINE_GROUP)
        labels = cell_line_labels(fit)
        assert labels == {c: c for c in fit.manifest.cell_lines} and len(labels) == 8
        assert annotation_columns(fit) == {}
