"""Training-metric history as values: where each record kind is kept, the trend points and their snapshots.

A snapshot holds every performance point stored up to its watermark; a trend read adds the points stored
since (the tail), so it never decodes the whole history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.trends import METRICS, as_utc

# Each record kind has its own collection.
KIND_COLLECTIONS: dict[str, str] = {
    "performance": "performance_history",
    "model_version": "model_versions",
    "learning_progress": "learning_progress",
    "inference_stats": "inference_stats",
}

# The fields a trend or report needs; snapshots and tail reads carry only these.
POINT_FIELDS: tuple[str, ...] = ("record_id", "recorded_at", "model_version", "stored_at", *METRICS)
# Tail reads start this long before the snapshot's watermark. Firestore reads are strongly consistent, so a
# record stored before the watermark was in the snapshot's read; the second is cheap insurance (merged by id).
# Longer would re-read a whole burst: at 140 records/s, 30 s of overlap is 4k documents and seconds per trend.
SNAPSHOT_OVERLAP = timedelta(seconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Snapshot:
    """The performance points stored up to `watermark` (the largest stored_at they include)."""

    points: list[dict[str, Any]]
    watermark: datetime | None
    generation: str | None = None
    # How many of `points` were stored in the overlap (watermark - SNAPSHOT_OVERLAP .. watermark); None: unknown.
    overlap_count: int | None = None


def merge_points(*sources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points from several reads, one per record id (later sources win)."""
    merged: dict[str, dict[str, Any]] = {}
    for source in sources:
        for point in source:
            merged[str(point["record_id"])] = point
    return list(merged.values())


def with_tail(snapshot_points: list[dict[str, Any]], tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A snapshot's points (one per record id) with a tail read: the tail's version of a record wins."""
    if not tail:
        return snapshot_points
    newer = merge_points(tail)
    ids = {str(point["record_id"]) for point in newer}
    return [*(p for p in snapshot_points if p["record_id"] not in ids), *newer]


def compact_point(document: dict[str, Any]) -> dict[str, Any]:
    """A stored record reduced to POINT_FIELDS, timestamps as ISO text (the snapshot's form)."""
    point = {name: document.get(name) for name in POINT_FIELDS}
    for name in ("recorded_at", "stored_at"):
        moment = as_utc(point[name])
        point[name] = moment.isoformat() if moment else None
    return point


def build_snapshot(points: Iterable[dict[str, Any]]) -> Snapshot:
    """A snapshot of `points` whose watermark is the latest stored_at among them."""
    compact = [compact_point(point) for point in points]
    stamps = [moment for p in compact if (moment := as_utc(p["stored_at"])) is not None]
    watermark = max(stamps, default=None)
    overlap = None if watermark is None else sum(1 for moment in stamps if moment >= watermark - SNAPSHOT_OVERLAP)
    return Snapshot(points=compact, watermark=watermark, overlap_count=overlap)
