"""A rollback with a restore target on the fake bucket: copies first, the target's manifest next, the registry's
pointer last; a crash midway or two restores at once never leave a target that claims one version and holds two."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from shared.domain import bucket_layout as layout
from shared.errors import BadInput, TargetChanged
from shared.services.dataset_versions import create_version, restored_version, rollback
from shared.services.version_registry import read_registry
from tests.unit.fake_dataset_bucket import FakeBucket

T0 = datetime(2026, 12, 1, tzinfo=UTC)
FILES = ("test.jsonl", "train.jsonl", "val.jsonl")  # in the order a restore copies them
TARGET = "restores/current/"


class CopyHookBucket(FakeBucket):
    """A FakeBucket that calls `before_copy(n, destination)` before its n-th copy (from 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.copies = 0
        self.before_copy: Callable[[int, str], None] | None = None

    def copy(self, source: str, destination: str) -> str:
        self.copies += 1
        if self.before_copy is not None:
            self.before_copy(self.copies, destination)
        return super().copy(source, destination)


def dataset(bucket: FakeBucket, dataset_id: str, tag: str) -> None:
    """A finished dataset whose every file says which dataset it is."""
    prefix = layout.dataset_prefix(dataset_id)
    recorded: dict[str, Any] = {}
    for name in FILES:
        data = orjson.dumps({"case_id": f"{tag}-{name}"}) + b"\n"
        bucket.put(prefix + name, data)
        recorded[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "lines": 1}
    metadata = {"dataset_id": dataset_id, "gcs_path": bucket.uri(prefix), "files": recorded, "quality_report": {}}
    bucket.put(prefix + layout.DATASET_METADATA, orjson.dumps(metadata))


def two_versions() -> tuple[CopyHookBucket, str, str]:
    bucket = CopyHookBucket()
    dataset(bucket, "ds1", "one")
    dataset(bucket, "ds2", "two")
    v1 = create_version(bucket, "ds1", "one", None, None, False, T0)
    v2 = create_version(bucket, "ds2", "two", None, v1, False, T0)
    return bucket, v1, v2


def target_tags(bucket: FakeBucket) -> list[str]:
    """Which dataset each file of the target came from."""
    return [orjson.loads(bucket.get(TARGET + name) or b"{}")["case_id"].split("-")[0] for name in FILES]


def test_a_restore_copies_then_writes_the_manifest_then_moves_the_pointer() -> None:
    bucket, v1, _ = two_versions()
    since = len(bucket.writes)

    result = rollback(bucket, v1, "current", T0)

    assert result["current_version"] == v1 and result["version_id"] == v1
    assert result["restored_to"] == [bucket.uri(TARGET + name) for name in FILES]
    assert result["verified_files"] == sorted(FILES) and result["history"]["action"] == "rollback"
    manifest_name = layout.restore_manifest_name(TARGET)
    assert result["restore_manifest"] == bucket.uri(manifest_name)
    assert bucket.written(since) == [TARGET + name for name in FILES] + [manifest_name, layout.REGISTRY]
    assert target_tags(bucket) == ["one", "one", "one"]
    held = restored_version(bucket, "current")
    assert held["version_id"] == v1 and held["dataset_id"] == "ds1" and sorted(held["files"]) == sorted(FILES)


def test_a_crash_mid_copy_leaves_the_pointer_and_the_target_s_manifest_where_they_were() -> None:
    bucket, v1, v2 = two_versions()
    rollback(bucket, v2, "current", T0)  # the target holds v2, v2 is current

    def crash(n: int, destination: str) -> None:
        if n == 2:
            raise ConnectionError("the instance died during the copy")

    bucket.copies, bucket.before_copy = 0, crash
    with pytest.raises(ConnectionError):
        rollback(bucket, v1, "current", T0)

    assert read_registry(bucket)["current_version"] == v2  # the pointer did not move
    assert target_tags(bucket) == ["one", "two", "two"]  # a mix on disk...
    with pytest.raises(BadInput, match=f"does not hold version {v2} as its manifest says: {TARGET}test.jsonl"):
        restored_version(bucket, "current")  # ...that no reader takes for a version

    bucket.before_copy = None  # the retry restores it whole
    assert rollback(bucket, v1, "current", T0)["current_version"] == v1
    assert target_tags(bucket) == ["one", "one", "one"] and restored_version(bucket, "current")["version_id"] == v1


def test_a_restore_whose_copies_another_restore_overwrote_does_not_claim_them() -> None:
    bucket, v1, v2 = two_versions()

    def overlap(n: int, destination: str) -> None:
        if n == 2:  # restoring v2: while its second file is copied, a restore of v1 runs from start to end
            bucket.before_copy = None
            rollback(bucket, v1, "current", T0)

    bucket.before_copy = overlap
    with pytest.raises(TargetChanged, match="changed during the copy"):
        rollback(bucket, v2, "current", T0)

    assert read_registry(bucket)["current_version"] == v1  # only the restore that finished moved it
    assert target_tags(bucket) == ["one", "two", "two"]
    with pytest.raises(BadInput, match=f"does not hold version {v1}"):
        restored_version(bucket, "current")
    rollback(bucket, v2, "current", T0)  # the redelivery / retry
    assert restored_version(bucket, "current")["version_id"] == v2 == read_registry(bucket)["current_version"]


def test_of_two_restores_at_once_the_one_that_writes_the_manifest_first_wins_and_the_other_retries() -> None:
    bucket, v1, v2 = two_versions()
    manifest_name = layout.restore_manifest_name(TARGET)
    original_put = bucket.put_if_generation

    def late_manifest(name: str, data: bytes, generation: int, content_type: str = "application/json") -> bool:
        if name == manifest_name and orjson.loads(data)["version_id"] == v1:
            bucket.put_if_generation = original_put  # type: ignore[method-assign]
            rollback(bucket, v2, "current", T0)  # v2's restore runs whole after v1's copies, before its manifest
        return original_put(name, data, generation, content_type)

    bucket.put_if_generation = late_manifest  # type: ignore[method-assign]
    with pytest.raises(TargetChanged, match="another restore wrote"):
        rollback(bucket, v1, "current", T0)

    assert target_tags(bucket) == ["two", "two", "two"]
    assert restored_version(bucket, "current")["version_id"] == v2 == read_registry(bucket)["current_version"]


def test_a_target_without_a_manifest_holds_no_version() -> None:
    bucket, _, _ = two_versions()
    with pytest.raises(BadInput, match="holds no restored version"):
        restored_version(bucket, "current")


def test_a_rollback_without_a_target_only_moves_the_pointer() -> None:
    bucket, v1, _ = two_versions()
    since = len(bucket.writes)
    result = rollback(bucket, v1, None, T0)
    assert "restored_to" not in result and "restore_manifest" not in result
    assert bucket.written(since) == [layout.REGISTRY]
