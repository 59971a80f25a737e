"""The relative-rate-of-change rule on synthetic metric series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.anomalies import detect_anomalies, metric_anomalies
from shared.domain.trends import TrendPoint

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def points(values: list[float], versions: list[str] | None = None) -> list[TrendPoint]:
    """A daily series of values."""
    versions = versions or ["v1"] * len(values)
    return [TrendPoint(T0 + timedelta(days=i), v, m) for i, (v, m) in enumerate(zip(values, versions, strict=True))]


def test_steady_series_raises_no_flag() -> None:
    steady = [0.20, 0.21, 0.19, 0.20, 0.22, 0.20, 0.19, 0.21, 0.20, 0.21]
    assert detect_anomalies(points(steady), "wer") == []


def test_synthetic_wer_regression_is_flagged_with_evidence() -> None:
    values = [0.20, 0.20, 0.20, 0.20, 0.20, 0.30]
    versions = ["v1", "v1", "v1", "v2", "v2", "v3"]
    [anomaly] = detect_anomalies(points(values, versions), "wer")
    assert anomaly.index == 5
    assert anomaly.value == 0.30
    assert anomaly.window_mean == pytest.approx(0.20)
    assert anomaly.relative_change == pytest.approx(0.5)  # (0.30 - 0.20) / 0.20
    assert anomaly.threshold == 0.2
    assert anomaly.window_size == 5
    assert anomaly.model_version == "v3"
    assert anomaly.baseline_model_versions == ("v1", "v2")
    assert anomaly.recorded_at == T0 + timedelta(days=5)
    evidence = anomaly.to_dict()
    assert evidence["relative_change_percent"] == pytest.approx(50.0)
    assert evidence["recorded_at"] == "2026-11-06T00:00:00+00:00"


def test_improvement_of_a_lower_is_better_metric_is_not_flagged() -> None:
    assert detect_anomalies(points([0.30, 0.30, 0.30, 0.30, 0.10]), "wer") == []


def test_higher_is_better_metric_flags_a_drop() -> None:
    [anomaly] = detect_anomalies(points([0.50, 0.50, 0.50, 0.50, 0.30]), "correction_rate")
    assert anomaly.relative_change == pytest.approx(-0.4)
    assert detect_anomalies(points([0.50, 0.50, 0.50, 0.50, 0.90]), "correction_rate") == []


def test_window_mean_uses_only_the_last_window_points() -> None:
    # Window 2 sees [0.10, 0.10] before the last point: +40 % flags; the old 0.50s do not matter.
    series = points([0.50, 0.50, 0.10, 0.10, 0.14])
    [anomaly] = detect_anomalies(series, "wer", window=2, min_history=2, threshold=0.3)
    assert anomaly.index == 4
    assert anomaly.window_mean == pytest.approx(0.10)
    assert anomaly.relative_change == pytest.approx(0.4)


def test_threshold_is_strict_and_short_history_is_not_judged() -> None:
    # Exactly +20 % is not more than the threshold.
    assert detect_anomalies(points([0.25, 0.25, 0.25, 0.30]), "wer") == []
    # Only two earlier points: below min_history 3, so no verdict even on a doubling.
    assert detect_anomalies(points([0.2, 0.2, 0.4]), "wer") == []
    assert len(detect_anomalies(points([0.2, 0.2, 0.4]), "wer", min_history=2)) == 1


def test_zero_window_mean_is_not_judged() -> None:
    assert detect_anomalies(points([0.0, 0.0, 0.0, 0.5]), "wer") == []


def test_lasting_regression_is_reported_where_it_starts() -> None:
    values = [0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
    flagged = [a.index for a in detect_anomalies(points(values), "wer")]
    # Index 5 (+50 %) and 6 (mean 0.22: +36 %), 7 (0.24: +25 %); from 8 on the mean is >= 0.26.
    assert flagged == [5, 6, 7]


def test_metric_anomalies_reads_stored_records_in_time_order() -> None:
    records = [
        {"model_version": "v2", "inference_time": 0.9, "recorded_at": T0 + timedelta(days=4)},
        *({"model_version": "v1", "inference_time": 0.5, "recorded_at": T0 + timedelta(days=d)} for d in range(4)),
    ]
    [anomaly] = metric_anomalies(records, "inference_time")
    assert anomaly.model_version == "v2"
    assert anomaly.relative_change == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"window": 0}, "window"), ({"threshold": 0}, "threshold"), ({"min_history": 9}, "min_history")],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        detect_anomalies(points([0.1]), "wer", **kwargs)  # type: ignore[arg-type]
