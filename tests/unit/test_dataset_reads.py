"""Reads of finished datasets that stream: checksums a chunk at a time, quality and comparisons on DuckDB."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.domain import bucket_layout as layout
from shared.domain import versions
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_quality import check_quality, validate_lines
from shared.domain.dataset_request import BuildRequest
from shared.domain.split_balance import with_split_warnings
from shared.domain.versions import file_entry
from shared.errors import BadInput, ObjectGone
from shared.services.case_snapshot import build_over_snapshot
from shared.services.dataset_versions import case_splits, compare_versions, create_version, rollback
from shared.services.datasets import (
    changed_files,
    dataset_quality,
    huggingface_files,
    object_sha256,
    read_metadata,
    read_rows,
    read_split_files,
    validate_dataset,
)
from shared.services.version_registry import read_registry
from shared.snapshot.dataset_files import DatasetRows, quality_of_files, read_datasets
from shared.snapshot.parts import write_cases
from tests.unit.fake_dataset_bucket import FakeBucket
from tests.unit.snapshot_cases import random_cases
from tests.unit.test_snapshot_engine import SETTINGS, random_splits

T0 = datetime(2026, 12, 1, tzinfo=UTC)
SPLIT_FILES = ("train.jsonl", "val.jsonl", "test.jsonl")


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


# -- quality and validation over split files on DuckDB -----------------------------------------------------------


def split_bytes(splits: dict[str, list[dict[str, Any]]]) -> dict[str, bytes]:
    return {split: b"".join(orjson.dumps(row) + b"\n" for row in rows) for split, rows in splits.items()}


def files_report(tmp_path: Path, data: dict[str, bytes | None]) -> dict[str, Any]:
    paths: dict[str, Path | None] = {}
    for split, content in data.items():
        paths[split] = None
        if content is not None:
            paths[split] = tmp_path / f"{split}.jsonl"
            paths[split].write_bytes(content)  # type: ignore[union-attr]
    return quality_of_files(paths, SETTINGS)


def python_report(data: dict[str, bytes | None]) -> dict[str, Any]:
    return check_quality({split: validate_lines(split, (content or b"").splitlines())[0]
                          for split, content in data.items()})


@pytest.mark.parametrize(("seed", "count"), [(1, 30), (2, 400), (3, 1500), (4, 5)])
def test_quality_of_split_files_equals_check_quality_of_read_rows(tmp_path: Path, seed: int, count: int) -> None:
    data: dict[str, bytes | None] = dict(split_bytes(random_splits(seed, count)))
    assert files_report(tmp_path, data) == python_report(data)


ODD_LINES = [
    b'{"audio": 5, "text": "x\\u00e9", "error_score": "0.5", "split": 7, "case_id": 3}',
    b"[1, 2]",
    b"7",
    b"{bad json",
    b"   ",
    b"",
    b'{"audio": "a.wav", "text": "hi", "error_score": true, "has_correction": 1, "split": null}',
    b'{"audio": "a.wav", "text": "hi", "error_score": 1, "has_correction": true, "original_transcript": "hi"}',
    b'{"case_id": "c1", "audio": "b.flac", "text": "ok", "error_score": -0.0, "split": "val", "speaker_id": []}',
    b'{"case_id": "c1", "audio": "b.flac", "text": "ok", "error_score": 2, "split": "train", "speaker_id": "s"}',
    b'{"case_id": "c2", "audio": {"x": 1}, "text": null, "error_score": 0.25, "split": "test"}',
    b'"just a string"',
    b"{}",
    b'{"audio": "u.wav", "text": "invalid utf-8 \xff\xfe", "case_id": "u1"}',
    b'{"wer": 0.5}',
]


@pytest.mark.parametrize("seed", range(6))
def test_quality_of_odd_lines_equals_check_quality(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    rows = split_bytes(random_splits(seed, 60))
    data: dict[str, bytes | None] = {}
    for split in SPLITS:
        lines = rows[split].splitlines() + [rng.choice(ODD_LINES) for _ in range(rng.randrange(40))]
        rng.shuffle(lines)
        data[split] = b"\n".join(lines) + rng.choice([b"", b"\n", b"\r\n"])
    data[rng.choice(SPLITS)] = rng.choice([None, b"", data["train"]])
    assert files_report(tmp_path, data) == python_report(data)


def test_quality_of_edge_files(tmp_path: Path) -> None:
    for data in ({"train": None, "val": None, "test": None}, {"train": b"", "val": b"\n\n", "test": b"{bad"}):
        assert files_report(tmp_path, dict(data)) == python_report(dict(data))


def reference_validation(bucket: FakeBucket, dataset_id: str) -> dict[str, Any]:
    """validate_dataset as it was before issue #13 (every split file's rows in memory), with the thresholds."""
    metadata = read_metadata(bucket, dataset_id)
    issues: list[str] = [] if metadata else [f"missing required file: {layout.DATASET_METADATA}"]
    recorded = (metadata or {}).get("files", {})
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, data in read_split_files(bucket, dataset_id).items():
        name = f"{split}.jsonl"
        if data is None:
            issues.append(f"missing required file: {name}")
            splits[split] = []
            continue
        if name in recorded and hashlib.sha256(data).hexdigest() != recorded[name]["sha256"]:
            issues.append(f"{name}: sha256 differs from metadata.json (changed after the build)")
        splits[split], line_problems = validate_lines(split, data.splitlines())
        issues.extend(line_problems)
    quality = check_quality(splits)
    # Since issue #14 validation honours the thresholds too: a figure under its minimum is an issue.
    issues.extend(i["message"] for i in quality["quality_metrics"]["issues"]
                  if i["severity"] == "critical" or i["category"] == "threshold")
    return {
        "dataset_id": dataset_id, "validated_at": T0.isoformat(), "is_valid": not issues, "issues": issues,
        "warnings": quality["quality_metrics"]["warnings"],
        "statistics": {split: {"num_samples": len(rows)} for split, rows in splits.items()}, "quality": quality,
    }


@pytest.mark.parametrize("seed", range(5))
def test_validate_dataset_equals_the_in_memory_validation(seed: int) -> None:
    rng = random.Random(seed)
    bucket = ChunkCountingBucket()
    files = {f"{split}.jsonl": data for split, data in split_bytes(random_splits(seed, 300)).items()}
    recorded = put_files(bucket, "ds", files)
    prefix = layout.dataset_prefix("ds")
    if seed % 2:
        bucket.put(prefix + layout.DATASET_METADATA, orjson.dumps({"dataset_id": "ds", "files": recorded}))
    odd = b"\n".join(rng.choice(ODD_LINES) for _ in range(rng.randrange(1, 200))) + b"\n"
    bucket.put(prefix + rng.choice(SPLIT_FILES), odd + files["train.jsonl"])  # changed after the build
    if seed >= 3:
        bucket.delete(prefix + rng.choice(SPLIT_FILES))
    bucket.gets_allowed = False
    validated = validate_dataset(bucket, "ds", T0, SETTINGS)
    bucket.gets_allowed = True
    assert validated == reference_validation(bucket, "ds")
    assert validated["issues"]


def test_dataset_quality_reads_the_files_as_streams() -> None:
    bucket = ChunkCountingBucket()
    splits = random_splits(7, 200)
    put_files(bucket, "ds", {f"{split}.jsonl": data for split, data in split_bytes(splits).items()})
    bucket.gets_allowed = False
    assert dataset_quality(bucket, "ds", SETTINGS) == check_quality(splits)


# -- compare_versions: the cases joined on DuckDB ------------------------------------------------------------------

CASE_ID_LINES = [
    b'{"case_id": 5, "audio": "a.wav"}', b'{"case_id": null}', b'{"case_id": true}', b'{"case_id": false}',
    b'{"case_id": 1.5}', b'{"case_id": 100000.0}', b'{"case_id": 1e5}', b'{"case_id": -0}', b'{"case_id": [1, "x"]}',
    b'{"case_id": {"k": 1}}', b'{"case_id": "5"}', b'{"case_id": "None"}', b'{"no_case": 1}', b"[1]", b"{bad",
    b'{"case_id": "dup-\\u00e9"}', b'{"case_id": "\xc3\xa9t\xc3\xa9"}', b'{"case_id": "Z"}', b'{"case_id": "a"}',
]


def write_dataset(bucket: FakeBucket, dataset_id: str, splits: dict[str, list[bytes]]) -> None:
    files = {f"{split}.jsonl": b"".join(line + b"\n" for line in lines) for split, lines in splits.items()}
    recorded = put_files(bucket, dataset_id, files)
    metadata = {"dataset_id": dataset_id, "gcs_path": bucket.uri(layout.dataset_prefix(dataset_id)),
                "files": recorded, "quality_report": {}, "split_sizes": {s: len(v) for s, v in splits.items()}}
    bucket.put(layout.dataset_prefix(dataset_id) + layout.DATASET_METADATA, orjson.dumps(metadata))


def random_version_pair(seed: int) -> tuple[dict[str, list[bytes]], dict[str, list[bytes]]]:
    """Two datasets' lines: the second drops, adds and moves cases, repeats some across splits, adds odd ones."""
    rng = random.Random(seed)
    rows = [line for lines in split_bytes(random_splits(seed, 300)).values() for line in lines.splitlines()]
    first: dict[str, list[bytes]] = {split: [] for split in SPLITS}
    second: dict[str, list[bytes]] = {split: [] for split in SPLITS}
    for line in rows:
        split = rng.choice(SPLITS)
        roll = rng.random()
        if roll < 0.8:
            first[split].append(line)
            second[split if rng.random() < (0.9 if seed % 2 else 0.6) else rng.choice(SPLITS)].append(line)
        elif roll < 0.9:
            first[split].append(line)
        else:
            second[split].append(line)
    for lines in (*first.values(), *second.values()):
        lines.extend(rng.choice(CASE_ID_LINES) for _ in range(rng.randrange(8)))
        rng.shuffle(lines)
    if seed % 3 == 0:
        second[rng.choice(SPLITS)] = []
    return first, second


@pytest.mark.parametrize("seed", range(6))
def test_compare_versions_equals_the_comparison_of_case_maps(seed: int) -> None:
    bucket = ChunkCountingBucket()
    first, second = random_version_pair(seed)
    write_dataset(bucket, "ds1", first)
    write_dataset(bucket, "ds2", second)
    v1 = create_version(bucket, "ds1", "one", None, None, False, T0)
    v2 = create_version(bucket, "ds2", "two", None, v1, False, T0)
    if seed == 5:
        bucket.delete(layout.dataset_prefix("ds2") + "val.jsonl")  # a missing file has no cases
    expected = versions.compare_versions(
        read_registry(bucket), v1, v2, case_splits(bucket, "ds1"), case_splits(bucket, "ds2")
    )
    bucket.gets_allowed = False
    compared = compare_versions(bucket, v1, v2, SETTINGS)
    assert compared == expected
    assert compared["cases"]["added"] > 0 and compared["cases"]["moved"] > (20 if seed % 2 == 0 else 0)


def test_compare_versions_of_a_version_with_itself() -> None:
    bucket = ChunkCountingBucket()
    first, _ = random_version_pair(1)
    write_dataset(bucket, "ds1", first)
    v1 = create_version(bucket, "ds1", "one", None, None, False, T0)
    cases = compare_versions(bucket, v1, v1, SETTINGS)["cases"]
    assert cases == versions.compare_cases(case_splits(bucket, "ds1"), case_splits(bucket, "ds1"))
    assert cases["moved"] == 0 and cases["moved_case_ids"] == []


def is_object_line(line: bytes, key: str | None = None) -> bool:
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and parsed != {} and (key is None or parsed.get(key) is not None)


@pytest.mark.parametrize("seed", range(3))
def test_odd_objects_alone_take_duckdbs_json_reader_and_agree(tmp_path: Path, seed: int) -> None:
    """Odd values but every line an object with some field: no file is read again line by line."""
    rng = random.Random(seed)
    odd = [line for line in ODD_LINES if is_object_line(line)]
    rows = split_bytes(random_splits(seed, 80))
    data: dict[str, bytes | None] = {
        split: b"\n".join(rows[split].splitlines() + [rng.choice(odd) for _ in range(20)]) + b"\n" for split in SPLITS
    }
    assert files_report(tmp_path, data) == python_report(data)
    bucket = ChunkCountingBucket()
    odd_ids = [line for line in CASE_ID_LINES if is_object_line(line, "case_id")]
    first = {split: (data[split] or b"").splitlines() + odd_ids[:5] for split in SPLITS}
    second = {split: (data[split] or b"").splitlines()[::2] + odd_ids[3:] for split in reversed(SPLITS)}
    write_dataset(bucket, "ds1", first)
    write_dataset(bucket, "ds2", {split: second[split] for split in SPLITS})
    v1 = create_version(bucket, "ds1", "one", None, None, False, T0)
    v2 = create_version(bucket, "ds2", "two", None, v1, False, T0)
    expected = versions.compare_cases(case_splits(bucket, "ds1"), case_splits(bucket, "ds2"))
    assert compare_versions(bucket, v1, v2, SETTINGS)["cases"] == expected


def test_rollback_verifies_the_files_as_streams_and_names_what_changed() -> None:
    bucket = ChunkCountingBucket()
    first, second = random_version_pair(2)
    write_dataset(bucket, "ds1", first)
    write_dataset(bucket, "ds2", second)
    v1 = create_version(bucket, "ds1", "one", None, None, False, T0)
    create_version(bucket, "ds2", "two", None, v1, False, T0)
    prefix = layout.dataset_prefix("ds1")
    bucket.gets_allowed = False
    assert rollback(bucket, v1, None, T0)["verified_files"] == sorted(SPLIT_FILES)
    bucket.gets_allowed = True
    bucket.put(prefix + "val.jsonl", b"tampered\n")
    bucket.delete(prefix + "test.jsonl")
    bucket.gets_allowed = False
    with pytest.raises(BadInput, match=f"{prefix}test.jsonl, {prefix}val.jsonl missing or changed"):
        rollback(bucket, v1, None, T0)


# -- built datasets: the reads take the Parquet copies while they and the split files are as built -----------------


def built_dataset(bucket: FakeBucket, dataset_id: str, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """A dataset as the build service writes it, over a snapshot of ``cases`` in the bucket."""
    for name in bucket.names(layout.SNAPSHOT_PARTS):
        bucket.delete(name)
    write_cases(bucket, cases, rows_per_part=120, now=T0, prefix=layout.SNAPSHOT_PARTS)
    metadata = build_over_snapshot(BuildRequest(min_error_score=0.0, include_uncorrected=True), dataset_id, "test",
                                   bucket, T0)
    assert metadata is not None
    return metadata


def rows_of(bucket: FakeBucket, dataset_id: str, tmp_path: Path) -> DatasetRows:
    """What read_datasets gives a dataset's work in the end."""
    recorded = (read_metadata(bucket, dataset_id) or {}).get("files", {})
    seen: list[DatasetRows] = []
    read_datasets(bucket, [(dataset_id, recorded)], tmp_path / dataset_id, seen.extend)
    return seen[-1]


@pytest.mark.parametrize("seed", range(3))
def test_a_built_datasets_quality_comes_from_its_parquet_copies_and_equals_its_build(seed: int, tmp_path: Path) -> None:
    bucket = ChunkCountingBucket()
    metadata = built_dataset(bucket, "ds", random_cases(seed, 400))
    assert rows_of(bucket, "ds", tmp_path).parquet
    bucket.gets_allowed = False
    report = dataset_quality(bucket, "ds", SETTINGS)
    bucket.gets_allowed = True
    # (the build's uneven splits explained in both: shared/domain/split_balance.py)
    explained = with_split_warnings(check_quality(read_rows(bucket, "ds")), metadata["split_warnings"])
    assert report == metadata["quality_report"] == explained
    assert validate_dataset(bucket, "ds", T0, SETTINGS)["quality"] == report


@pytest.mark.parametrize("changed", ["val.jsonl", "parquet/train.parquet", "metadata"])
def test_a_changed_file_sends_the_reads_back_to_the_split_files(changed: str, tmp_path: Path) -> None:
    """A split file changed since the build (its copy no longer holds its rows), a copy changed, or a
    metadata.json without the copies: the rows are the split files' as they are now."""
    bucket = ChunkCountingBucket()
    metadata = built_dataset(bucket, "ds", random_cases(5, 300))
    prefix = layout.dataset_prefix("ds")
    if changed == "metadata":
        files = {name: entry for name, entry in metadata["files"].items() if name.endswith(".jsonl")}
        bucket.put(prefix + layout.DATASET_METADATA, orjson.dumps({**metadata, "files": files}))
    elif changed.endswith(".jsonl"):
        odd = b'{"audio": "x.wav", "text": "", "split": "test"}\n'
        bucket.put(prefix + changed, odd + (bucket.get(prefix + changed) or b""))
    else:
        bucket.put(prefix + changed, (bucket.get(prefix + changed) or b"") + b"\0")
    assert not rows_of(bucket, "ds", tmp_path).parquet
    explained = with_split_warnings(check_quality(read_rows(bucket, "ds")), metadata["split_warnings"])
    assert dataset_quality(bucket, "ds", SETTINGS) == explained
    if changed == "val.jsonl":
        assert dataset_quality(bucket, "ds", SETTINGS) != metadata["quality_report"]


def test_compare_versions_of_built_datasets_reads_their_copies_and_equals_the_case_maps(tmp_path: Path) -> None:
    bucket = ChunkCountingBucket()
    cases = random_cases(9, 500)
    built_dataset(bucket, "ds1", cases[:400])
    built_dataset(bucket, "ds2", cases[100:])
    # Random rows fail the quality thresholds: versioned anyway (flagged), as the comparison is what is tested.
    v1 = create_version(bucket, "ds1", "one", None, None, False, T0, allow_failed_quality=True)
    v2 = create_version(bucket, "ds2", "two", None, v1, False, T0, allow_failed_quality=True)
    assert rows_of(bucket, "ds1", tmp_path).parquet and rows_of(bucket, "ds2", tmp_path).parquet
    expected = versions.compare_cases(case_splits(bucket, "ds1"), case_splits(bucket, "ds2"))
    assert expected["added"] > 50 and expected["removed"] > 50 and expected["kept"] > 50
    bucket.gets_allowed = False
    assert compare_versions(bucket, v1, v2, SETTINGS)["cases"] == expected
    bucket.gets_allowed = True
    prefix = layout.dataset_prefix("ds2")
    bucket.put(prefix + "test.jsonl", b'{"case_id": "only-here"}\n' + (bucket.get(prefix + "test.jsonl") or b""))
    assert not rows_of(bucket, "ds2", tmp_path / "changed").parquet  # one side copies, the other split files
    expected = versions.compare_cases(case_splits(bucket, "ds1"), case_splits(bucket, "ds2"))
    assert compare_versions(bucket, v1, v2, SETTINGS)["cases"] == expected


def test_the_hugging_face_parquet_files_are_the_builds_copies() -> None:
    bucket = ChunkCountingBucket()
    metadata = built_dataset(bucket, "ds", random_cases(4, 300))
    written = len(bucket.names(""))
    files = huggingface_files(bucket, "ds", "parquet")
    assert len(bucket.names("")) == written  # nothing written: the build's copies are returned
    prefix = layout.dataset_prefix("ds")
    assert files == {split: bucket.uri(prefix + layout.parquet_copy(split)) for split in SPLITS
                     if metadata["split_sizes"][split]}
