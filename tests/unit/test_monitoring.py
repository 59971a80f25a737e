"""Learning progress and inference stats read back (Python and the `api`), the performance report's summaries
of them, and recommendations drawn from regressions, the current dataset's quality and the quarantine rate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from shared.api import dispatch
from shared.domain.recommendations import assess_quality, current_dataset_quality, recommendations
from tests.unit.test_metrics_service import NOW
from tests.unit.test_seed_usage import SETTINGS, tracker_and_system


def test_learning_progress_reads_back_filtered_with_each_stage_and_figure_summarized() -> None:
    tracker, system, _ = tracker_and_system()
    for epoch, loss in enumerate([0.9, 0.6, 0.4], start=1):
        tracker.record_learning_progress("finetune", model_version="v1", epoch=epoch, loss=loss,
                                         recorded_at=NOW - timedelta(hours=4 - epoch))
    tracker.record_learning_progress("eval", model_version="v1", wer=0.2, recorded_at=NOW - timedelta(minutes=30))
    tracker.record_learning_progress("finetune", model_version="v2", epoch=1, loss=0.5, converged=True,
                                     recorded_at=NOW - timedelta(minutes=10))

    everything = tracker.get_learning_progress()
    assert everything["count"] == 5 and [r["model_version"] for r in everything["records"]][-1] == "v2"
    v1 = everything["by_model_version"]["v1"]
    assert v1["count"] == 4 and list(v1["stages"]) == ["finetune", "eval"]
    assert v1["stages"]["finetune"]["loss"] == 0.4 and v1["stages"]["eval"]["wer"] == 0.2
    loss = v1["figures"]["loss"]
    assert (loss["first"], loss["last"], loss["min"], loss["max"], loss["count"]) == (0.9, 0.4, 0.4, 0.9, 3)
    assert "converged" not in everything["by_model_version"]["v2"]["figures"]  # a flag is not a figure

    finetune_v1 = tracker.get_learning_progress(model_version="v1", stage="finetune", limit=2)
    assert finetune_v1["count"] == 3 and [r["epoch"] for r in finetune_v1["records"]] == [2, 3]
    assert finetune_v1["records"][0]["recorded_at"] == (NOW - timedelta(hours=2)).isoformat()
    recent = system.get_learning_progress(since=(NOW - timedelta(hours=1)).isoformat())
    assert recent["count"] == 3  # from `since` on, the epoch recorded at it included
    assert recent["filters"]["since"] == (NOW - timedelta(hours=1)).isoformat()
    with pytest.raises(ValueError, match="limit"):
        tracker.get_learning_progress(limit=-1)


def test_inference_stats_read_back_with_counts_summed_per_model_version() -> None:
    tracker, system, _ = tracker_and_system()
    tracker.record_inference_stats("v1", requests=100, p95_latency_s=0.4, recorded_at=NOW - timedelta(hours=2))
    tracker.record_inference_stats("v1", requests=50, p95_latency_s=0.6, recorded_at=NOW - timedelta(hours=1))
    tracker.record_inference_stats("v2", requests=7, recorded_at=NOW)
    stats = system.get_inference_stats(model_version="v1")
    assert stats["count"] == 2 and list(stats["by_model_version"]) == ["v1"]
    figures = stats["by_model_version"]["v1"]["figures"]
    assert figures["requests"]["sum"] == 150 and figures["p95_latency_s"]["mean"] == pytest.approx(0.5)
    assert "stages" not in stats["by_model_version"]["v1"]
    # The performance report summarizes both kinds per model version.
    report = tracker.generate_performance_report()
    assert report["inference_stats"]["v2"]["figures"]["requests"]["last"] == 7
    assert report["learning_progress"] == {}


def test_the_api_serves_both_readers_and_checks_their_arguments() -> None:
    tracker, _, _ = tracker_and_system()
    tracker.record_learning_progress("finetune", model_version="v1", loss=0.3, recorded_at=NOW)
    tracker.record_inference_stats("v1", requests=3, recorded_at=NOW)
    instances = {"MetadataTracker": tracker}
    answer = dispatch({"op": "get_learning_progress", "model_version": "v1", "stage": "finetune"}, SETTINGS,
                      instances)
    assert answer.status == 200
    assert orjson.loads(answer.json())["result"]["records"][0]["loss"] == 0.3
    stats = dispatch({"op": "get_inference_stats", "since": NOW.isoformat(), "limit": 1}, SETTINGS, instances)
    assert stats.status == 200 and orjson.loads(stats.json())["result"]["count"] == 1
    bad = dispatch({"op": "get_inference_stats", "limit": "5"}, SETTINGS, instances)
    assert bad.status == 400 and "limit must be int" in bad.body["error"]


STATS: dict[str, Any] = {"total_cases": 600, "correction_rate": 0.9, "quarantined_events": 0,
                         "error_type_distribution": {"a": 1, "b": 1, "c": 1}}


def registry_with_current(report: dict[str, Any], **flags: Any) -> dict[str, Any]:
    entry = {"version_id": "v_weekly_1", "dataset_id": "ds-1", "quality_report": report, **flags}
    return {"versions": {"v_weekly_1": entry}, "current_version": "v_weekly_1"}


def test_the_quarantine_rate_is_assessed_and_advised_on_above_five_percent() -> None:
    assert assess_quality(STATS)["quarantine_rate"] == 0.0
    assert not any("quarantined" in a for a in recommendations(STATS, 1))
    noisy = {**STATS, "quarantined_events": 100}
    assert assess_quality(noisy)["quarantine_rate"] == pytest.approx(100 / 700)
    [advice] = [a for a in recommendations(noisy, 1) if "quarantined" in a]
    assert advice.startswith("14.3% of incoming events were quarantined (100 of 700; above 5%)")
    assert "replay_dead_letters" in advice
    assert assess_quality({**STATS, "total_cases": 0})["quarantine_rate"] is None


def test_regressions_come_first_naming_the_model_the_figures_and_the_best_model() -> None:
    regression = {"metric": "wer", "model_version": "v3", "recorded_at": "2026-11-30T10:00:00+00:00",
                  "value": 0.25, "window_mean": 0.125, "relative_change": 1.0}
    advice = recommendations(STATS, 1, regressions=[regression], best_model={"model_version": "v2"})
    assert advice[0] == ("WER regressed on v3 at 2026-11-30T10:00:00+00:00: 0.25 against 0.125 before (+100%): "
                         "compare the dataset version it was trained on with the previous one (compare_versions), "
                         "or go back to the best model so far (v2).")
    many = [{**regression, "recorded_at": f"2026-11-{day:02d}T00:00:00+00:00"} for day in range(1, 6)]
    advice = recommendations(STATS, 1, regressions=many)
    assert sum("regressed" in a for a in advice) == 3 and "2026-11-05" in advice[0]
    assert "2 earlier regressions" in advice[3]


def test_the_current_datasets_failed_quality_and_uneven_splits_are_advised_on() -> None:
    report = {"passed": False, "thresholds": {"min_overall_score": 0.9}, "quality_metrics": {
        "overall_score": 0.82, "issues": [
            {"severity": "error", "category": "threshold", "message": "validity 0.7 < min_validity 0.95"},
            {"severity": "warning", "category": "split", "message": "split 'val' is empty (val_ratio 0.1): ..."}]}}
    dataset = current_dataset_quality(registry_with_current(report, quality_failed=True))
    assert dataset is not None and dataset["split_warnings"] == ["split 'val' is empty (val_ratio 0.1): ..."]
    advice = recommendations(STATS, 1, dataset_quality=dataset)
    assert advice[0].startswith("The current dataset version v_weekly_1 (registered flagged: allow_failed_quality) "
                                "did not pass its quality check (overall 0.82, minimum 0.9: validity 0.7 < ")
    assert advice[1] == "The current dataset version v_weekly_1 has uneven splits: split 'val' is empty " \
                        "(val_ratio 0.1): ...."
    passed = current_dataset_quality(registry_with_current({"passed": True, "quality_metrics": {"issues": []}}))
    assert recommendations(STATS, 1, dataset_quality=passed) == recommendations(STATS, 1)
    assert current_dataset_quality({"versions": {}, "current_version": None}) is None
