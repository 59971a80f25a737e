"""The metric records restored from the `metadata/` exports on fakes: what an export that is missing, malformed
or partly stored gives (the wipe-and-restore on the emulators is in tests/integration/test_metadata_tracker.py)."""

from __future__ import annotations

import orjson
import pytest

from shared.domain import bucket_layout as layout
from shared.errors import BadInput
from shared.services.metric_restore import restore_metrics
from tests.unit.fake_dataset_bucket import FakeBucket
from tests.unit.test_metrics_service import NOW, FakeStore


def test_no_export_restores_nothing_and_says_so() -> None:
    result = restore_metrics(FakeStore(), FakeBucket())
    assert {kind: r["records"] for kind, r in result.items()} == {
        "performance": 0, "learning_progress": 0, "inference_stats": 0, "model_version": 0}
    assert {r["status"] for r in result.values()} == {"absent"}


def test_records_come_back_typed_and_only_once() -> None:
    bucket, store = FakeBucket(), FakeStore()
    line = {"record_id": "r1", "kind": "inference_stats", "model_version": "v1", "requests": 3,
            "recorded_at": "2026-11-30T12:00:00+00:00", "stored_at": "2026-11-30T12:00:01+00:00"}
    bucket.put(layout.INFERENCE_STATS, orjson.dumps(line) + b"\n\n")
    registration = {"record_id": "m1", "kind": "model_version", "version_id": "v1", "model_version": "v1",
                    "model_name": "whisper-base", "recorded_at": "2026-11-29T00:00:00+00:00",
                    "registrations": ["2026-11-29T00:00:00+00:00"], "lineage": {"dataset_version_id": None}}
    bucket.put(layout.MODEL_VERSIONS, orjson.dumps({"v1": registration}))
    store.create("inference_stats", "r1", {"record_id": "r1"})  # already there: left as it is

    result = restore_metrics(store, bucket)

    assert (result["inference_stats"]["restored"], result["inference_stats"]["already_stored"]) == (0, 1)
    assert result["inference_stats"]["status"] == result["model_version"]["status"] == "restored"
    assert result["performance"]["status"] == "absent"
    assert store.docs["inference_stats"]["r1"] == {"record_id": "r1", "stored_at": NOW}
    stored = store.docs["model_version"]["m1"]
    assert stored["recorded_at"].isoformat() == "2026-11-29T00:00:00+00:00"
    assert "registrations" not in stored and "lineage" not in stored and stored["model_name"] == "whisper-base"


@pytest.mark.parametrize(("line", "reason"), [
    (b"{not json", r"learning_progress.jsonl line 2 is not JSON"),
    (b'{"kind": "learning_progress"}', r"learning_progress.jsonl line 2 is not a metric record \(no record_id\)"),
    (b'{"record_id": "x", "recorded_at": "yesterday"}', r"recorded_at 'yesterday' is not an ISO timestamp"),
])
def test_a_line_that_is_no_record_is_named(line: bytes, reason: str) -> None:
    bucket = FakeBucket()
    good = orjson.dumps({"record_id": "ok", "kind": "learning_progress", "stage": "s", "model_version": "v"})
    bucket.put(layout.LEARNING_PROGRESS, good + b"\n" + line + b"\n")
    with pytest.raises(BadInput, match=reason):
        restore_metrics(FakeStore(), bucket)
