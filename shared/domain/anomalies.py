"""Deequ-style anomaly detection on a metric's history: relative rate of change.

Each point is compared with the mean of the ``window`` points just before it (Deequ's
``RelativeRateOfChangeStrategy``, against a window mean instead of the single previous
value so one noisy evaluation does not set the baseline):

    relative_change = (value - window_mean) / window_mean

A lower-is-better metric (wer, cer, error_rate, inference_time) is flagged when it rises
by more than ``threshold``; a higher-is-better one (correction_rate) when it falls by more
than ``threshold``. Improvements are never flagged: they are not regressions.

Defaults: ``window = 5`` points, ``threshold = 0.2`` (a 20 % move against the recent
mean; evaluation noise on a fixed test set is typically a few percent), and
``min_history = 3`` (points with fewer earlier points are not judged, so a
baseline of one or two evaluations does not raise alarms). A window whose mean is 0 has
no relative change and is not judged. The window includes earlier flagged points:
a lasting regression is reported where it starts, then becomes the new baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.domain.trends import PerformanceLike, TrendPoint, is_lower_better, series
from shared.errors import BadInput

DEFAULT_WINDOW = 5
DEFAULT_THRESHOLD = 0.2
DEFAULT_MIN_HISTORY = 3


@dataclass(frozen=True)
class Anomaly:
    """A flagged point and the evidence for flagging it."""

    metric: str
    index: int
    recorded_at: datetime | None
    model_version: str | None
    value: float
    window_mean: float
    relative_change: float
    threshold: float
    window_size: int
    baseline_model_versions: tuple[str, ...]
    lower_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready evidence."""
        return {
            "metric": self.metric,
            "index": self.index,
            "recorded_at": self.recorded_at.isoformat() if self.recorded_at else None,
            "model_version": self.model_version,
            "value": self.value,
            "window_mean": self.window_mean,
            "relative_change": self.relative_change,
            "relative_change_percent": self.relative_change * 100.0,
            "threshold": self.threshold,
            "window_size": self.window_size,
            "baseline_model_versions": list(self.baseline_model_versions),
            "direction": "lower_is_better" if self.lower_is_better else "higher_is_better",
        }


def _check_parameters(window: int, threshold: float, min_history: int) -> None:
    """Refuse parameters that would make the rule meaningless."""
    if window < 1:
        raise BadInput(f"window must be at least 1, got {window}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise BadInput(f"threshold must be a positive number, got {threshold}")
    if not 1 <= min_history <= window:
        raise BadInput(f"min_history must be between 1 and window ({window}), got {min_history}")


def detect_anomalies(
    points: Sequence[TrendPoint],
    metric: str,
    *,
    window: int = DEFAULT_WINDOW,
    threshold: float = DEFAULT_THRESHOLD,
    min_history: int = DEFAULT_MIN_HISTORY,
) -> list[Anomaly]:
    """Flag the points of a time-ordered series that moved the wrong way by more than threshold."""
    _check_parameters(window, threshold, min_history)
    lower = is_lower_better(metric)
    flagged: list[Anomaly] = []
    for index in range(min_history, len(points)):
        baseline = points[max(0, index - window) : index]
        mean = math.fsum(point.value for point in baseline) / len(baseline)
        if mean == 0:
            continue
        point = points[index]
        change = (point.value - mean) / abs(mean)
        if (change > threshold) if lower else (change < -threshold):
            versions = sorted({p.model_version for p in baseline if p.model_version is not None})
            flagged.append(
                Anomaly(
                    metric=metric,
                    index=index,
                    recorded_at=point.recorded_at,
                    model_version=point.model_version,
                    value=point.value,
                    window_mean=mean,
                    relative_change=change,
                    threshold=threshold,
                    window_size=len(baseline),
                    baseline_model_versions=tuple(versions),
                    lower_is_better=lower,
                )
            )
    return flagged


def metric_anomalies(records: Iterable[PerformanceLike], metric: str, **rule: Any) -> list[Anomaly]:
    """Anomalies of `metric` over performance records (models or stored dicts), in time order; `rule` is
    detect_anomalies' window, threshold and min_history."""
    points, _ = series(records, metric)
    return detect_anomalies(points, metric, **rule)
