"""How a performance metric moves over time (`MetadataTracker.get_performance_trend`).

Direction: ``wer``, ``cer``, ``error_rate`` and ``inference_time`` are lower-is-better.
``correction_rate`` is higher-is-better: it is the share of failed transcriptions that
received a human correction, i.e. how much of the model's failure turns into learning
data, so more is better. Change ``HIGHER_IS_BETTER`` if a producer means otherwise.

Sign convention: ``improvement_percent`` is positive when the metric got better from the
first to the last point, whatever the direction:

* lower-is-better: ``(first - last) / first * 100`` (WER 0.20 -> 0.15 gives +25.0)
* higher-is-better: ``(last - first) / first * 100``

``improvement_absolute`` follows the same sign in the metric's own units. Defined edge
cases: an empty history gives ``count == 0`` and ``None`` for every figure; a single point
gives 0.0; a first value of 0 gives 0.0 when the last is also 0 and ``None`` otherwise
(a relative change from zero has no finite value) while ``improvement_absolute`` stays
defined.

Ordering: points are sorted by ``recorded_at`` (oldest first; equal timestamps keep their
input order). Records without a timestamp come after all dated ones, in input order.
Records whose value for the metric is missing or not a finite number are skipped and
counted in ``skipped``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from shared.domain.metric_records import PerformanceRecord
from shared.errors import BadInput

LOWER_IS_BETTER: frozenset[str] = frozenset({"wer", "cer", "error_rate", "inference_time"})
HIGHER_IS_BETTER: frozenset[str] = frozenset({"correction_rate"})
METRICS: tuple[str, ...] = ("wer", "cer", "error_rate", "correction_rate", "inference_time")

PerformanceLike = PerformanceRecord | Mapping[str, Any]


def is_lower_better(metric: str) -> bool:
    """Whether a smaller value of `metric` is better; unknown metrics are refused."""
    if metric in LOWER_IS_BETTER:
        return True
    if metric in HIGHER_IS_BETTER:
        return False
    raise BadInput(f"unknown metric {metric!r}; known metrics: {', '.join(METRICS)}")


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One value of the metric at one time, from one model version."""

    recorded_at: datetime | None
    value: float
    model_version: str | None
    # recorded_at.isoformat() when the input already had it (snapshots do): saves formatting 10k timestamps.
    recorded_at_text: str | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "recorded_at": self.recorded_at_text or _iso(self.recorded_at),
            "value": self.value,
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class Trend:
    """A metric's history and its summary figures."""

    metric: str
    lower_is_better: bool
    points: tuple[TrendPoint, ...] = ()
    first: float | None = None
    last: float | None = None
    best: float | None = None
    worst: float | None = None
    mean: float | None = None
    best_point: TrendPoint | None = None
    improvement_absolute: float | None = None
    improvement_percent: float | None = None
    skipped: int = 0
    values: tuple[float, ...] = field(default=(), repr=False)

    @property
    def count(self) -> int:
        """How many points the trend holds."""
        return len(self.points)

    def summary(self) -> dict[str, Any]:
        """The figures without the points, JSON-ready."""
        return {
            "metric": self.metric,
            "direction": "lower_is_better" if self.lower_is_better else "higher_is_better",
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "best": self.best,
            "worst": self.worst,
            "mean": self.mean,
            "best_at": self.best_point.to_dict() if self.best_point else None,
            "first_recorded_at": _iso(self.points[0].recorded_at) if self.points else None,
            "last_recorded_at": _iso(self.points[-1].recorded_at) if self.points else None,
            "improvement_absolute": self.improvement_absolute,
            "improvement_percent": self.improvement_percent,
            "skipped": self.skipped,
        }

    def to_dict(self) -> dict[str, Any]:
        """Summary plus every point, JSON-ready."""
        return {
            **self.summary(),
            "points": [
                {"recorded_at": p.recorded_at_text or _iso(p.recorded_at), "value": p.value,
                 "model_version": p.model_version}
                for p in self.points
            ],
        }


def _iso(moment: datetime | None) -> str | None:
    """ISO text of an optional timestamp."""
    return moment.isoformat() if moment else None


def field_value(record: Any, name: str) -> Any:
    """Read a field from a model or from a stored document alike."""
    # dict first: the ABC check against Mapping costs more than the rest of a 10k-record trend.
    if type(record) is dict or isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def as_utc(value: Any) -> datetime | None:
    """A stored timestamp (datetime or ISO text) as an aware UTC datetime, or None."""
    if value is None:
        return None
    if type(value) is str:
        value = datetime.fromisoformat(value)
    elif isinstance(value, str):
        value = datetime.fromisoformat(str(value))
    if value.__class__ is datetime and value.tzinfo is UTC:  # the common case, without a conversion
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"recorded_at must be a datetime or ISO text, got {type(value).__name__}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def since_time(value: datetime | str | None) -> datetime | None:
    """A caller's `since` filter as an aware UTC datetime (None: no filter); BadInput naming the value when it is
    no ISO 8601 time, since a caller's typo is bad input, not a server error."""
    if value is None or isinstance(value, datetime):
        return as_utc(value)
    try:
        return as_utc(datetime.fromisoformat(str(value)))
    except ValueError:
        raise BadInput(f"since must be an ISO 8601 time such as 2026-11-27T10:00:00Z or 2026-11-27, "
                       f"got {value!r}") from None


def finite_number(value: Any) -> float | None:
    """The value as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def time_ordered(records: Iterable[Any]) -> list[tuple[datetime | None, Any]]:
    """Records with their UTC timestamps, oldest first, undated last, ties in input order."""
    dated: list[tuple[datetime, Any]] = []
    undated: list[tuple[datetime | None, Any]] = []
    for record in records:
        moment = as_utc(field_value(record, "recorded_at"))
        if moment is None:
            undated.append((None, record))
        else:
            dated.append((moment, record))
    # list.sort is stable, so equal timestamps keep their input order.
    dated.sort(key=lambda item: item[0])
    return [*dated, *undated]


def is_utc_isoformat(text: str) -> bool:
    """Whether `text` (already parsed by as_utc) is exactly what isoformat() writes for its UTC time."""
    size = len(text)
    return (
        (size == 25 or (size == 32 and text[19] == "." and text[20:26] != "000000"))
        and text.endswith("+00:00")
        and text[10] == "T"
    )


def series(records: Iterable[PerformanceLike], metric: str) -> tuple[list[TrendPoint], int]:
    """The metric's points in time order, and how many records had no usable value."""
    dated: list[tuple[datetime, TrendPoint]] = []
    undated: list[TrendPoint] = []
    skipped = 0
    for record in records:
        if type(record) is dict:  # stored documents and snapshot points: no per-field dispatch
            raw, stamp, version = record.get(metric), record.get("recorded_at"), record.get("model_version")
        else:
            raw = field_value(record, metric)
            stamp, version = field_value(record, "recorded_at"), field_value(record, "model_version")
        value = raw if type(raw) is float and math.isfinite(raw) else finite_number(raw)
        if value is None:
            skipped += 1
            continue
        moment = as_utc(stamp)
        if moment is None:
            undated.append(TrendPoint(None, value, version))
            continue
        text = stamp if type(stamp) is str and is_utc_isoformat(stamp) else None
        dated.append((moment, TrendPoint(moment, value, version, text)))
    # list.sort is stable, so equal timestamps keep their input order (skipped records change no order).
    dated.sort(key=itemgetter(0))
    return [*(point for _, point in dated), *undated], skipped


def _improvement(first: float, last: float, lower_is_better: bool) -> tuple[float, float | None]:
    """Absolute and percent improvement, positive meaning better."""
    absolute = (first - last) if lower_is_better else (last - first)
    if first == 0:
        return absolute, (0.0 if last == 0 else None)
    return absolute, absolute / abs(first) * 100.0


def performance_trend(records: Iterable[PerformanceLike], metric: str) -> Trend:
    """The trend of `metric` over performance records (models or stored dicts)."""
    lower = is_lower_better(metric)
    points, skipped = series(records, metric)
    if not points:
        return Trend(metric=metric, lower_is_better=lower, skipped=skipped)
    values = tuple(point.value for point in points)
    # First best point wins a tie (index() finds the first), so "best_at" names when it was first reached.
    best_index = values.index(min(values) if lower else max(values))
    absolute, percent = _improvement(values[0], values[-1], lower)
    return Trend(
        metric=metric,
        lower_is_better=lower,
        points=tuple(points),
        first=values[0],
        last=values[-1],
        best=values[best_index],
        worst=(max if lower else min)(values),
        mean=math.fsum(values) / len(values),
        best_point=points[best_index],
        improvement_absolute=absolute,
        improvement_percent=percent,
        skipped=skipped,
        values=values,
    )
