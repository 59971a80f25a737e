"""Issue #13's faults: an import or a build whose function process is SIGKILLed mid-way, then the message
redelivered by Pub/Sub to a restarted process, ends complete and exact.

Each test has a bucket of its own (the stack's functions ignore its notifications: another bucket) and a
function process of its own, pushed the stack's bucket notifications by a subscription of its own.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from google.cloud import firestore, storage

from shared.adapters.gcs import BucketStore
from shared.bootstrap import adapters
from shared.clock import utc_now
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.failure_event import derive_case_id, parse_failure_event
from shared.services.bucket_objects import object_version_id
from shared.services.bulk_import import run_import
from shared.services.case_snapshot import maintain_snapshot
from shared.services.version_registry import read_registry
from stack.local_stack import StackInfo
from tests.e2e.killable import KillableFunction
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.emulators

CHECKPOINT_LINES = 500


@pytest.fixture
def own_bucket(stack: StackInfo, test_settings: Settings, namespace: str) -> tuple[Settings, storage.Bucket]:
    settings = replace(test_settings, bucket=f"{namespace}-kill")
    return settings, storage.Client(project=settings.project).create_bucket(settings.bucket)


def _result(bucket: storage.Bucket, name: str) -> dict | None:
    blob = bucket.blob(name)  # a fresh handle each time: a used one pins the generation it last saw
    return dict(orjson.loads(blob.download_as_bytes())) if blob.exists() else None


@pytest.fixture
def importer(
    stack: StackInfo, own_bucket: tuple[Settings, storage.Bucket], namespace: str, log_dir: Path, repo_root: Path
) -> Iterator[KillableFunction]:
    fn = KillableFunction(stack, repo_root / "tests/e2e/functions/ingest_import_checkpointing.py", "ingest_import",
                          own_bucket[0], f"{namespace}-imp", log_dir,
                          {"IMPORT_CHECKPOINT_LINES": str(CHECKPOINT_LINES)})
    fn.start()
    fn.subscribe()
    yield fn
    fn.stop()


def _line(i: int) -> bytes:
    """Line i (from 1) of the import: every 7th rejected, every 11th repeating the line 5 before, 1 in 4 corrected,
    a blank line every 500."""
    if i % 500 == 0:
        return b""
    if i % 7 == 0:
        return orjson.dumps({"audio_path": f"gs://stt-audio/kill/{i}.wav"})  # no transcript
    if i % 11 == 0:
        return _line(i - 5)
    event: dict[str, object] = {"audio_path": f"gs://stt-audio/kill/{i}.wav", "original_transcript": f"ROW {i} OK",
                                "error_score": (i % 10) / 10, "speaker_id": f"spk-{i % 40}"}
    if i % 4 == 0:
        event["corrected_transcript"] = f"Row {i}, ok."
    return orjson.dumps(event)


def test_an_import_killed_after_a_checkpoint_and_redelivered_stores_every_line_once(
    importer: KillableFunction, own_bucket: tuple[Settings, storage.Bucket]
) -> None:
    settings, bucket = own_bucket
    n = 5_000
    lines = [_line(i) for i in range(1, n + 1)]
    events = {derive_case_id(parse_failure_event(raw)) for raw in lines if raw and b"original_transcript" in raw}
    rejected_lines = [i for i in range(1, n + 1) if lines[i - 1] and b"original_transcript" not in lines[i - 1]]
    duplicates = sum(1 for raw in lines if raw and b"original_transcript" in raw) - len(events)
    store = adapters(settings).cases

    blob = bucket.blob("imports/kill.jsonl")
    blob.upload_from_string(b"\n".join(lines) + b"\n")  # the notification reaches `importer`
    import_id = object_version_id(blob.name, blob.generation)
    checkpoint = wait_for(lambda: store.import_progress(import_id), timeout_s=60, interval_s=0.05)
    importer.kill()
    assert store.import_result(import_id) is None, "the import finished before the kill: make the file longer"
    assert _result(bucket, "import_results/kill.json") is None
    assert checkpoint["line"] >= CHECKPOINT_LINES
    importer.start()  # Pub/Sub redelivers the notification the killed process never answered

    result = wait_for(lambda: _result(bucket, "import_results/kill.json"), timeout_s=90)

    assert result["resumed_after_line"] is not None and result["resumed_after_line"] >= checkpoint["line"]
    assert (result["lines"], result["accepted"], result["duplicates"], result["rejected"]) == (
        n, len(events), duplicates, len(rejected_lines))
    stored = {case["case_id"]: case for case in store.stream_cases()}
    assert stored.keys() == events
    assert all(case["import_id"] == import_id for case in stored.values())
    from shared import DataManager

    assert DataManager(settings).get_statistics()["total_cases"] == len(events)  # each case counted once
    rejects = [orjson.loads(raw) for raw in bucket.blob("import_results/kill.rejected.jsonl").download_as_bytes()
               .splitlines()]
    assert [r["line"] for r in rejects] == rejected_lines  # each once, in file order
    assert not list(bucket.list_blobs(prefix="import_segments/kill.rejected.jsonl/"))
    # The snapshot: every stored case, and a case in two parts (written again after the kill) with the same
    # updated_at and content, so latest-wins reads it once as stored.
    rows: dict[str, list[dict]] = {}
    for part in bucket.list_blobs(prefix=layout.SNAPSHOT_PARTS):
        for row in pq.read_table(io.BytesIO(part.download_as_bytes())).to_pylist():
            rows.setdefault(row["case_id"], []).append(row)
    assert rows.keys() == events
    assert all(len({orjson.dumps(row, option=orjson.OPT_SORT_KEYS) for row in copies}) == 1
               for copies in rows.values())


@pytest.fixture
def builder(
    stack: StackInfo, own_bucket: tuple[Settings, storage.Bucket], namespace: str, log_dir: Path, repo_root: Path,
    tmp_path: Path,
) -> Iterator[KillableFunction]:
    fn = KillableFunction(stack, repo_root / "tests/e2e/functions/build_dataset_pausing.py", "build_dataset",
                          own_bucket[0], f"{namespace}-bld", log_dir,
                          {"PAUSE_IN_SPLIT": "val", "PAUSE_MARKER": str(tmp_path / "paused")})
    fn.start()
    fn.subscribe()
    yield fn
    fn.stop()


def test_a_build_killed_while_writing_its_split_files_and_redelivered_is_complete_and_registered_once(
    builder: KillableFunction, own_bucket: tuple[Settings, storage.Bucket], tmp_path: Path
) -> None:
    settings, bucket = own_bucket
    gcs = BucketStore(settings)
    store = adapters(settings).cases
    maintain_snapshot(store, gcs, utc_now())  # the deployment's first sync: the tail starts here
    imported = [orjson.dumps({"audio_path": f"gs://stt-audio/kb/{i}.wav", "original_transcript": f"ROW {i} OK",
                              "corrected_transcript": f"Row {i}, ok.", "error_score": 0.9,
                              "speaker_id": f"spk-{i % 50}"}) for i in range(3_000)]
    gcs.put("imports/seed.jsonl", b"\n".join(imported))
    run_import("imports/seed.jsonl", gcs.bucket.get_blob("imports/seed.jsonl").generation, store, gcs)
    from shared import DataManager

    manager = DataManager(settings)
    single = {manager.store_failed_case(f"gs://stt-audio/kb/s{i}.wav", f"SOLO {i}", f"Solo {i}.", error_score=0.8)
              for i in range(20)}  # in Firestore only: the build's tail sync brings them in
    expected = {derive_case_id(parse_failure_event(raw)) for raw in imported} | single

    request = {"min_error_score": 0.5, "balance_error_types": False, "version_name": "killed"}
    blob = bucket.blob("dataset-requests/killed.json")
    blob.upload_from_string(orjson.dumps(request))
    build_id = object_version_id(blob.name, blob.generation)
    dataset_id = layout.dataset_id_for_request(blob.name, blob.generation)
    prefix = layout.dataset_prefix(dataset_id)
    wait_for(lambda: (tmp_path / "paused").exists(), timeout_s=60)
    builder.kill()  # train.jsonl written, val.jsonl's upload open

    assert bucket.blob(prefix + "train.jsonl").exists()
    assert not bucket.blob(prefix + "val.jsonl").exists() and not bucket.blob(prefix + "metadata.json").exists()
    assert _result(bucket, "dataset_results/killed.json") is None
    assert read_registry(gcs)["versions"] == {}
    # The dead attempt's lease would lapse within 60 s; it is made to lapse now so the test need not wait.
    ledger = firestore.Client(project=settings.project).collection(settings.collection("dataset_builds"))
    ledger.document(build_id).update({"lease_until": utc_now() - timedelta(seconds=1)})
    builder.start()  # Pub/Sub redelivers the request's notification to the replacement

    result = wait_for(lambda: _result(bucket, "dataset_results/killed.json"), timeout_s=90)

    assert result["status"] == "built" and result["total_samples"] == len(expected)
    metadata = orjson.loads(bucket.blob(prefix + "metadata.json").download_as_bytes())
    case_ids = []
    for split in ("train", "val", "test"):
        data = bucket.blob(f"{prefix}{split}.jsonl").download_as_bytes()
        entry = metadata["files"][f"{split}.jsonl"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        case_ids += [orjson.loads(line)["case_id"] for line in data.splitlines()]
    assert sorted(case_ids) == sorted(expected)  # every case once: none missing, none twice
    assert metadata["checksum"] == result["checksum"]
    versions = read_registry(gcs)["versions"]
    assert [v["dataset_id"] for v in versions.values()] == [dataset_id]
    assert versions[result["version_id"]]["checksum"] == metadata["checksum"]
    assert ledger.document(build_id).get().get("takeovers") == 1
    # Nothing else was left under the dataset's prefix by the killed attempt.
    assert {b.name for b in bucket.list_blobs(prefix=prefix)} == {
        f"{prefix}{name}" for name in ("train.jsonl", "val.jsonl", "test.jsonl", "metadata.json", "README.md",
                                       *_parquet_names(metadata))}


def _parquet_names(metadata: dict) -> list[str]:
    return [name for name in metadata["files"] if not name.endswith(".jsonl")]

