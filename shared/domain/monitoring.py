"""Learning progress and inference stats read back: the records, filtered and time-ordered, and a summary.

Both kinds carry free-form figures besides their fixed fields (CONTRACT.md: a learning_progress record has
`stage`, `model_version` and figures such as `loss` or `epoch`; an inference_stats record has `model_version`
and counts and latencies). The summary therefore treats every numeric figure alike: per model version, each
figure's first, last, min, max and mean over time, and its sum (meaningful for counts, harmless for the rest).
Everything returned is plain JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from shared.domain.trends import as_utc, finite_number, since_time, time_ordered

# Fields every record has that are not figures.
RECORD_FIELDS = frozenset({"kind", "record_id", "recorded_at", "stored_at", "model_version", "stage", "schema_version"})
DEFAULT_LIMIT = 100  # records returned (the newest); the summary always covers every matching record


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _figures(record: Mapping[str, Any]) -> dict[str, float]:
    """The record's numeric figures (booleans and non-finite numbers are not figures)."""
    found = {}
    for name, value in record.items():
        if name in RECORD_FIELDS or isinstance(value, bool):
            continue
        number = finite_number(value)
        if number is not None:
            found[name] = number
    return found


def _figure_summary(series: list[tuple[datetime | None, float]]) -> dict[str, Any]:
    values = [value for _, value in series]
    return {
        "count": len(values), "first": values[0], "last": values[-1], "min": min(values), "max": max(values),
        "mean": math.fsum(values) / len(values), "sum": math.fsum(values),
        "last_recorded_at": _iso(series[-1][0]),
    }


def plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record as JSON: timestamps as ISO text."""
    return {key: (_iso(as_utc(value)) if isinstance(value, datetime) else value) for key, value in record.items()}


def select(
    records: Iterable[Mapping[str, Any]], *, model_version: str | None = None, stage: str | None = None,
    since: datetime | str | None = None,
) -> list[tuple[datetime | None, Mapping[str, Any]]]:
    """The records matching the filters, oldest first (by recorded_at; undated ones last)."""
    start = since_time(since)
    chosen = []
    for moment, record in time_ordered(records):
        if model_version is not None and record.get("model_version") != model_version:
            continue
        if stage is not None and record.get("stage") != stage:
            continue
        if start is not None and (moment is None or moment < start):
            continue
        chosen.append((moment, record))
    return chosen


def summarize(ordered: list[tuple[datetime | None, Mapping[str, Any]]], *, by_stage: bool) -> dict[str, Any]:
    """Per model version: how many records, when, each figure's summary and (learning progress) the stages in
    the order first seen with each one's latest figures."""
    versions: dict[str, dict[str, Any]] = {}
    series: dict[str, dict[str, list[tuple[datetime | None, float]]]] = {}
    for moment, record in ordered:
        version = str(record.get("model_version") or "")
        entry = versions.setdefault(version, {"count": 0, "first_recorded_at": _iso(moment), "stages": {}})
        entry["count"] += 1
        entry["last_recorded_at"] = _iso(moment)
        figures = _figures(record)
        for name, value in figures.items():
            series.setdefault(version, {}).setdefault(name, []).append((moment, value))
        if by_stage:
            entry["stages"][str(record.get("stage"))] = {"recorded_at": _iso(moment), **figures}
    for version, entry in versions.items():
        entry["figures"] = {name: _figure_summary(values) for name, values in sorted(series.get(version, {}).items())}
        if not by_stage:
            del entry["stages"]
    return dict(sorted(versions.items()))


def monitoring_read(
    records: Iterable[Mapping[str, Any]], kind: str, *, model_version: str | None = None, stage: str | None = None,
    since: datetime | str | None = None, limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """What get_learning_progress / get_inference_stats answer: the newest `limit` matching records (oldest
    first), how many matched, and the summary per model version of all of them."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    ordered = select(records, model_version=model_version, stage=stage, since=since)
    newest = ordered[len(ordered) - limit:] if limit else []
    return {
        "kind": kind,
        "filters": {"model_version": model_version, "stage": stage, "since": _iso(as_utc(since))},
        "count": len(ordered),
        "records": [plain(record) for _, record in newest],
        "by_model_version": summarize(ordered, by_stage=kind == "learning_progress"),
    }


def report_summaries(
    learning_progress: Iterable[Mapping[str, Any]], inference_stats: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The performance report's `learning_progress` and `inference_stats`: each kind summarized per model
    version (summarize)."""
    return {
        "learning_progress": summarize(select(learning_progress), by_stage=True),
        "inference_stats": summarize(select(inference_stats), by_stage=False),
    }
