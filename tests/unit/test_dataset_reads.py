"""Reads of finished datasets that stream: checksums a chunk at a time, quality and comparisons on DuckDB."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.domain import bucket_layout as layout
from shared.domain.versions import file_entry
from shared.errors import ObjectGone
from shared.services.datasets import changed_files, object_sha256
from tests.unit.fake_dataset_bucket import FakeBucket


class ChunkCountingBucket(FakeBucket):
    """A FakeBucket whose readers record the size of every read, and that refuses a whole-object get."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []
        self.gets_allowed = True

    def get(self, name: str, generation: int | None = None) -> bytes | None:
        assert self.gets_allowed or name.endswith(layout.DATASET_METADATA), f"whole-object get of {name}"
        return super().get(name, generation)

    @contextmanager
    def reader(self, name: str, generation: int | None = None) -> Iterator[io.BytesIO]:
        data = FakeBucket.get(self, name, generation)  # the fake's own bytes, not a whole-object get of the code
        if data is None:
            raise ObjectGone(name)
        stream = io.BytesIO(data)
        original = stream.read

        def read(size: int | None = -1) -> bytes:
            chunk = original(size)
            self.reads.append(len(chunk))
            return chunk

        stream.read = read  # type: ignore[method-assign]
        yield stream


def put_files(bucket: FakeBucket, dataset_id: str, files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    prefix = layout.dataset_prefix(dataset_id)
    for name, data in files.items():
        bucket.put(prefix + name, data)
    return {name: file_entry(data, data.count(b"\n")) for name, data in files.items()}


def test_changed_files_hashes_each_file_as_a_stream() -> None:
    bucket = ChunkCountingBucket()
    files = {"train.jsonl": b"a\n" * 5000, "val.jsonl": b"b\n" * 30, "test.jsonl": b"c\n"}
    recorded = put_files(bucket, "ds", files)
    prefix = layout.dataset_prefix("ds")
    bucket.put(prefix + "val.jsonl", b"tampered\n")
    bucket.delete(prefix + "test.jsonl")
    bucket.gets_allowed = False
    assert changed_files(bucket, "ds", recorded) == ["test.jsonl", "val.jsonl"]
    assert object_sha256(bucket, prefix + "test.jsonl") is None
    bucket.reads.clear()
    expected = hashlib.sha256(files["train.jsonl"]).hexdigest()
    assert object_sha256(bucket, prefix + "train.jsonl", chunk_bytes=1024) == expected
    assert max(bucket.reads) == 1024 and len(bucket.reads) == 11  # ten chunks and the empty read at the end


def test_an_intact_dataset_has_no_changed_files() -> None:
    bucket = ChunkCountingBucket()
    recorded = put_files(bucket, "ds", {"train.jsonl": b"x\n" * 100, "val.jsonl": b"", "test.jsonl": b"y\n"})
    bucket.gets_allowed = False
    assert changed_files(bucket, "ds", recorded) == []
