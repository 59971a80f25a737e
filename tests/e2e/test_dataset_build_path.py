"""Upload a build request -> bucket notification -> build_dataset -> dataset prefix + registry entry."""

from __future__ import annotations

import hashlib

import orjson
from google.cloud import storage

from shared import DataManager, DataVersionControl
from stack.local_stack import StackInfo
from tests.e2e.waiting import wait_for


def _upload_and_wait(bucket: storage.Bucket, name: str, body: bytes) -> dict:
    bucket.blob(f"dataset-requests/{name}.json").upload_from_string(body)

    def result() -> bytes | None:
        blob = bucket.blob(f"dataset_results/{name}.json")  # a fresh handle each time
        return blob.download_as_bytes() if blob.exists() else None

    return dict(orjson.loads(wait_for(result, timeout_s=120)))


def test_an_uploaded_request_builds_a_versioned_dataset(stack: StackInfo, namespace: str) -> None:
    """Through the stack's own build_dataset, over the stack's own (unprefixed) cases."""
    manager = DataManager(stack.settings)
    ids = {
        manager.store_failed_case(
            f"gs://stt-audio/{namespace}/{i}.wav", f"THE NUMBER IS {i}", f"The number is {i}.",
            error_score=0.9, speaker_id=f"{namespace}-spk-{i % 5}",
        )
        for i in range(30)
    }
    request = {"min_error_score": 0.85, "balance_error_types": False, "version_name": namespace}
    built = _upload_and_wait(stack_bucket(stack), namespace, orjson.dumps(request))

    assert built["status"] == "built" and built["quality_passed"], built
    bucket = stack_bucket(stack)
    prefix = f"finetuning_datasets/{built['dataset_id']}/"
    metadata = orjson.loads(bucket.blob(prefix + "metadata.json").download_as_bytes())
    rows = []
    for split in ("train", "val", "test"):
        data = bucket.blob(f"{prefix}{split}.jsonl").download_as_bytes()
        assert hashlib.sha256(data).hexdigest() == metadata["files"][f"{split}.jsonl"]["sha256"]
        rows += [orjson.loads(line) for line in data.splitlines()]
    assert ids <= {row["case_id"] for row in rows}  # other tests' cases may be in the stack's collection too
    assert all(row["error_score"] >= 0.85 for row in rows)

    version = DataVersionControl(stack.settings).get_version(built["version_id"])
    assert version is not None and version["checksum"] == metadata["checksum"] == built["checksum"]


def test_a_mistaken_request_is_rejected_with_its_reason_and_kept(stack: StackInfo, namespace: str) -> None:
    rejected = _upload_and_wait(stack_bucket(stack), namespace, b'{"train_ratio": 0.5, "max_sample": 10}')
    assert rejected["status"] == "rejected"
    assert "max_sample: unknown field" in rejected["reason"]
    kept = [q for q in DataManager(stack.settings).store.quarantined(50) if q["source"] == "build_dataset"]
    assert any(namespace in str(q.get("object")) for q in kept)
    assert not list(stack_bucket(stack).list_blobs(prefix=f"finetuning_datasets/{namespace}-"))


def stack_bucket(stack: StackInfo) -> storage.Bucket:
    return storage.Client(project=stack.project).bucket(stack.settings.bucket)
