"""The one label rule (speclet_core.labels): "all", parsing, matching and "did you mean"."""

from __future__ import annotations

from typing import Any

import pytest

from speclet_core.labels import (
    close_matches,
    describe_unknown,
    fold_label,
    join_labels,
    match_labels,
    means_all,
    parse_labels,
)


@pytest.mark.parametrize("value", [None, "", "  ", "all", "ALL", " All ", "*", ["all"], ["*"], ["ALL", ""]])
def test_every_spelling_of_all(value: Any) -> None:
    assert means_all(value)
    assert parse_labels(value) is None


@pytest.mark.parametrize("value", ["KRAS", "all,KRAS", ["all", "KRAS"], ["KRAS"], "allx"])
def test_names_are_not_all(value: object) -> None:
    assert not means_all(value)


@pytest.mark.parametrize("value", [[], ("", " "), ","])
def test_an_empty_choice_is_not_all(value: Any) -> None:
    # nothing chosen must never silently become every gene (callers refuse it)
    assert not means_all(value)
    assert parse_labels(value) == []


def test_parse_labels_splits_text_on_commas_only_and_drops_repeats() -> None:
    assert parse_labels(" KRAS, NRAS ,,KRAS") == ["KRAS", "NRAS"]
    assert parse_labels("Head and Neck, Skin") == ["Head and Neck", "Skin"]
    assert parse_labels([" Skin ", "Bowel", "Skin", ""]) == ["Skin", "Bowel"]


def test_match_labels_exact_then_case_then_fold() -> None:
    known = ["KRAS", "Head and Neck", "CNS/Brain"]
    assert match_labels(["kras", "KRAS", "head_and-neck", "XYZ"], known) == (["KRAS"], ["head_and-neck", "XYZ"])
    assert match_labels(["kras", "head_and-neck", "cns/brain"], known, fold=True) == (
        ["KRAS", "Head and Neck", "CNS/Brain"],
        [],
    )
    assert fold_label("Head and-Neck_") == "headandneck"


def test_close_matches_ignore_case_and_keep_the_known_spelling() -> None:
    assert close_matches("krsa", ["KRAS", "BRAF"]) == ["KRAS"]
    assert close_matches("zzzz", ["KRAS", "BRAF"]) == []


def test_describe_unknown_names_each_label_with_suggestions_and_caps_the_list() -> None:
    text = describe_unknown(["KRSA", "XYZ"], ["KRAS", "BRAF"], "gene", "the screen")
    assert text == "2 genes not in the screen: 'KRSA' (did you mean KRAS?), 'XYZ'"
    assert describe_unknown(["Skn"], ["Skin"], "lineage", "Model.csv") == "1 lineage not in Model.csv: 'Skn' (did you mean Skin?)"
    hinted = describe_unknown(["colorectal"], ["Bowel", "Skin"], "lineage", "Model.csv", hints={"colorectal": ["Bowel"]})
    assert hinted.endswith("'colorectal' (did you mean Bowel?)")
    many = describe_unknown([f"G{i}" for i in range(11)], [], "gene", "the screen")
    assert many.startswith("11 genes not in the screen: 'G0'") and many.endswith("'G7' and 3 more")


def test_join_labels_shows_the_first_few() -> None:
    assert join_labels(["a", "b"]) == "a, b"
    assert join_labels(list("abcdefg"), 3) == "a, b, c and 4 more"


def test_count_noun_agrees_in_number() -> None:
    from speclet_core.labels import count_noun

    assert count_noun(1, "lineage") == "1 lineage" and count_noun(3, "lineage") == "3 lineages"
    assert count_noun(0, "gene") == "0 genes" and count_noun(1200, "cell line") == "1,200 cell lines"
    assert count_noun(2, "copy", "copies") == "2 copies"


def test_recovery_sentence_says_1_lineage() -> None:
    from speclet_core.analysis.sentences import describe_recovery

    one = describe_recovery({"n": 1, "inside_outer": 1.0, "inside_inner": 0.0, "rmse": 0.1}, 0.5, 0.89, "lineages")
    assert "for 1 of 1 lineage (" in one and "lineages" not in one
    many = describe_recovery({"n": 3, "inside_outer": 1.0, "inside_inner": 1.0, "rmse": 0.1}, 0.5, 0.89, "cell lines")
    assert "for 3 of 3 cell lines (" in many


def test_interval_text_is_signed_and_rounded():
    from speclet_core.labels import interval_text

    assert interval_text(-0.524, -0.109) == "-0.52 to -0.11"
    assert interval_text(-0.05, 0.3) == "-0.05 to +0.30"
