"""Trend math of performance metrics over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.metric_records import PerformanceRecord
from shared.domain.trends import performance_trend

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def rec(day: int | None, wer: float, version: str = "v1", **other: Any) -> dict[str, Any]:
    """A stored performance document, `day` days after T0 (None: undated)."""
    return {
        "model_version": version,
        "wer": wer,
        "cer": other.get("cer", wer / 2),
        "correction_rate": other.get("correction_rate", 0.5),
        "recorded_at": None if day is None else T0 + timedelta(days=day),
    }


def test_wer_trend_is_ordered_by_time_with_hand_computed_figures() -> None:
    # Given out of order on purpose: the trend must sort by recorded_at.
    records = [rec(2, 0.18, "v2"), rec(0, 0.20), rec(3, 0.15, "v3"), rec(1, 0.22)]
    trend = performance_trend(records, "wer")
    assert [p.value for p in trend.points] == [0.20, 0.22, 0.18, 0.15]
    assert [p.model_version for p in trend.points] == ["v1", "v1", "v2", "v3"]
    assert trend.first == 0.20
    assert trend.last == 0.15
    assert trend.best == 0.15
    assert trend.worst == 0.22
    assert trend.mean == pytest.approx(0.1875)
    assert trend.improvement_absolute == pytest.approx(0.05)
    assert trend.improvement_percent == pytest.approx(25.0)  # (0.20 - 0.15) / 0.20 * 100
    assert trend.best_point is not None and trend.best_point.model_version == "v3"


def test_worse_wer_gives_negative_improvement() -> None:
    trend = performance_trend([rec(0, 0.10), rec(1, 0.12)], "wer")
    assert trend.improvement_percent == pytest.approx(-20.0)


def test_correction_rate_is_higher_is_better() -> None:
    records = [rec(0, 0.2, correction_rate=0.40), rec(1, 0.2, correction_rate=0.30),
               rec(2, 0.2, correction_rate=0.50)]
    trend = performance_trend(records, "correction_rate")
    assert not trend.lower_is_better
    assert trend.best == 0.50
    assert trend.worst == 0.30
    assert trend.improvement_percent == pytest.approx(25.0)  # (0.50 - 0.40) / 0.40 * 100


def test_empty_history_is_defined() -> None:
    trend = performance_trend([], "wer")
    assert trend.count == 0
    assert (trend.first, trend.last, trend.best, trend.improvement_percent) == (None, None, None, None)
    assert trend.summary()["count"] == 0


def test_single_point_has_zero_improvement() -> None:
    trend = performance_trend([rec(0, 0.3)], "wer")
    assert trend.improvement_percent == 0.0
    assert trend.best == trend.first == trend.last == 0.3


def test_zero_first_value() -> None:
    rising = performance_trend([rec(0, 0.0), rec(1, 0.1)], "wer")
    assert rising.improvement_percent is None
    assert rising.improvement_absolute == pytest.approx(-0.1)
    flat = performance_trend([rec(0, 0.0), rec(1, 0.0)], "wer")
    assert flat.improvement_percent == 0.0


def test_undated_records_follow_dated_ones_and_bad_values_are_skipped() -> None:
    records = [rec(None, 0.5), rec(1, 0.3), {"model_version": "v1", "recorded_at": T0}, rec(0, 0.4),
               {**rec(2, 0.1), "wer": float("nan")}]
    trend = performance_trend(records, "wer")
    assert [p.value for p in trend.points] == [0.4, 0.3, 0.5]
    assert trend.skipped == 2


def test_accepts_models_and_iso_text_alike() -> None:
    model = PerformanceRecord(model_version="v1", wer=0.3, cer=0.1, error_rate=0.2, correction_rate=0.5,
                              inference_time=0.4, recorded_at=T0)
    stored = {**rec(0, 0.2), "recorded_at": "2026-11-02T00:00:00Z"}
    trend = performance_trend([stored, model], "wer")
    assert [p.value for p in trend.points] == [0.3, 0.2]
    assert trend.summary()["last_recorded_at"] == "2026-11-02T00:00:00+00:00"


def test_unknown_metric_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown metric 'bleu'; known metrics: wer, cer"):
        performance_trend([rec(0, 0.1)], "bleu")


def test_to_dict_lists_points() -> None:
    data = performance_trend([rec(0, 0.2), rec(1, 0.1)], "wer").to_dict()
    assert data["points"] == [
        {"recorded_at": "2026-11-01T00:00:00+00:00", "value": 0.2, "model_version": "v1"},
        {"recorded_at": "2026-11-02T00:00:00+00:00", "value": 0.1, "model_version": "v1"},
    ]
    assert data["improvement_percent"] == pytest.approx(50.0)
    assert data["direction"] == "lower_is_better"


@pytest.mark.parametrize("text", [
    "2026-11-01T00:00:00+00:00", "2026-11-01T00:00:00Z", "2026-11-01T01:00:00+01:00",
    "2026-11-01T00:00:00.000000+00:00", "2026-11-01 00:00:00+00:00", "2026-11-01T00:00:00",
    "2026-11-01T00:00:00.250000+00:00", "2026-11-01T00:00:00.25+00:00",
])
def test_points_written_as_text_read_as_the_same_utc_time(text: str) -> None:
    # Snapshot points carry isoformat() text, reused as it is; any other spelling is parsed and rewritten.
    from_text = performance_trend([{**rec(0, 0.2), "recorded_at": text}], "wer").to_dict()["points"]
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    from_datetime = performance_trend([{**rec(0, 0.2), "recorded_at": moment}], "wer").to_dict()["points"]
    assert from_text == from_datetime
    assert from_text[0]["recorded_at"] == moment.isoformat()


def test_ties_keep_input_order_and_the_first_best_point_wins() -> None:
    records = [rec(1, 0.1, "b"), rec(0, 0.3, "a"), rec(1, 0.1, "c"), rec(2, 0.2, "d")]
    trend = performance_trend(records, "wer")
    assert [p.model_version for p in trend.points] == ["a", "b", "c", "d"]
    assert trend.best_point is not None and trend.best_point.model_version == "b"
