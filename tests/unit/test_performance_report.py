"""The performance report on a small hand-made history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.metric_records import ModelVersionRecord
from shared.domain.performance_report import performance_report

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def perf(day: int, version: str, wer: float, cer: float) -> dict[str, Any]:
    """A stored performance document."""
    return {"kind": "performance", "model_version": version, "wer": wer, "cer": cer, "error_rate": 0.1,
            "correction_rate": 0.5, "inference_time": 0.4, "recorded_at": T0 + timedelta(days=day)}


HISTORY = [
    perf(0, "v1", 0.30, 0.12),
    perf(1, "v1", 0.28, 0.10),
    perf(2, "v2", 0.20, 0.08),
    perf(3, "v2", 0.22, 0.08),
    perf(4, "v3", 0.35, 0.09),  # v3 regresses on WER: mean of the 4 before is 0.25 -> +40 %
]
VERSIONS = [
    ModelVersionRecord(version_id="v1", model_name="whisper-base", training_data_size=100,
                       dataset_version_id="ds-1", recorded_at=T0),
    {"kind": "model_version", "version_id": "v2", "model_name": "whisper-base", "training_data_size": 250,
     "dataset_version_id": "ds-2", "recorded_at": "2026-11-02T00:00:00+00:00"},
]


def report() -> dict[str, Any]:
    """The report over the hand-made history, records deliberately out of order."""
    return performance_report(list(reversed(HISTORY)), VERSIONS, NOW)


def test_per_version_statistics() -> None:
    versions = report()["model_versions"]
    assert list(versions) == ["v1", "v2", "v3"]
    v1 = versions["v1"]
    assert v1["count"] == 2
    assert v1["wer"] == {"mean": pytest.approx(0.29), "min": 0.28, "max": 0.30}
    assert v1["cer"] == {"mean": pytest.approx(0.11), "min": 0.10, "max": 0.12}
    assert v1["latest"]["recorded_at"] == "2026-11-02T00:00:00+00:00"
    assert v1["latest"]["wer"] == 0.28
    assert v1["dataset_version_id"] == "ds-1"
    assert versions["v2"]["wer"]["mean"] == pytest.approx(0.21)
    assert versions["v3"]["registered"] is False
    assert versions["v3"]["dataset_version_id"] is None


def test_best_model_has_lowest_mean_wer() -> None:
    best = report()["best_model"]
    assert best["model_version"] == "v2"
    assert best["mean_wer"] == pytest.approx(0.21)
    assert best["dataset_version_id"] == "ds-2"


def test_regression_comes_with_evidence() -> None:
    [regression] = report()["regressions"]
    assert regression["metric"] == "wer"
    assert regression["model_version"] == "v3"
    assert regression["value"] == 0.35
    assert regression["window_mean"] == pytest.approx(0.25)
    assert regression["relative_change"] == pytest.approx(0.4)
    assert regression["threshold"] == 0.2
    assert regression["baseline_model_versions"] == ["v1", "v2"]
    assert regression["recorded_at"] == "2026-11-05T00:00:00+00:00"


def test_trend_summary_and_lineage() -> None:
    data = report()
    wer = data["trends"]["wer"]
    assert (wer["first"], wer["last"], wer["best"], wer["count"]) == (0.30, 0.35, 0.20, 5)
    assert wer["improvement_percent"] == pytest.approx(-16.666666, rel=1e-6)  # (0.30 - 0.35) / 0.30
    assert data["trends"]["cer"]["improvement_percent"] == pytest.approx(25.0)  # (0.12 - 0.09) / 0.12
    assert data["lineage"] == {
        "v1": {"dataset_version_id": "ds-1", "model_name": "whisper-base", "training_data_size": 100,
               "registered_at": "2026-11-01T00:00:00+00:00"},
        "v2": {"dataset_version_id": "ds-2", "model_name": "whisper-base", "training_data_size": 250,
               "registered_at": "2026-11-02T00:00:00+00:00"},
    }
    assert data["generated_at"] == "2026-11-30T00:00:00+00:00"
    assert data["record_count"] == 5
    assert data["period"] == {"first_recorded_at": "2026-11-01T00:00:00+00:00",
                              "last_recorded_at": "2026-11-05T00:00:00+00:00"}


def test_report_is_plain_json() -> None:
    data = report()
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_empty_history() -> None:
    data = performance_report([], [], NOW)
    assert data["model_versions"] == {}
    assert data["best_model"] is None
    assert data["regressions"] == []
    assert data["trends"]["wer"]["count"] == 0
    assert data["lineage"] == {}
    json.dumps(data, allow_nan=False)
