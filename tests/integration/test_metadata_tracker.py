"""MetadataTracker and its Firestore/GCS adapters on the real emulators: each kind, idempotency, lineage, trends,
regressions, snapshots and the exports read back from fake-gcs-server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore, storage

from shared import IntegratedDataManagementSystem, MetadataTracker
from shared.adapters.firestore_metrics import RECENT, SNAPSHOT_HEADER, SNAPSHOTS, FirestoreMetricStore
from shared.config import Settings
from shared.domain.metric_history import SNAPSHOT_OVERLAP, Snapshot, build_snapshot
from shared.errors import InvalidMetricRecord
from shared.services.metric_reads import performance_history
from shared.services.metrics import record_metric
from stack.local_stack import StackInfo

pytestmark = pytest.mark.emulators

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
def settings(stack: StackInfo, test_settings: Settings, namespace: str) -> Iterator[Settings]:
    """This test's collections and a bucket of its own."""
    own = replace(test_settings, bucket=f"{namespace}-metrics")
    storage.Client(project=own.project).create_bucket(own.bucket)
    yield own


@pytest.fixture
def tracker(settings: Settings) -> MetadataTracker:
    return MetadataTracker(settings, clock=lambda: NOW)


def docs(settings: Settings, collection: str) -> list[dict[str, Any]]:
    client = firestore.Client(project=settings.project)
    return [d.to_dict() or {} for d in client.collection(settings.collection(collection)).stream()]


def perf(tracker: MetadataTracker, day: float, version: str, wer: float, cer: float = 0.1) -> str:
    return tracker.record_performance(wer, cer, 0.1, 0.5, 0.4, model_version=version,
                                      recorded_at=T0 + timedelta(days=day))


def test_each_kind_lands_in_its_collection(tracker: MetadataTracker, settings: Settings) -> None:
    rid = tracker.record_performance(0.25, 0.1, 0.1, 0.5, 0.4, model_version="v1", recorded_at=T0, epoch=3)
    tracker.record_model_version("v1", "whisper-base", 1200, {"lr": 1e-4}, {"wer": 0.25}, "ds-1", recorded_at=T0)
    tracker.record_learning_progress("finetune", "v1", recorded_at=T0, epoch=1, loss=0.7)
    tracker.record_inference_stats("v1", recorded_at=T0, requests=120, p95_latency_ms=310.5)

    [performance] = docs(settings, "performance_history")
    assert performance["record_id"] == rid
    assert performance["wer"] == 0.25 and performance["epoch"] == 3
    assert performance["recorded_at"] == T0 and performance["recorded_at_source"] == "producer"
    assert performance["stored_at"] is not None
    [version] = docs(settings, "model_versions")
    assert version["version_id"] == version["model_version"] == "v1"
    assert version["dataset_version_id"] == "ds-1"
    assert version["training_metadata"] == {"lr": 1e-4}
    [progress] = docs(settings, "learning_progress")
    assert (progress["stage"], progress["loss"]) == ("finetune", 0.7)
    [stats] = docs(settings, "inference_stats")
    assert (stats["requests"], stats["p95_latency_ms"]) == (120, 310.5)


def test_the_same_record_twice_is_stored_once(tracker: MetadataTracker, settings: Settings) -> None:
    first = perf(tracker, 0, "v1", 0.2)
    again = perf(tracker, 0, "v1", 0.2)
    named = tracker.record_inference_stats("v1", record_id="batch-17", requests=5)
    named_again = tracker.record_inference_stats("v1", record_id="batch-17", requests=5)
    assert first == again and named == named_again == "batch-17"
    assert len(docs(settings, "performance_history")) == 1
    assert len(docs(settings, "inference_stats")) == 1


def test_undated_record_takes_the_receive_time_and_keeps_a_content_id(
    tracker: MetadataTracker, settings: Settings
) -> None:
    one = tracker.record_learning_progress("warmup", "v1", loss=1.5)
    two = tracker.record_learning_progress("warmup", "v1", loss=1.5)
    assert one == two  # documented: identical undated records are one record
    [stored] = docs(settings, "learning_progress")
    assert stored["recorded_at"] == NOW and stored["recorded_at_source"] == "received"


def test_lineage_links_version_to_dataset_and_performance(tracker: MetadataTracker) -> None:
    tracker.record_model_version("v2", "whisper-base", 2500, dataset_version_id="ds-1", recorded_at=T0)
    tracker.record_model_version("v2", "whisper-base", 2600, dataset_version_id="ds-2",
                                 recorded_at=T0 + timedelta(days=1))
    ids = sorted([perf(tracker, 2, "v2", 0.2), perf(tracker, 3, "v2", 0.19)])
    perf(tracker, 3, "v3", 0.3)

    lineage = tracker.get_model_lineage("v2")
    assert lineage["registered"] is True
    assert lineage["dataset_version_id"] == "ds-2"  # the latest registration wins
    assert len(lineage["registrations"]) == 2
    assert lineage["performance_record_ids"] == ids
    report = tracker.generate_performance_report()
    assert report["lineage"]["v2"]["dataset_version_id"] == "ds-2"
    assert report["model_versions"]["v2"]["dataset_version_id"] == "ds-2"
    assert tracker.get_model_lineage("v9") == {
        "version_id": "v9", "registered": False, "model_name": None, "dataset_version_id": None,
        "registrations": [], "performance_record_ids": [],
    }


def test_the_seeds_calls_without_a_model_version_and_a_training_run(
    tracker: MetadataTracker, settings: Settings
) -> None:
    tracker.record_performance(wer=0.12, cer=0.06, error_rate=0.15, correction_rate=0.85, inference_time=0.5,
                               recorded_at=T0)
    tracker.record_model_version(version_id="whisper_base_v1", model_name="whisper-base", training_data_size=1000,
                                 training_metadata={"epochs": 10, "batch_size": 16},
                                 performance_metrics={"wer": 0.12, "cer": 0.06}, recorded_at=T0 + timedelta(days=1))
    tracker.record_performance(wer=0.11, cer=0.05, recorded_at=T0 + timedelta(days=2))
    system = IntegratedDataManagementSystem(settings)
    ids = system.record_training_performance(model_version="whisper_base_v2", wer=0.10, cer=0.04,
                                             training_metadata={"epochs": 10})

    trend = tracker.get_performance_trend("wer")
    assert [(p["model_version"], p["value"]) for p in trend["points"]] == [
        ("unversioned", 0.12), ("whisper_base_v1", 0.11), ("whisper_base_v2", 0.10)]
    assert f"{trend['improvement_percent']:.2f}" == "16.67"
    assert tracker.get_performance_trend("inference_time")["skipped"] == 2
    assert tracker.get_model_lineage("whisper_base_v2")["performance_record_ids"] == [ids["performance"]]
    [registration] = [d for d in docs(settings, "model_versions") if d["version_id"] == "whisper_base_v2"]
    assert registration["model_name"] == "whisper_base_v2" and registration["performance_metrics"]["wer"] == 0.10


def test_trend_matches_hand_computed_values(tracker: MetadataTracker) -> None:
    # Stored out of order on purpose: the trend must follow recorded_at.
    for day, version, wer in [(2, "v2", 0.18), (0, "v1", 0.20), (3, "v3", 0.15), (1, "v1", 0.22)]:
        perf(tracker, day, version, wer)
    trend = tracker.get_performance_trend("wer")
    assert [p["value"] for p in trend["points"]] == [0.20, 0.22, 0.18, 0.15]
    assert (trend["first"], trend["last"], trend["best"], trend["worst"]) == (0.20, 0.15, 0.15, 0.22)
    assert trend["mean"] == pytest.approx((0.20 + 0.22 + 0.18 + 0.15) / 4)
    assert trend["improvement_absolute"] == pytest.approx(0.05)
    assert trend["improvement_percent"] == pytest.approx(25.0)  # (0.20 - 0.15) / 0.20 * 100: lower WER is better
    assert trend["best_at"]["model_version"] == "v3"
    v1 = tracker.get_performance_trend("wer", model_version="v1")
    assert v1["improvement_percent"] == pytest.approx(-10.0)  # 0.20 -> 0.22 is 10 % worse
    assert tracker.get_performance_trend("wer", since=T0 + timedelta(days=2))["count"] == 2


def test_synthetic_regression_is_flagged_with_evidence(tracker: MetadataTracker) -> None:
    for day, wer in enumerate([0.20, 0.21, 0.19, 0.20, 0.20]):
        perf(tracker, day, "v1", wer)
    perf(tracker, 5, "v2", 0.26)  # window mean 0.20 -> +30 %, over the 20 % threshold
    perf(tracker, 6, "v2", 0.21)  # 0.26,0.20,0.20,0.19,0.21 -> mean 0.212: -1 %, not flagged
    report = tracker.generate_performance_report()
    [regression] = report["regressions"]
    assert regression["metric"] == "wer" and regression["model_version"] == "v2"
    assert regression["value"] == 0.26
    assert regression["window_mean"] == pytest.approx(0.20)
    assert regression["relative_change"] == pytest.approx(0.30)
    assert regression["baseline_model_versions"] == ["v1"]
    assert report["best_model"]["model_version"] == "v1"
    assert report["record_count"] == 7


def test_snapshot_plus_tail_equals_a_full_read(tracker: MetadataTracker, settings: Settings) -> None:
    for day in range(6):
        perf(tracker, day, "v1", 0.30 - day * 0.01)
    before = tracker.get_performance_trend("wer")
    info = tracker.refresh_snapshot()
    assert info["count"] == 6
    perf(tracker, 6, "v2", 0.2)
    after = tracker.get_performance_trend("wer")
    assert after["count"] == 7 and after["points"][:6] == before["points"]
    fresh = MetadataTracker(replace(settings, collection_prefix=settings.collection_prefix), clock=lambda: NOW)
    assert fresh.get_performance_trend("wer") == after
    second = tracker.refresh_snapshot()
    assert second["count"] == 7 and second["generation"] != info["generation"]
    assert FirestoreMetricStore(settings).load_snapshot().generation == second["generation"]  # type: ignore[union-attr]


def test_a_record_after_the_snapshot_is_in_the_next_trend_and_a_redelivery_is_not(
    tracker: MetadataTracker, settings: Settings
) -> None:
    store = FirestoreMetricStore(settings)
    for day in range(3):
        perf(tracker, day, "v1", 0.30)
    tracker.refresh_snapshot()
    assert tracker.get_performance_trend("wer")["count"] == 3
    body = json.dumps({"kind": "performance", "model_version": "v2", "wer": 0.2, "cer": 0.1, "error_rate": 0.1,
                       "correction_rate": 0.5, "inference_time": 0.4,
                       "recorded_at": (T0 + timedelta(days=4)).isoformat()})
    assert record_metric(body.encode(), "m-1", None, store, NOW).status == "stored"
    assert record_metric(body.encode(), "m-2", None, store, NOW).status == "duplicate"  # redelivered
    trend = tracker.get_performance_trend("wer")
    assert trend["count"] == 4 and trend["last"] == 0.2 and trend["improvement_percent"] == pytest.approx(100 / 3)
    [recent] = [d for d in docs(settings, RECENT) if d["model_version"] == "v2"]
    [stored] = [d for d in docs(settings, "performance_history") if d["model_version"] == "v2"]
    assert recent["stored_at"] == stored["stored_at"]  # one commit: the tail query and the history agree


def test_a_snapshot_prunes_the_recent_points_it_holds(tracker: MetadataTracker, settings: Settings) -> None:
    for day, wer in enumerate([0.30, 0.29, 0.28]):
        perf(tracker, day, "v1", wer)
    time.sleep(SNAPSHOT_OVERLAP.total_seconds() + 0.2)  # the next record is stored after the overlap
    perf(tracker, 3, "v1", 0.27)
    assert len(docs(settings, RECENT)) == 4
    info = tracker.refresh_snapshot()
    assert [d["wer"] for d in docs(settings, RECENT)] == [0.27]  # only the overlap before the watermark is kept
    assert info["watermark"] == docs(settings, RECENT)[0]["stored_at"].isoformat()
    perf(tracker, 4, "v1", 0.25)
    assert [p["value"] for p in tracker.get_performance_trend("wer")["points"]] == [0.30, 0.29, 0.28, 0.27, 0.25]


def test_an_older_snapshot_never_replaces_a_newer_one(tracker: MetadataTracker, settings: Settings) -> None:
    store = FirestoreMetricStore(settings)
    perf(tracker, 0, "v1", 0.3)
    older = build_snapshot(store.performance_points(None))
    perf(tracker, 1, "v1", 0.2)
    newer = tracker.refresh_snapshot()
    assert store.save_snapshot(older) == newer["generation"]  # a slow refresh finishing late changes nothing
    points, snapshot, _ = performance_history(store)
    assert snapshot is not None and snapshot.generation == newer["generation"] and len(points) == 2
    chunks = [d.id for d in firestore.Client(project=settings.project)
              .collection(settings.collection(SNAPSHOTS)).stream() if d.id != SNAPSHOT_HEADER]
    assert chunks == [f"{SNAPSHOT_HEADER}-{newer['generation']}-0"]  # the late one's chunks are gone


def test_a_snapshot_header_from_before_the_recent_points_is_not_trusted(
    tracker: MetadataTracker, settings: Settings
) -> None:
    store = FirestoreMetricStore(settings)
    perf(tracker, 0, "v1", 0.3)
    tracker.refresh_snapshot()
    header = firestore.Client(project=settings.project).collection(settings.collection(SNAPSHOTS)).document(
        SNAPSHOT_HEADER)
    header.update({"format": firestore.DELETE_FIELD})  # as written by the previous release
    assert store.load_snapshot() is None and store.snapshot_generation() is None
    perf(tracker, 1, "v1", 0.2)
    assert tracker.get_performance_trend("wer")["count"] == 2  # a full read
    assert isinstance(store.save_snapshot(Snapshot([], None)), str)  # replaces it whatever its watermark


def test_invalid_input_raises_for_a_python_caller(tracker: MetadataTracker, settings: Settings) -> None:
    with pytest.raises(InvalidMetricRecord, match="wer"):
        tracker.record_performance(float("nan"), 0.1, 0.1, 0.5, 0.4, model_version="v1")
    with pytest.raises(InvalidMetricRecord, match="after now"):
        tracker.record_inference_stats("v1", recorded_at=NOW + timedelta(hours=1), requests=1)
    assert docs(settings, "performance_history") == [] and docs(settings, "inference_stats") == []


def test_a_record_firestore_cannot_hold_is_quarantined(settings: Settings) -> None:
    store = FirestoreMetricStore(settings)
    body = json.dumps({"kind": "learning_progress", "stage": "s", "model_version": "v1", "curve": [[1, 2]]})
    outcome = record_metric(body.encode(), "m-1", None, store, NOW)
    assert outcome.status == "quarantined" and "array" in (outcome.reason or "")
    [kept] = docs(settings, "quarantine")
    assert kept["source"] == "record_metrics" and kept["raw"] == body.encode()
    assert docs(settings, "learning_progress") == []


def test_exports_are_written_whole_and_read_back(tracker: MetadataTracker, settings: Settings) -> None:
    tracker.record_model_version("v1", "whisper-base", 1000, dataset_version_id="ds-1", recorded_at=T0)
    for day, wer in enumerate([0.20, 0.21, 0.19, 0.20, 0.27]):
        perf(tracker, day, "v1", wer)
    tracker.record_learning_progress("finetune", "v1", recorded_at=T0, loss=0.5)
    tracker.record_inference_stats("v1", recorded_at=T0, requests=10)
    summary = tracker.export_metadata()

    bucket = storage.Client(project=settings.project).bucket(settings.bucket)

    def read(name: str) -> bytes:
        return bucket.blob(name).download_as_bytes()

    history = [json.loads(line) for line in read("metadata/performance_history.jsonl").splitlines()]
    assert [row["wer"] for row in history] == [0.20, 0.21, 0.19, 0.20, 0.27]
    assert history[0]["recorded_at"] == T0.isoformat() and history[0]["model_version"] == "v1"
    versions = json.loads(read("metadata/model_versions.json"))
    assert versions["v1"]["lineage"] == {"dataset_version_id": "ds-1", "performance_record_count": 5}
    assert [json.loads(x)["loss"] for x in read("metadata/learning_progress.jsonl").splitlines()] == [0.5]
    assert [json.loads(x)["requests"] for x in read("metadata/inference_stats.jsonl").splitlines()] == [10]
    report = json.loads(read("metadata/performance_report.json"))
    assert report["trend_plot"]["uri"] == f"gs://{settings.bucket}/metadata/wer_trend.png"
    assert [r["value"] for r in report["regressions"]] == [0.27]
    assert read("metadata/wer_trend.png").startswith(b"\x89PNG\r\n\x1a\n")
    assert summary["objects"]["metadata/performance_history.jsonl"]["records"] == 5
    assert summary["regressions"] == 1 and summary["snapshot"]["count"] == 5


def test_learning_progress_and_inference_stats_read_back_from_firestore(
    tracker: MetadataTracker, settings: Settings
) -> None:
    """The readers over the emulator: Firestore timestamps come back as ISO text, one model version is read
    with its filtered query, and the comprehensive report carries both summaries."""
    for epoch, loss in enumerate([0.8, 0.5], start=1):
        tracker.record_learning_progress("finetune", model_version="v1", epoch=epoch, loss=loss,
                                         recorded_at=T0 + timedelta(hours=epoch))
    tracker.record_learning_progress("finetune", model_version="v2", epoch=1, loss=0.6, recorded_at=T0)
    tracker.record_inference_stats("v1", requests=40, p95_latency_s=0.3, recorded_at=T0)
    tracker.record_inference_stats("v1", requests=60, p95_latency_s=0.5, recorded_at=T0 + timedelta(hours=1))

    progress = tracker.get_learning_progress(model_version="v1")
    assert [(r["epoch"], r["recorded_at"]) for r in progress["records"]] == [
        (1, (T0 + timedelta(hours=1)).isoformat()), (2, (T0 + timedelta(hours=2)).isoformat())]
    assert progress["by_model_version"]["v1"]["figures"]["loss"]["last"] == 0.5
    system = IntegratedDataManagementSystem(settings)
    stats = system.get_inference_stats(since=(T0 + timedelta(minutes=30)).isoformat())
    assert stats["count"] == 1 and stats["records"][0]["requests"] == 60
    assert system.get_inference_stats()["by_model_version"]["v1"]["figures"]["requests"]["sum"] == 100
    report = system.generate_comprehensive_report()["performance_report"]
    assert set(report["learning_progress"]) == {"v1", "v2"}
    assert report["inference_stats"]["v1"]["figures"]["p95_latency_s"]["max"] == 0.5


def test_a_wiped_firestore_gets_its_metric_history_back_from_the_exports(
    tracker: MetadataTracker, settings: Settings
) -> None:
    """export_metadata (as sync_all_to_gcs runs it), wipe every metric collection, restore: the same records,
    trends, report and readers; a second restore changes nothing."""
    from shared.domain.metric_history import KIND_COLLECTIONS

    for day, (version, wer) in enumerate([("v1", 0.30), ("v1", 0.28), ("v2", 0.2), ("v2", 0.31)]):
        perf(tracker, day, version, wer)
    tracker.record_model_version("v1", "whisper-base", 1000, {"epochs": 3}, {"wer": 0.3}, "ds-1", recorded_at=T0)
    tracker.record_model_version("v2", "whisper-base", 1500, dataset_version_id="ds-2",
                                 recorded_at=T0 + timedelta(days=2))
    tracker.record_learning_progress("finetune", "v2", recorded_at=T0 + timedelta(days=2), epoch=1, loss=0.6)
    tracker.record_inference_stats("v2", recorded_at=T0 + timedelta(days=3), requests=90)
    system = IntegratedDataManagementSystem(settings)
    system.data_manager.store_failed_case("gs://stt-audio/restore.wav", "SOME TEXT", "Some text.")
    system.sync_all_to_gcs()

    def state() -> tuple[Any, ...]:
        records = {kind: sorted((d["record_id"], d["recorded_at"]) for d in docs(settings, collection))
                   for kind, collection in KIND_COLLECTIONS.items()}
        report = tracker.generate_performance_report()
        report.pop("generated_at")
        read_back = [{k: v for k, v in r.items() if k != "stored_at"}  # the restore's time, by design
                     for r in [*tracker.get_learning_progress()["records"], *tracker.get_inference_stats()["records"]]]
        return records, tracker.get_performance_trend("wer"), report, read_back, tracker.current_model_version()

    before = state()
    assert len(before[0]["performance"]) == 4 and before[2]["inference_stats"]["v2"]["count"] == 1
    client = firestore.Client(project=settings.project)
    for collection in [*KIND_COLLECTIONS.values(), RECENT, SNAPSHOTS]:
        client.recursive_delete(client.collection(settings.collection(collection)))
    assert tracker.get_performance_trend("wer")["count"] == 0 and tracker.current_model_version() is None

    restored = system.sync_all_from_gcs()["metadata"]

    assert {kind: (r["records"], r["restored"]) for kind, r in restored.items()} == {
        "performance": (4, 4), "learning_progress": (1, 1), "inference_stats": (1, 1), "model_version": (2, 2)}
    assert state() == before
    again = tracker.sync_from_gcs()
    assert all(r["restored"] == 0 and r["already_stored"] == r["records"] for r in again.values())
