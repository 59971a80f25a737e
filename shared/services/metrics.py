"""Use cases of training metrics: record one record (pushed or called), read the history, take snapshots.

Each record kind has its own collection (``KIND_COLLECTIONS``); a record is stored once under
``record_id()`` (create-if-absent), so a redelivered or re-sent record is not counted twice.
Bad input is kept in the quarantine with its reason and acknowledged; store errors raise (retry).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.domain.metric_records import InvalidMetricRecord, MetricRecord, parse_metric_record, record_id
from shared.domain.quarantine import needs_whole_copy, quarantine_record
from shared.domain.trends import METRICS, as_utc

KIND_COLLECTIONS: dict[str, str] = {
    "performance": "performance_history",
    "model_version": "model_versions",
    "learning_progress": "learning_progress",
    "inference_stats": "inference_stats",
}
QUARANTINE_SOURCE = "record_metrics"
# The fields a trend or report needs; snapshots and tail reads carry only these.
POINT_FIELDS: tuple[str, ...] = ("record_id", "recorded_at", "model_version", "stored_at", *METRICS)
# Tail reads start this long before the snapshot's watermark. Firestore reads are strongly consistent, so a
# record stored before the watermark was in the snapshot's read; the second is cheap insurance (merged by id).
# Longer would re-read a whole burst: at 140 records/s, 30 s of overlap is 4k documents and seconds per trend.
SNAPSHOT_OVERLAP = timedelta(seconds=1)
# A trend read retries this often when a snapshot was published (and the recent points pruned) while it read.
HISTORY_ATTEMPTS = 3
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnstorableRecord(ValueError):
    """A valid record the store cannot hold (e.g. arrays inside arrays in Firestore); permanent."""


@dataclass(frozen=True)
class Snapshot:
    """The performance points stored up to `watermark` (the largest stored_at they include)."""

    points: list[dict[str, Any]]
    watermark: datetime | None
    generation: str | None = None
    # How many of `points` were stored in the overlap (watermark - SNAPSHOT_OVERLAP .. watermark); None: unknown.
    overlap_count: int | None = None


class MetricStore(Protocol):
    """Where metric records, rejected payloads and performance snapshots are kept."""

    def create(self, kind: str, record_id: str, document: dict[str, Any]) -> bool:
        """Store a new record; False when `record_id` already exists; UnstorableRecord when it cannot."""

    def quarantine(self, quarantine_id: str, record: dict[str, Any]) -> bool:
        """Keep a rejected payload with its reason; False when already kept."""

    def records(self, kind: str) -> Iterator[dict[str, Any]]:
        """Every stored record of `kind`, in no particular order."""

    def performance_points(self, since: datetime | None) -> list[dict[str, Any]]:
        """POINT_FIELDS of the performance records stored at or after `since` (None: all), from the history."""

    def recent_points(self, since: datetime, *, after: bool = False) -> list[dict[str, Any]]:
        """POINT_FIELDS of the performance records stored at or after `since` (after it: `after`), from a small
        store of recent points.

        Complete for any `since` from the published snapshot's watermark minus SNAPSHOT_OVERLAP on: every
        performance record is kept there in the same write, and only a published snapshot removes what it holds.
        """

    def recent_count(self, since: datetime, until: datetime) -> int:
        """How many recent points were stored from `since` to `until` (both included), without reading them."""

    def records_of_version(
        self, kind: str, version_id: str, fields: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Records of `kind` whose model_version is `version_id` (only `fields` when given)."""

    def load_snapshot(self) -> Snapshot | None:
        """The latest complete snapshot, or None."""

    def snapshot_generation(self) -> str | None:
        """The generation of the published snapshot now (a cheap read), or None."""

    def save_snapshot(self, snapshot: Snapshot) -> str:
        """Publish a snapshot so readers see the old one or the new one, never a mix, and never one with an
        earlier watermark than the published one; then drop the recent points stored before its watermark minus
        SNAPSHOT_OVERLAP. The published generation (the other one when it was newer)."""


class ObjectWriter(Protocol):
    """Whole objects in the bucket: each put is one upload, so a reader never sees half an object."""

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Write (or replace) `name`; its gs:// URI."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one record: stored, duplicate or quarantined."""

    status: str
    kind: str | None = None
    record_id: str | None = None
    model_version: str | None = None
    reason: str | None = None


def to_document(record: MetricRecord, rid: str, fallback_time: datetime, message_id: str | None) -> dict[str, Any]:
    """The stored form: every field, a timestamp always set, the ids that make it traceable."""
    document = record.model_dump(mode="python", exclude={"record_id"})
    given = record.recorded_at is not None
    document.update(
        record_id=rid,
        model_version=record.model_version,  # model_version records name it version_id; queries use one name
        recorded_at=record.recorded_at if given else as_utc(fallback_time),
        recorded_at_source="producer" if given else "received",
        message_id=message_id,
    )
    return document


def store_record(
    record: MetricRecord, store: MetricStore, fallback_time: datetime, message_id: str | None = None
) -> Outcome:
    """Store a validated record once under its record id."""
    rid = record_id(record)
    created = store.create(record.kind, rid, to_document(record, rid, fallback_time, message_id))
    return Outcome("stored" if created else "duplicate", record.kind, rid, record.model_version)


def record_metric(
    data: bytes,
    message_id: str,
    publish_time: str | None,
    store: MetricStore,
    now: datetime,
    objects: ObjectWriter | None = None,
    topic: str | None = None,
) -> Outcome:
    """Validate and store one pushed record; bad input goes to the quarantine and is acknowledged."""
    try:
        record = parse_metric_record(data, now)
        # Undated records take the publish time: it is when the producer sent them, and stable on redelivery.
        fallback = as_utc(publish_time) if publish_time else None
        return store_record(record, store, fallback or now, message_id)
    except (InvalidMetricRecord, UnstorableRecord) as exc:
        reason = exc.reason if isinstance(exc, InvalidMetricRecord) else str(exc)
        return quarantine(store, data, message_id, reason, objects, topic)


def quarantine(
    store: MetricStore,
    data: bytes,
    message_id: str,
    reason: str,
    objects: ObjectWriter | None = None,
    topic: str | None = None,
) -> Outcome:
    """Keep the raw payload and the reason (the shape every source shares); an oversize one goes whole to the bucket."""
    raw = bytes(data)
    raw_uri = None
    if needs_whole_copy(raw) and objects is not None:
        raw_uri = objects.put(f"quarantine/{QUARANTINE_SOURCE}/{message_id}", raw, "application/octet-stream")
    kept = quarantine_record(raw, reason, QUARANTINE_SOURCE, raw_uri, topic=topic, message_id=message_id)
    store.quarantine(f"{QUARANTINE_SOURCE}-{message_id}", kept)
    return Outcome("quarantined", reason=reason)


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


def refresh_snapshot(store: MetricStore, points: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Store a new snapshot (of `points`, or of snapshot + tail); what it holds."""
    if points is None:
        points, _, _ = performance_history(store)
    snapshot = build_snapshot(points)
    generation = store.save_snapshot(snapshot)
    watermark = snapshot.watermark.isoformat() if snapshot.watermark else None
    return {"generation": generation, "count": len(snapshot.points), "watermark": watermark}


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
