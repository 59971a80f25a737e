"""The metrics use cases with in-memory fakes of their ports (the real adapters are tested on the emulators)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.metric_history import SNAPSHOT_OVERLAP, Snapshot, build_snapshot, merge_points, with_tail
from shared.domain.quarantine import MAX_INLINE_PAYLOAD
from shared.services.metric_reads import performance_history, refresh_snapshot
from shared.services.metrics import record_metric
from shared.services.scheduled_exports import export_options

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
PERF = {"kind": "performance", "model_version": "v1", "wer": 0.2, "cer": 0.1, "error_rate": 0.1,
        "correction_rate": 0.5, "inference_time": 0.3}


class FakeStore:
    """Dicts instead of Firestore; same return conventions as FirestoreMetricStore (recent points included)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, dict[str, Any]]] = {}
        self.recent: dict[str, dict[str, Any]] = {}
        self.quarantined: dict[str, dict[str, Any]] = {}
        self.snapshot: Snapshot | None = None
        self.clock = NOW
        self.generations = 0
        self.on_recent_read: Any = None  # called before a recent read answers: a concurrent refresh

    def create(self, kind: str, record_id: str, document: dict[str, Any]) -> bool:
        kind_docs = self.docs.setdefault(kind, {})
        if record_id in kind_docs:
            return False
        kind_docs[record_id] = {**document, "stored_at": self.clock}
        if kind == "performance":
            self.recent[record_id] = kind_docs[record_id]
        return True

    def quarantine(self, quarantine_id: str, record: dict[str, Any]) -> bool:
        created = quarantine_id not in self.quarantined
        self.quarantined.setdefault(quarantine_id, record)
        return created

    def records(self, kind: str) -> Iterator[dict[str, Any]]:
        yield from self.docs.get(kind, {}).values()

    def performance_points(self, since: datetime | None) -> list[dict[str, Any]]:
        return [d for d in self.records("performance") if since is None or d["stored_at"] >= since]

    def records_of_version(self, kind: str, version_id: str, fields: Iterable[str] | None = None
                           ) -> list[dict[str, Any]]:
        return [d for d in self.records(kind) if d.get("model_version") == version_id]

    def recent_points(self, since: datetime, *, after: bool = False) -> list[dict[str, Any]]:
        if self.on_recent_read is not None:
            hook, self.on_recent_read = self.on_recent_read, None
            hook()
        return [d for d in self.recent.values() if d["stored_at"] > since or (not after and d["stored_at"] == since)]

    def recent_count(self, since: datetime, until: datetime) -> int:
        return sum(1 for d in self.recent.values() if since <= d["stored_at"] <= until)

    def load_snapshot(self) -> Snapshot | None:
        return self.snapshot

    def snapshot_generation(self) -> str | None:
        return self.snapshot.generation if self.snapshot else None

    def save_snapshot(self, snapshot: Snapshot) -> str:
        self.generations += 1
        self.snapshot = Snapshot(snapshot.points, snapshot.watermark, f"g{self.generations}", snapshot.overlap_count)
        if snapshot.watermark is not None:
            cut = snapshot.watermark - SNAPSHOT_OVERLAP
            self.recent = {k: d for k, d in self.recent.items() if d["stored_at"] >= cut}
        return self.snapshot.generation or ""


class FakeObjects:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, name: str, data: bytes, content_type: str) -> str:
        self.objects[name] = data
        return f"gs://b/{name}"

    def keep(self, name: str, data: bytes) -> str:
        """As BucketStore.keep: written once, a second write of the name changes nothing."""
        self.objects.setdefault(name, data)
        return f"gs://b/{name}"


def test_undated_record_takes_the_publish_time() -> None:
    store = FakeStore()
    outcome = record_metric(json.dumps(PERF).encode(), "m1", "2026-11-30T11:00:00.5Z", store, NOW)
    assert outcome.status == "stored" and outcome.kind == "performance"
    [doc] = store.docs["performance"].values()
    assert doc["recorded_at"] == datetime(2026, 11, 30, 11, 0, 0, 500000, tzinfo=UTC)
    assert doc["recorded_at_source"] == "received" and doc["message_id"] == "m1"
    again = record_metric(json.dumps(PERF).encode(), "m2", "2026-11-30T11:05:00Z", store, NOW)
    assert again.status == "duplicate"  # same content, same id: the publish time is not part of it


def test_oversize_payload_is_kept_whole_in_the_bucket() -> None:
    store, objects = FakeStore(), FakeObjects()
    raw = b'{"kind": "performance", "pad": "' + b"x" * MAX_INLINE_PAYLOAD + b'"}'
    outcome = record_metric(raw, "m9", None, store, NOW, objects, topic="training-metrics")
    assert outcome.status == "quarantined"
    kept = store.quarantined["record_metrics-m9"]
    assert kept["raw_truncated"] is True and kept["raw_uri"] == "gs://b/quarantine/record_metrics/record_metrics-m9.bin"
    assert objects.objects["quarantine/record_metrics/record_metrics-m9.bin"] == raw
    assert kept["size_bytes"] == len(raw) and kept["topic"] == "training-metrics"
    # A redelivery keeps what is there: the function's role may create objects, not replace them.
    objects.objects["quarantine/record_metrics/record_metrics-m9.bin"] = b"first copy"
    assert record_metric(raw, "m9", None, store, NOW, objects, topic="training-metrics").status == "quarantined"
    assert objects.objects["quarantine/record_metrics/record_metrics-m9.bin"] == b"first copy"


def _perf(store: FakeStore, wer: float, message_id: str | None = None) -> None:
    message_id = message_id or f"m{wer}"
    record_metric(json.dumps({**PERF, "wer": wer}).encode(), message_id, "2026-11-30T10:00:00Z", store, NOW)


def test_history_is_snapshot_plus_tail_without_duplicates() -> None:
    store = FakeStore()
    for wer in (0.2, 0.3):
        _perf(store, wer)
    store.snapshot = build_snapshot(store.performance_points(None))
    assert store.snapshot.watermark == NOW
    points, snapshot, tail = performance_history(store)
    assert snapshot is store.snapshot and tail == 0  # the overlap is counted, not read: it matches the snapshot
    assert sorted(p["wer"] for p in points) == [0.2, 0.3]
    assert merge_points([{"record_id": "a", "v": 1}], [{"record_id": "a", "v": 2}]) == [{"record_id": "a", "v": 2}]
    assert with_tail([{"record_id": "a", "v": 1}, {"record_id": "b", "v": 1}], [{"record_id": "a", "v": 2}]) == [
        {"record_id": "b", "v": 1}, {"record_id": "a", "v": 2}]


def test_a_record_stored_after_the_snapshot_is_in_the_next_history_and_a_redelivery_is_not() -> None:
    store = FakeStore()
    _perf(store, 0.2)
    refresh_snapshot(store)
    store.clock = NOW + timedelta(seconds=5)
    _perf(store, 0.25)
    _perf(store, 0.25, "m-redelivered")  # same content: the same record, not stored again
    points, _, tail = performance_history(store)
    assert sorted(p["wer"] for p in points) == [0.2, 0.25]
    assert tail == 1  # only the new record: the overlap is counted, and its count matches the snapshot


def test_a_record_the_snapshot_missed_in_its_overlap_is_read_back() -> None:
    store = FakeStore()
    for wer in (0.2, 0.3):
        _perf(store, wer)
    missed = next(d for d in store.docs["performance"].values() if d["wer"] == 0.3)
    # As if the snapshot's read had not seen 0.3, stored in the same instant: the overlap count differs.
    store.snapshot = build_snapshot([d for d in store.docs["performance"].values() if d is not missed])
    points, _, tail = performance_history(store)
    assert sorted(p["wer"] for p in points) == [0.2, 0.3] and tail == 2


def test_a_snapshot_prunes_only_the_recent_points_it_holds() -> None:
    store = FakeStore()
    _perf(store, 0.2)
    store.clock = NOW + timedelta(seconds=5)
    _perf(store, 0.3)
    store.clock = NOW + timedelta(seconds=10)
    refresh_snapshot(store)  # watermark NOW + 5 s: the first record's recent point goes, the second stays
    assert [d["wer"] for d in store.recent.values()] == [0.3]
    _perf(store, 0.4)
    assert sorted(p["wer"] for p in performance_history(store)[0]) == [0.2, 0.3, 0.4]


def test_a_snapshot_published_during_a_read_makes_the_read_start_again() -> None:
    store = FakeStore()
    _perf(store, 0.2)
    refresh_snapshot(store)
    store.clock = NOW + timedelta(seconds=5)
    _perf(store, 0.3)
    store.clock = NOW + timedelta(seconds=10)
    _perf(store, 0.4)
    # Another process publishes a newer snapshot (pruning 0.3's recent point) after this read loaded the old one.
    store.on_recent_read = lambda: refresh_snapshot(store, store.performance_points(None))
    points, snapshot, _ = performance_history(store)
    assert sorted(p["wer"] for p in points) == [0.2, 0.3, 0.4]
    assert snapshot is not None and snapshot.generation == "g2"


def test_an_empty_snapshot_still_sees_every_later_record() -> None:
    store = FakeStore()
    refresh_snapshot(store)
    assert store.snapshot is not None and store.snapshot.watermark is None
    _perf(store, 0.2)
    points, snapshot, tail = performance_history(store)
    assert [p["wer"] for p in points] == [0.2] and snapshot is store.snapshot and tail == 1



@pytest.mark.parametrize(("body", "message"), [
    ([1], "JSON object"), ({"windw": 3}, "unknown fields"), ({"window": "5"}, "window must be an integer"),
    ({"threshold": True}, "threshold must be a number"),
])
def test_aggregate_refuses_bad_options(body: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        export_options(body)


def test_aggregate_accepts_report_options() -> None:
    options = {"window": 3, "threshold": 0.1, "plot_metric": "cer", "regression_metrics": ["wer"]}
    assert export_options(options) == options
    assert export_options(None) == {}


def test_a_record_with_a_lone_surrogate_is_quarantined_not_retried() -> None:
    store = FakeStore()
    raw = b'{"kind": "inference_stats", "model_version": "v1", "requests": 3, "note": "\\ud800"}'
    outcome = record_metric(raw, "m-s", None, store, NOW)
    assert outcome.status == "quarantined" and "lone surrogate" in (outcome.reason or "")
    assert "record_metrics-m-s" in store.quarantined
