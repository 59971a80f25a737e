"""Splits that came out empty or far from their ratio are named with the reason and what to change, in the
build's result, its metadata.json and quality report, and a validation of the dataset."""

from __future__ import annotations

from pathlib import Path

from shared.domain.dataset_quality import check_quality
from shared.domain.split_balance import metadata_split_warnings, split_warnings, with_split_warnings
from tests.unit.test_dataset_build_service import make_cases
from tests.unit.test_local_copies import World

RATIOS = (0.8, 0.1, 0.1)


def test_an_empty_split_with_few_groups_says_to_lower_its_ratio_or_add_speakers() -> None:
    [message] = split_warnings({"train": 55, "val": 0, "test": 5}, {"train": 11, "val": 0, "test": 1}, RATIOS)
    assert message.startswith("split 'val' is empty (val_ratio 0.1): ")
    assert "only 12 groups were there to split, 0 of them in 'val'" in message
    assert "lower val_ratio or add cases of more speakers" in message


def test_a_split_far_from_its_ratio_with_many_groups_blames_their_sizes() -> None:
    # 200 groups, but val's and test's 20 each hold 2% of the rows: a few speakers in train hold most of them.
    messages = split_warnings({"train": 960, "val": 20, "test": 20}, {"train": 160, "val": 20, "test": 20}, RATIOS)
    assert [m.split(":")[0] for m in messages] == [
        "split 'val' holds 2% of the rows (20 of 1000) for a val_ratio of 0.1",
        "split 'test' holds 2% of the rows (20 of 1000) for a test_ratio of 0.1"]
    assert all("the 200 groups differ a lot in size" in m for m in messages)


def test_splits_near_their_ratio_a_zero_ratio_and_an_empty_dataset_are_not_warned_about() -> None:
    assert split_warnings({"train": 80, "val": 14, "test": 6}, {"train": 80, "val": 14, "test": 6}, RATIOS) == []
    assert split_warnings({"train": 90, "val": 0, "test": 10}, {"train": 9, "val": 0, "test": 1}, (0.9, 0, 0.1)) == []
    assert split_warnings({"train": 0, "val": 0, "test": 0}, {}, RATIOS) == []
    assert metadata_split_warnings({"split_sizes": {"train": 1}}) == []  # a dataset from before groups_per_split


def test_the_quality_report_explains_the_empty_split_instead_of_only_naming_it() -> None:
    rows = [{"audio": f"a{i}.wav", "text": f"Text {i}", "case_id": f"c{i}", "original_transcript": f"TEXT {i}",
             "error_types": [], "error_score": 0.5, "split": "train", "has_correction": True} for i in range(5)]
    report = check_quality({"train": rows, "val": [], "test": []})
    assert "split 'val' is empty" in report["quality_metrics"]["warnings"]
    messages = split_warnings({"train": 5, "val": 0, "test": 0}, {"train": 5}, RATIOS)
    explained = with_split_warnings(report, messages)
    warnings = explained["quality_metrics"]["warnings"]
    assert "split 'val' is empty" not in warnings and messages[0] in warnings and messages[1] in warnings
    assert (explained["passed"], explained["quality_metrics"]["metrics"]) == (report["passed"],
                                                                            report["quality_metrics"]["metrics"])


def test_a_build_of_few_speakers_reports_its_uneven_splits(tmp_path: Path) -> None:
    cases = make_cases(30)
    for n, case in enumerate(cases):
        case["speaker_id"] = f"spk-{n % 3}"  # three speakers: at most three splits, each a third of the rows
    world = World(tmp_path, cases)
    info = world.pipeline.prepare_dataset(min_error_score=0.5, balance_error_types=False)
    assert info["split_warnings"], info["split_sizes"]
    assert all("only 3 groups were there to split" in message for message in info["split_warnings"])
    metadata = world.recorded(info["dataset_id"])
    assert metadata["split_warnings"] == info["split_warnings"]
    assert set(info["split_warnings"]) <= set(metadata["quality_report"]["quality_metrics"]["warnings"])
    validation = world.pipeline.validate_dataset(info["dataset_id"])
    assert set(info["split_warnings"]) <= set(validation["warnings"])
    quality = world.control.check_quality(info["dataset_id"])
    assert set(info["split_warnings"]) <= set(quality["quality_metrics"]["warnings"])
