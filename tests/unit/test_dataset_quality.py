"""The dataset quality rules, each flipped by one crafted row, and JSONL line validation."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from shared.domain.dataset_quality import ISSUE_CAP, QualityThresholds, check_quality, validate_lines


def row(n: int, split: str = "train", **overrides: Any) -> dict[str, Any]:
    """A clean dataset row; overrides replace fields."""
    base: dict[str, Any] = {
        "audio": f"gs://bucket/audio/{n}.wav",
        "text": f"the corrected transcript number {n}",
        "case_id": f"case-{n}",
        "original_transcript": f"the corected transcript numbr {n}",
        "error_types": ["spelling"],
        "error_score": 0.4,
        "has_correction": True,
        "speaker_id": f"speaker-{n}",
        "language": "en",
        "model_version": "whisper_base_v1",
        "duration_s": 2.5,
        "wer": 0.2,
        "cer": 0.05,
        "split": split,
    }
    return base | overrides


def clean_splits(per_split: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Three splits of clean rows with distinct speakers and cases."""
    splits: dict[str, list[dict[str, Any]]] = {}
    for offset, split in enumerate(("train", "val", "test")):
        splits[split] = [row(offset * 1000 + i, split) for i in range(per_split)]
    return splits


def metrics_of(report: dict[str, Any]) -> dict[str, float]:
    """The five metrics of a report."""
    return report["quality_metrics"]["metrics"]


def with_extra(extra: dict[str, Any], split: str = "train") -> dict[str, Any]:
    """Report of clean splits plus one crafted row in split (a 31st row)."""
    splits = clean_splits()
    splits[split].append(extra)
    return check_quality(splits)


def categories(report: dict[str, Any], severity: str | None = None) -> list[str]:
    """Categories of the report's issues, optionally of one severity."""
    issues = report["quality_metrics"]["issues"]
    return [issue["category"] for issue in issues if severity is None or issue["severity"] == severity]


def test_clean_dataset_passes_with_every_metric_at_one() -> None:
    report = check_quality(clean_splits())
    assert report["passed"] is True
    assert metrics_of(report) == dict.fromkeys(
        ("completeness", "consistency", "validity", "uniqueness", "leakage_free"), 1.0
    )
    assert report["quality_metrics"]["overall_score"] == 1.0
    assert report["quality_metrics"]["issues"] == []
    assert report["quality_metrics"]["warnings"] == []
    assert report["num_samples"] == 30
    assert report["split_sizes"] == {"train": 10, "val": 10, "test": 10}


@pytest.mark.parametrize(
    ("overrides", "metric"),
    [
        ({"audio": ""}, "completeness"),
        ({"text": "   "}, "completeness"),
        ({"case_id": None}, "completeness"),
        ({"audio": "gs://bucket/audio/x.txt"}, "consistency"),
        ({"text": "same words", "original_transcript": "same words", "has_correction": True}, "consistency"),
        ({"text": "a much much much longer transcript than before", "original_transcript": "short"}, "consistency"),
        ({"text": "ab", "original_transcript": "a rather long original"}, "consistency"),
        ({"text": "12345 678"}, "validity"),
        ({"error_score": 1.5}, "validity"),
        ({"error_score": -0.1}, "validity"),
        ({"error_score": float("nan")}, "validity"),
        ({"error_score": True}, "validity"),
        ({"split": "val"}, "validity"),
    ],
)
def test_each_rule_lowers_its_own_metric(overrides: dict[str, Any], metric: str) -> None:
    report = with_extra(row(99, **overrides))
    metrics = metrics_of(report)
    assert metrics[metric] == pytest.approx(30 / 31, abs=1e-6)
    # An empty audio also removes the row from its group and its (audio, text) pair; other metrics stay whole.
    others = {name: value for name, value in metrics.items() if name not in (metric, "consistency")}
    if metric != "completeness":
        assert all(value == 1.0 for value in others.values()), metrics
    assert metric in categories(report)


def test_uncorrected_row_may_keep_its_original_text() -> None:
    report = with_extra(row(99, text="same words", original_transcript="same words", has_correction=False))
    assert metrics_of(report)["consistency"] == 1.0


def test_length_within_three_times_is_consistent() -> None:
    report = with_extra(row(99, text="x" * 30, original_transcript="y" * 10))
    assert metrics_of(report)["consistency"] == 1.0


def test_text_in_another_script_has_a_letter() -> None:
    report = with_extra(row(99, text="привет мир", original_transcript="превет мир"))
    assert metrics_of(report)["validity"] == 1.0


def test_repeated_case_id_in_one_split_lowers_uniqueness_without_leakage() -> None:
    report = with_extra(row(99, case_id="case-0", speaker_id="speaker-0"))
    assert metrics_of(report)["uniqueness"] == pytest.approx(30 / 31, abs=1e-6)
    assert metrics_of(report)["leakage_free"] == 1.0
    assert "critical" not in {issue["severity"] for issue in report["quality_metrics"]["issues"]}


def test_repeated_audio_text_pair_lowers_uniqueness() -> None:
    original = row(0)
    report = with_extra(row(99, audio=original["audio"], text=original["text"], speaker_id="speaker-0"))
    assert metrics_of(report)["uniqueness"] == pytest.approx(30 / 31, abs=1e-6)
    assert "(audio, text) pair repeated" in " ".join(report["quality_metrics"]["warnings"])


def test_speaker_in_two_splits_is_critical_leakage_naming_group_and_splits() -> None:
    splits = clean_splits()
    splits["test"].append(row(99, "test", speaker_id="speaker-3"))  # speaker-3 also speaks in train
    report = check_quality(splits)
    assert report["passed"] is False
    # 30 distinct speakers, one of them in two splits.
    assert metrics_of(report)["leakage_free"] == pytest.approx(29 / 30, abs=1e-6)
    [leak] = [issue for issue in report["quality_metrics"]["issues"] if issue["category"] == "leakage"]
    assert leak["severity"] == "critical"
    assert "'speaker-3'" in leak["message"]
    assert "train, test" in leak["message"]


def test_group_falls_back_to_audio_when_speaker_unknown() -> None:
    splits = clean_splits()
    splits["train"][0]["speaker_id"] = ""
    splits["val"].append(row(99, "val", speaker_id="", audio=splits["train"][0]["audio"], text="other words here"))
    report = check_quality(splits)
    [leak] = [issue for issue in report["quality_metrics"]["issues"] if issue["category"] == "leakage"]
    assert splits["train"][0]["audio"] in leak["message"]
    assert "train, val" in leak["message"]


def test_case_id_in_two_splits_is_critical() -> None:
    splits = clean_splits()
    splits["val"].append(row(99, "val", case_id="case-0"))  # a new speaker, but train's case
    report = check_quality(splits)
    assert metrics_of(report)["leakage_free"] == 1.0
    assert report["passed"] is False
    critical = [issue["message"] for issue in report["quality_metrics"]["issues"] if issue["severity"] == "critical"]
    assert critical == ["case_id 'case-0' sits in splits train, val"]


def test_empty_split_is_a_warning_and_empty_dataset_fails_critically() -> None:
    splits = clean_splits()
    splits["val"] = []
    report = check_quality(splits)
    assert report["passed"] is True
    assert report["quality_metrics"]["warnings"] == ["split 'val' is empty"]
    assert report["split_sizes"]["val"] == 0

    empty = check_quality({"train": [], "val": [], "test": []})
    assert empty["passed"] is False
    assert empty["num_samples"] == 0
    assert "dataset" in categories(empty, "critical")
    assert empty["quality_metrics"]["overall_score"] == 0.0


def test_issue_entries_are_capped_per_category_but_metrics_count_every_row() -> None:
    splits = clean_splits()
    splits["train"] += [row(5000 + i, error_score=2.0) for i in range(500)]
    report = check_quality(splits)
    validity = [issue for issue in report["quality_metrics"]["issues"] if issue["category"] == "validity"]
    assert len(validity) == ISSUE_CAP + 1
    assert validity[-1] == {"severity": "error", "category": "validity", "message": "... and 480 more validity issues"}
    assert metrics_of(report)["validity"] == pytest.approx(30 / 530, abs=1e-6)


def test_capped_leakage_summary_stays_critical() -> None:
    splits = clean_splits(per_split=40)
    splits["val"] += [row(9000 + i, "val", speaker_id=f"speaker-{i}") for i in range(30)]
    report = check_quality(splits)
    leakage = [issue for issue in report["quality_metrics"]["issues"] if issue["category"] == "leakage"]
    assert len(leakage) == ISSUE_CAP + 1
    assert leakage[-1]["severity"] == "critical"
    assert leakage[-1]["message"] == "... and 10 more leakage issues"


def test_thresholds_decide_the_verdict_and_say_why() -> None:
    splits = clean_splits()
    splits["train"][0]["audio"] = "gs://bucket/audio/0.txt"  # consistency 29/30 = 0.967
    assert check_quality(splits)["passed"] is True
    strict = check_quality(splits, QualityThresholds(min_consistency=0.99))
    assert strict["passed"] is False
    [why] = [issue["message"] for issue in strict["quality_metrics"]["issues"] if issue["category"] == "threshold"]
    assert why.startswith("consistency 0.9667 is below the minimum 0.9900")


def test_input_rows_are_not_mutated() -> None:
    splits = clean_splits()
    splits["val"].append(row(99, "train", speaker_id="speaker-0"))
    before = copy.deepcopy(splits)
    check_quality(splits)
    assert splits == before


def test_validate_lines_names_bad_lines_by_their_one_based_number() -> None:
    good = orjson.dumps(row(1))
    missing_text = orjson.dumps({key: value for key, value in row(2).items() if key != "text"})
    lines = [good + b"\n", b"\n", missing_text + b"\n", b"   \n", b"{not json\n", b"[1, 2]\n"]
    rows, issues = validate_lines("train", lines)
    assert [r["case_id"] for r in rows] == ["case-1", "case-2"]
    assert issues == [
        "train line 3: missing field 'text'",
        "train line 5: not valid JSON",
        "train line 6: not a JSON object (a list)",
    ]


def test_validate_lines_reports_wrong_types_and_caps_its_issues() -> None:
    rows, issues = validate_lines("val", [orjson.dumps(row(1, error_types="spelling", error_score="high"))])
    assert len(rows) == 1
    assert issues == [
        "val line 1: field 'error_types' is not a list",
        "val line 1: field 'error_score' is not a number or null",
    ]
    rows, issues = validate_lines("test", [b"nope"] * 250, max_issues=5)
    assert rows == []
    assert issues[:2] == ["test line 1: not valid JSON", "test line 2: not valid JSON"]
    assert issues[-1] == "test: ... and 245 more line issues"
    assert len(issues) == 6


def test_validated_rows_feed_the_quality_check() -> None:
    lines = [orjson.dumps(row(i, "val")) for i in range(5)]
    rows, issues = validate_lines("val", lines)
    assert issues == []
    report = check_quality({"val": rows})
    assert report["passed"] is True
    assert report["num_samples"] == 5
