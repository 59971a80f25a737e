"""Use cases that read training metrics: the performance history (snapshot + tail), trends, reports, lineage.

A trend read decodes the latest snapshot and only the points stored since; when that tail grows past
SNAPSHOT_REFRESH_TAIL, the read publishes a fresh snapshot so the next one is short again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared.domain.anomalies import metric_anomalies
from shared.domain.metric_history import EPOCH, SNAPSHOT_OVERLAP, Snapshot, build_snapshot, with_tail
from shared.domain.monitoring import DEFAULT_LIMIT, monitoring_read, report_summaries
from shared.domain.performance_report import performance_report
from shared.domain.trend_plot import render_trend_png
from shared.domain.trends import as_utc, performance_trend, since_time, time_ordered
from shared.ports import MetricStore

# A trend read retries this often when a snapshot was published (and the recent points pruned) while it read.
HISTORY_ATTEMPTS = 3
# A trend read that found more new records than this since the snapshot writes a fresh snapshot.
SNAPSHOT_REFRESH_TAIL = 500


def recent_tail(store: MetricStore, snapshot: Snapshot) -> list[dict[str, Any]]:
    """The recent points a snapshot does not hold (and, when that is cheaper to get, some it does).

    The overlap before the watermark is insurance against a record the snapshot's read missed: it is counted,
    not read, and read only when the count differs from the snapshot's (a point it does not hold is there).
    """
    watermark = snapshot.watermark
    if watermark is None:  # an empty snapshot saw no record: everything stored since is among the recent points
        return store.recent_points(EPOCH)
    window = watermark - SNAPSHOT_OVERLAP
    if snapshot.overlap_count is not None and store.recent_count(window, watermark) == snapshot.overlap_count:
        return store.recent_points(watermark, after=True)
    return store.recent_points(window)


def performance_history(store: MetricStore) -> tuple[list[dict[str, Any]], Snapshot | None, int]:
    """Every performance point: the latest snapshot plus what was stored since; and the tail's length.

    The tail comes from the store's recent points, which a newly published snapshot prunes: when the published
    generation changed during the read, it is read again (then, after HISTORY_ATTEMPTS, the whole history).
    """
    snapshot = None
    for _ in range(HISTORY_ATTEMPTS):
        snapshot = store.load_snapshot()
        if snapshot is None:
            break
        tail = recent_tail(store, snapshot)
        if store.snapshot_generation() == snapshot.generation:
            return with_tail(snapshot.points, tail), snapshot, len(tail)
    points = store.performance_points(None)
    return points, snapshot, len(points)


def refresh_snapshot(store: MetricStore, points: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Store a new snapshot (of `points`, or of snapshot + tail); what it holds."""
    if points is None:
        points, _, _ = performance_history(store)
    snapshot = build_snapshot(points)
    generation = store.save_snapshot(snapshot)
    watermark = snapshot.watermark.isoformat() if snapshot.watermark else None
    return {"generation": generation, "count": len(snapshot.points), "watermark": watermark}


def current_points(store: MetricStore) -> list[dict[str, Any]]:
    """Every performance point (snapshot + newer records), refreshing the snapshot when it lags."""
    points, _, tail = performance_history(store)
    if tail > SNAPSHOT_REFRESH_TAIL:
        refresh_snapshot(store, points)
    return points


def trend(
    store: MetricStore, metric: str, model_version: str | None = None, since: datetime | str | None = None
) -> dict[str, Any]:
    """The metric over time: points, first/last/best/worst/mean, improvement (positive = better)."""
    start = since_time(since)  # a bad one is refused before anything is read
    points = current_points(store)
    if model_version is not None:
        points = [p for p in points if p.get("model_version") == model_version]
    if start is not None:
        points = [p for p in points if (t := as_utc(p.get("recorded_at"))) is not None and t >= start]
    return performance_trend(points, metric).to_dict()


def report(store: MetricStore, now: datetime, **rule: Any) -> dict[str, Any]:
    """Per model version statistics, best model, regressions with evidence, trends and lineage; and the
    learning progress and inference stats summarized per model version."""
    found = performance_report(current_points(store), list(store.records("model_version")), now, **rule)
    return {**found, **monitoring_summaries(store)}


def trend_plot(store: MetricStore, metric: str) -> bytes:
    """PNG of the metric's trend, regressions circled."""
    points = current_points(store)
    return render_trend_png(performance_trend(points, metric), metric_anomalies(points, metric))


def latest_registration(store: MetricStore, version_id: str | None = None) -> dict[str, Any] | None:
    """The latest model version registration (of `version_id`, else of any version) by recorded_at, or None.

    Reads the registrations (one small document each; a deployment has tens of model versions, not millions)."""
    found = store.records_of_version("model_version", version_id) if version_id else store.records("model_version")
    ordered = time_ordered(found)
    return dict(ordered[-1][1]) if ordered else None


def current_model_version(store: MetricStore) -> str | None:
    """The model version registered last (the latest `model_version` record by recorded_at), or None."""
    latest = latest_registration(store)
    return str(latest.get("version_id") or latest.get("model_version")) if latest else None


def model_lineage(store: MetricStore, version_id: str) -> dict[str, Any]:
    """A model version's registrations, the dataset version it was trained on, its performance records."""
    registrations = [r for _, r in time_ordered(store.records_of_version("model_version", version_id))]
    performance = store.records_of_version("performance", version_id, ("record_id", "recorded_at"))
    latest = registrations[-1] if registrations else {}
    return {
        "version_id": version_id,
        "registered": bool(registrations),
        "model_name": latest.get("model_name"),
        "dataset_version_id": latest.get("dataset_version_id"),
        "registrations": [r.get("record_id") for r in registrations],
        "performance_record_ids": sorted(str(r["record_id"]) for r in performance),
    }


def monitoring_records(
    store: MetricStore, kind: str, model_version: str | None = None, stage: str | None = None,
    since: datetime | str | None = None, limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Learning progress or inference stats read back (shared/domain/monitoring.py): the newest `limit`
    matching records and a summary per model version of all of them. One model version's records come from a
    filtered query; without one, every record of the kind is read (tens of thousands at most: one per
    training stage or serving window, not per request)."""
    found = store.records_of_version(kind, model_version) if model_version else store.records(kind)
    return monitoring_read(found, kind, model_version=model_version, stage=stage, since=since, limit=limit)


def monitoring_summaries(store: MetricStore) -> dict[str, Any]:
    """Per model version summaries of the learning progress and the inference stats (the performance report's
    `learning_progress` and `inference_stats`)."""
    return report_summaries(store.records("learning_progress"), store.records("inference_stats"))
