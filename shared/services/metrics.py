"""Use cases of training metrics: record one record (pushed or called), read the history, take snapshots.

Each record kind has its own collection (``KIND_COLLECTIONS``); a record is stored once under
``record_id()`` (create-if-absent), so a redelivered or re-sent record is not counted twice.
Bad input is kept in the quarantine with its reason and acknowledged; store errors raise (retry).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.domain.metric_history import EPOCH, SNAPSHOT_OVERLAP, Snapshot, build_snapshot, with_tail
from shared.domain.metric_records import MetricRecord, parse_metric_record, record_id
from shared.domain.quarantine import needs_whole_copy, quarantine_record
from shared.domain.trends import as_utc
from shared.errors import InvalidMetricRecord, UnstorableRecord
from shared.ports import MetricStore, ObjectWriter

QUARANTINE_SOURCE = "record_metrics"
# A trend read retries this often when a snapshot was published (and the recent points pruned) while it read.
HISTORY_ATTEMPTS = 3


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


def utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)
