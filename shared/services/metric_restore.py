"""Use case: rebuild the metric records from the `metadata/` exports (the other half of `sync_all_from_gcs`).

The exports (metric_exports.py) hold every performance, learning progress and inference stats record as one
JSON line each, and `model_versions.json` each model version's latest registration. A restore stores each
record create-if-absent under its record id, as the topic does, so a restore into an empty store gives back the
history, the trends and the report, into a live store it adds only what is missing, and running it twice
changes nothing. Performance records get their recent point in the same write (MetricStore.create), so a trend
sees them at once.

What is not restored, because the exports do not hold it: a model version's earlier registrations
(`model_versions.json` keeps the latest one and only the times of the others), quarantined payloads, and the
trend snapshot (rebuilt by the next export or a trend read that finds a long tail). A record's `stored_at`
becomes the time of the restore; its `recorded_at`, which trends and reports follow, is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.domain.trends import as_utc
from shared.errors import BadInput, ObjectGone
from shared.ports import Bucket, MetricStore

# Record kind -> its JSON lines export.
LINE_EXPORTS = {
    "performance": layout.PERFORMANCE_HISTORY,
    "learning_progress": layout.LEARNING_PROGRESS,
    "inference_stats": layout.INFERENCE_STATS,
}
# Keys model_versions_export adds to a registration: not part of the stored record.
_EXPORT_ONLY = ("registrations", "lineage")


def stored_record(document: dict[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """(record id, the document as the store keeps it): `recorded_at` a timestamp again, `stored_at` left to the
    store. BadInput naming `where` for a line that is no record."""
    record_id = document.get("record_id") if isinstance(document, dict) else None
    if not isinstance(record_id, str) or not record_id:
        raise BadInput(f"{where} is not a metric record (no record_id)")
    record = {key: value for key, value in document.items() if key != "stored_at"}
    if isinstance(record.get("recorded_at"), str):
        try:
            record["recorded_at"] = as_utc(record["recorded_at"])
        except ValueError:
            raise BadInput(f"{where}: recorded_at {record['recorded_at']!r} is not an ISO timestamp") from None
    return record_id, record


def _line_records(bucket: Bucket, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(bucket.lines(name), start=1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"{where} is not JSON ({exc})") from None
        yield stored_record(document, where)


def _registrations(bucket: Bucket) -> Iterator[tuple[str, dict[str, Any]]]:
    data = bucket.get(layout.MODEL_VERSIONS)
    if data is None:
        raise ObjectGone(f"{bucket.uri(layout.MODEL_VERSIONS)} does not exist")
    try:
        export = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"{layout.MODEL_VERSIONS} is not JSON ({exc})") from None
    if not isinstance(export, dict):
        raise BadInput(f"{layout.MODEL_VERSIONS} is not a map of model versions")
    for version_id, entry in sorted(export.items()):
        if not isinstance(entry, dict):
            raise BadInput(f"{layout.MODEL_VERSIONS}: {version_id!r} is not a registration")
        registration = {key: value for key, value in entry.items() if key not in _EXPORT_ONLY}
        yield stored_record(registration, f"{layout.MODEL_VERSIONS} {version_id!r}")


def restore_metrics(store: MetricStore, bucket: Bucket) -> dict[str, Any]:
    """Store every exported metric record the store lacks; per kind, how many the export held, restored and
    already stored, and its `status`: "restored" (the export was read) or "absent" (never exported: counted as
    empty)."""
    sources: dict[str, tuple[str, Iterator[tuple[str, dict[str, Any]]]]] = {
        kind: (name, _line_records(bucket, name)) for kind, name in LINE_EXPORTS.items()
    }
    sources["model_version"] = (layout.MODEL_VERSIONS, _registrations(bucket))
    result: dict[str, Any] = {}
    for kind, (name, records) in sources.items():
        exported = restored = 0
        status = "restored"
        try:
            for record_id, record in records:
                exported += 1
                restored += store.create(kind, record_id, record)
        except ObjectGone:
            status = "absent"  # never exported: nothing of this kind to restore
        result[kind] = {"source": bucket.uri(name), "status": status, "records": exported, "restored": restored,
                        "already_stored": exported - restored}
    return result
