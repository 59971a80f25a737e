"""PNG rendering of a trend with anomalies."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import matplotlib.image

from shared.domain.anomalies import detect_anomalies
from shared.domain.trend_plot import render_trend_png
from shared.domain.trends import performance_trend

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode(png: bytes) -> tuple[int, ...]:
    """Shape (height, width, channels) of a PNG."""
    return tuple(matplotlib.image.imread(io.BytesIO(png), format="png").shape)


def test_wer_trend_with_anomaly_renders_a_png_of_the_requested_size() -> None:
    values = [0.20, 0.21, 0.19, 0.20, 0.20, 0.32, 0.30, 0.25]
    records = [{"model_version": "v1", "wer": v, "recorded_at": T0 + timedelta(days=i)} for i, v in enumerate(values)]
    trend = performance_trend(records, "wer")
    anomalies = detect_anomalies(trend.points, "wer")
    assert [a.index for a in anomalies] == [5, 6]
    png = render_trend_png(trend, anomalies)
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 10_000
    assert decode(png)[:2] == (500, 1000)


def test_anomaly_marks_change_the_picture() -> None:
    records = [{"model_version": "v1", "wer": v, "recorded_at": T0 + timedelta(days=i)}
               for i, v in enumerate([0.2, 0.2, 0.2, 0.2, 0.4])]
    trend = performance_trend(records, "wer")
    assert render_trend_png(trend) != render_trend_png(trend, detect_anomalies(trend.points, "wer"))


def test_empty_and_undated_trends_still_render() -> None:
    empty = render_trend_png(performance_trend([], "cer"), size_px=(400, 300))
    assert empty.startswith(PNG_SIGNATURE)
    assert decode(empty)[:2] == (300, 400)
    undated = performance_trend([{"model_version": "v1", "cer": 0.1}, {"model_version": "v1", "cer": 0.2}], "cer")
    assert render_trend_png(undated).startswith(PNG_SIGNATURE)
