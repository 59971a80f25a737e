"""The case snapshot kept complete: the tail of single writes, imports' own parts, builds that see both."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import orjson
import pyarrow.parquet as pq
import pytest

from shared.domain import bucket_layout as layout
from shared.domain.dataset_request import BuildRequest
from shared.services import bulk_import
from shared.services.bulk_import import run_import
from shared.services.case_snapshot import maintain_snapshot, read_watermark, sync_snapshot
from shared.services.dataset_builds import build_dataset
from shared.services.ingestion import correct_by_id, store_failure_fields
from tests.unit.fake_case_store import FullCaseStore
from tests.unit.fake_dataset_bucket import FakeBucket

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def snapshot_rows(bucket: FakeBucket) -> dict[str, dict]:
    """The snapshot as a reader sees it: every part, the latest updated_at of a case winning."""
    latest: dict[str, dict] = {}
    for name in bucket.names(layout.SNAPSHOT_PARTS):
        for row in pq.read_table(io.BytesIO(bucket.get(name) or b"")).to_pylist():
            seen = latest.get(row["case_id"])
            if seen is None or row["updated_at"] >= seen["updated_at"]:
                latest[row["case_id"]] = row
    return latest


def event(i: int, **fields: object) -> dict:
    return {"audio_path": f"gs://stt-audio/s/{i}.wav", "original_transcript": f"THE NUMBER IS {i}",
            "corrected_transcript": f"The number is {i}.", "error_score": 0.9, "speaker_id": f"spk-{i % 7}", **fields}


def upload_import(bucket: FakeBucket, name: str, rows: list[dict]) -> int:
    bucket.put(name, b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return bucket.generation(name)


def test_the_first_sync_takes_every_case_and_later_ones_take_only_what_changed() -> None:
    store, bucket = FullCaseStore(), FakeBucket()
    ids = [store_failure_fields(event(i), store) for i in range(5)]
    run_import("imports/a.jsonl", upload_import(bucket, "imports/a.jsonl", [event(i) for i in range(5, 8)]),
               store, bucket)
    bucket.delete(next(iter(bucket.names(layout.SNAPSHOT_PARTS))))  # as if imported before snapshots existed

    first = sync_snapshot(store, bucket, NOW)
    assert first["first"] and len(snapshot_rows(bucket)) == 8

    correct_by_id(ids[0], "The number is zero.", "ana", None, store)
    new = store_failure_fields(event(99), store)
    second = sync_snapshot(store, bucket, NOW + timedelta(minutes=1))
    tail = pq.read_table(io.BytesIO(bucket.get(second["parts"][0]) or b"")).column("case_id")
    # The boundary case (the last one the first sync saw) is read again; nothing older is.
    assert set(tail.to_pylist()) <= {ids[0], new, ids[-1]} and {ids[0], new} <= set(tail.to_pylist())
    rows = snapshot_rows(bucket)
    assert rows[ids[0]]["corrected_transcript"] == "The number is zero." and new in rows
    assert read_watermark(bucket)[0]["tail_at"] == second["tail_at"]


def test_an_import_writes_its_cases_into_the_snapshot_itself() -> None:
    store, bucket = FullCaseStore(), FakeBucket()
    rows = [event(i) for i in range(30)] + [{"audio_path": "bad"}]
    result = run_import("imports/b.jsonl", upload_import(bucket, "imports/b.jsonl", rows), store, bucket)
    assert result["accepted"] == 30 and result["snapshot_parts"]
    assert set(snapshot_rows(bucket)) == set(store.cases)
    # Bulk writes leave no tail: the next sync (after a first one) reads none of them again.
    sync_snapshot(store, bucket, NOW)
    assert sync_snapshot(store, bucket, NOW)["parts"] == []


def test_an_import_interrupted_after_its_commits_is_complete_in_the_snapshot_after_redelivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, bucket = FullCaseStore(), FakeBucket()
    generation = upload_import(bucket, "imports/c.jsonl", [event(i) for i in range(1200)])
    store_failure_fields(event(3), store)  # a case stored before, by someone else

    def crash(self: object) -> list[str]:
        raise SystemExit("the function instance died")

    with monkeypatch.context() as patch:
        patch.setattr(bulk_import.SnapshotAppender, "flush", crash)
        with pytest.raises(SystemExit):
            run_import("imports/c.jsonl", generation, store, bucket)
    assert snapshot_rows(bucket) == {} and len(store.cases) == 1200

    result = run_import("imports/c.jsonl", generation, store, bucket)

    assert (result["accepted"], result["duplicates"]) == (1199, 1)  # the same counts as one clean run
    snapshot = snapshot_rows(bucket)
    assert len(snapshot) == 1199 and set(snapshot) == set(store.cases) - {store_id(store, 3)}


def store_id(store: FullCaseStore, i: int) -> str:
    return next(cid for cid, case in store.cases.items() if case["audio_path"] == f"gs://stt-audio/s/{i}.wav")


def test_a_build_sees_imported_cases_and_single_writes_up_to_its_request() -> None:
    store, bucket = FullCaseStore(), FakeBucket()
    run_import("imports/d.jsonl", upload_import(bucket, "imports/d.jsonl", [event(i) for i in range(40)]),
               store, bucket)
    first = build_dataset(BuildRequest(balance_error_types=False), "d-1", "test", store, bucket, NOW)
    assert first["total_samples"] == 40

    late = [store_failure_fields(event(i), store) for i in range(100, 110)]
    second = build_dataset(BuildRequest(balance_error_types=False), "d-2", "test", store, bucket, NOW)

    assert second["total_samples"] == 50
    built = b"".join(bucket.get(f"{layout.dataset_prefix('d-2')}{split}.jsonl") or b"" for split in
                     ("train", "val", "test"))
    assert all(case_id.encode() in built for case_id in late)


def test_the_scheduled_upkeep_compacts_parts_that_piled_up_without_losing_a_case() -> None:
    store, bucket = FullCaseStore(), FakeBucket()
    ids = []
    for i in range(4):
        ids.append(store_failure_fields(event(i), store))
        sync_snapshot(store, bucket, NOW + timedelta(seconds=i))  # one small part a sync
    correct_by_id(ids[1], "The number is one.", "ana", None, store)
    before = snapshot_rows(bucket)

    result = maintain_snapshot(store, bucket, NOW + timedelta(minutes=5), max_parts=2)

    assert result["parts_before"] > 2 and result["compacted_into"] is not None
    assert bucket.names(layout.SNAPSHOT_PARTS) == [result["compacted_into"]]
    after = snapshot_rows(bucket)
    assert set(after) == set(before) == set(ids)
    assert after[ids[1]]["corrected_transcript"] == "The number is one."


def test_a_sync_with_nothing_new_writes_no_part_and_the_export_is_skipped() -> None:
    from shared.services.case_exports import export_cases
    from shared.services.scheduled_exports import run_exports
    from tests.unit.test_metrics_service import FakeStore

    store, bucket, metrics = FullCaseStore(), FakeBucket(), FakeStore()
    store_failure_fields(event(1), store)
    first = run_exports({}, metrics, store, bucket, NOW)
    assert first["learning_data"] == {"cases": 1, "corrections": 0, "mode": "rewrite", "lines": 1}
    assert sync_snapshot(store, bucket, NOW)["parts"] == []  # the boundary case was read already

    again = run_exports({}, metrics, store, bucket, NOW + timedelta(minutes=30))
    assert again["learning_data"]["skipped"] == "nothing changed since"
    assert again["snapshot"]["parts"] == []

    case_id = store_failure_fields(event(2), store)
    correct_by_id(case_id, "The number is two, corrected.", "ana", None, store)
    third = run_exports({}, metrics, store, bucket, NOW + timedelta(hours=1))
    assert third["learning_data"] == {"cases": 1, "corrections": 1, "mode": "append", "lines": 2}
    exported = [orjson.loads(line) for line in (bucket.get(layout.FAILED_CASES) or b"").splitlines()]
    assert [case["case_id"] for case in exported] == [*sorted(set(store.cases) - {case_id}), case_id]
    # Called again (DataManager.sync_to_gcs lists the parts itself), with nothing new: nothing written.
    assert export_cases(store, bucket, NOW + timedelta(hours=2))["skipped"] == "nothing changed since"
