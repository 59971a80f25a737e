"""Use cases of training metrics: record one record, pushed or called (reads are in metric_reads.py).

Each record kind has its own collection (``KIND_COLLECTIONS``); a record is stored once under
``record_id()`` (create-if-absent), so a redelivered or re-sent record is not counted twice.
Bad input is kept in the quarantine with its reason and acknowledged; store errors raise (retry).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain import bucket_layout as layout
from shared.domain.metric_records import MetricRecord, parse_metric_record, record_id, validate_metric_record
from shared.domain.quarantine import needs_whole_copy, quarantine_record
from shared.domain.trends import as_utc
from shared.errors import InvalidMetricRecord, UnstorableRecord
from shared.ports import Bucket, MetricStore
from shared.services.outcome import Outcome

QUARANTINE_SOURCE = "record_metrics"


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
    status = "stored" if created else "duplicate"
    return Outcome(status, kind=record.kind, record_id=rid, model_version=record.model_version)


def record_metric(
    data: bytes,
    message_id: str,
    publish_time: str | None,
    store: MetricStore,
    now: datetime,
    objects: Bucket | None = None,
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
    objects: Bucket | None = None,
    topic: str | None = None,
) -> Outcome:
    """Keep the raw payload and the reason (the shape every source shares); an oversize one goes whole to the
    bucket, written once (a redelivery finds it kept: the role may create objects, not replace them)."""
    raw = bytes(data)
    raw_uri = None
    quarantine_id = f"{QUARANTINE_SOURCE}-{message_id}"
    if needs_whole_copy(raw) and objects is not None:
        name = layout.quarantine_copy_name(QUARANTINE_SOURCE, quarantine_id)
        raw_uri = objects.keep(name, raw)
    kept = quarantine_record(raw, reason, QUARANTINE_SOURCE, raw_uri, topic=topic, message_id=message_id)
    store.quarantine(quarantine_id, kept)
    return Outcome("quarantined", reason=reason)


def record_fields(fields: Mapping[str, Any], store: MetricStore, now: datetime) -> str:
    """Validate and store one record given as fields (the Python API); its record id. InvalidMetricRecord."""
    record = validate_metric_record({k: v for k, v in fields.items() if v is not None}, now)
    return store_record(record, store, now).record_id or ""
