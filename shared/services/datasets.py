"""Use cases over finished datasets: read, list, validate, and export them for Hugging Face.

A dataset is the prefix `finetuning_datasets/<dataset_id>/`; it is finished once its `metadata.json` exists
(written last, with every split file's sha256).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_quality import check_quality, validate_lines
from shared.errors import BadInput, NotFound, ObjectGone
from shared.ports import Bucket

HASH_CHUNK = 8 * 1024 * 1024  # bytes read per step when hashing an object


def read_metadata(bucket: Bucket, dataset_id: str) -> dict[str, Any] | None:
    """A finished dataset's metadata, or None (absent or half-written)."""
    data = bucket.get(layout.dataset_prefix(dataset_id) + layout.DATASET_METADATA)
    return orjson.loads(data) if data is not None else None


def finished_metadata(bucket: Bucket, dataset_id: str) -> dict[str, Any]:
    """A finished dataset's metadata; NotFound when there is none."""
    metadata = read_metadata(bucket, dataset_id)
    if metadata is None:
        raise NotFound(f"no finished dataset {dataset_id!r} ({layout.DATASET_METADATA} missing)")
    return metadata


def read_split_files(bucket: Bucket, dataset_id: str) -> dict[str, bytes | None]:
    """Each split file's bytes as they are now (None when missing), by split."""
    return {split: bucket.get(f"{layout.dataset_prefix(dataset_id)}{split}.jsonl") for split in SPLITS}


def read_rows(bucket: Bucket, dataset_id: str) -> dict[str, list[dict[str, Any]]]:
    """Each split's rows as they are now (a missing file has none; unreadable lines are skipped)."""
    return {split: validate_lines(split, (data or b"").splitlines())[0]
            for split, data in read_split_files(bucket, dataset_id).items()}


def object_sha256(bucket: Bucket, name: str, chunk_bytes: int = HASH_CHUNK) -> str | None:
    """The object's sha256, read through ``bucket.reader`` a chunk at a time (never the whole object in
    memory); None when it is missing."""
    digest = hashlib.sha256()
    try:
        with bucket.reader(name) as stream:
            while chunk := stream.read(chunk_bytes):
                digest.update(chunk)
    except ObjectGone:
        return None
    return digest.hexdigest()


def changed_files(bucket: Bucket, dataset_id: str, recorded: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The recorded files (name -> {"sha256": ...}) that are missing or differ now, by name; each is hashed
    as a stream, so a verification holds one chunk, not one file."""
    prefix = layout.dataset_prefix(dataset_id)
    return [name for name, entry in sorted(recorded.items()) if object_sha256(bucket, prefix + name) != entry["sha256"]]


def list_datasets(bucket: Bucket) -> list[dict[str, Any]]:
    """Finished datasets' metadata, newest first (a dataset without metadata.json is still being written)."""
    infos = []
    for name in bucket.names(layout.DATASETS):
        if layout.is_dataset_metadata(name) and (data := bucket.get(name)) is not None:
            infos.append(orjson.loads(data))
    return sorted(infos, key=lambda info: str(info.get("created_at")), reverse=True)


def validate_dataset(bucket: Bucket, dataset_id: str, now: datetime) -> dict[str, Any]:
    """Check a dataset as it is now: files present, rows well-formed, checksums as recorded, no leakage."""
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
        splits[split], line_issues = validate_lines(split, data.splitlines())
        issues.extend(line_issues)
    quality = check_quality(splits)
    issues.extend(i["message"] for i in quality["quality_metrics"]["issues"] if i["severity"] == "critical")
    return {
        "dataset_id": dataset_id,
        "validated_at": now.isoformat(),
        "is_valid": not issues,
        "issues": issues,
        "warnings": quality["quality_metrics"]["warnings"],
        "statistics": {split: {"num_samples": len(rows)} for split, rows in splits.items()},
        "quality": quality,
    }


def huggingface_files(bucket: Bucket, dataset_id: str, output_format: str = "json") -> dict[str, str]:
    """The dataset's files for `datasets.load_dataset(output_format, data_files=...)`, by split.

    The JSONL rows already are Hugging Face's format (audio, text, ...); "parquet" writes a Parquet copy of each
    split beside them (`parquet/<split>.parquet`) and returns those.
    """
    metadata = finished_metadata(bucket, dataset_id)
    if output_format == "json":
        return dict(metadata["data_files"])
    if output_format != "parquet":
        raise BadInput(f"output_format must be 'json' or 'parquet', not {output_format!r}")
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    files = {}
    for split, data in read_split_files(bucket, dataset_id).items():
        if not data:  # an empty split has no rows to infer a schema from: Hugging Face skips it too
            continue
        sink = io.BytesIO()
        pq.write_table(pa_json.read_json(io.BytesIO(data)), sink)
        files[split] = bucket.put(f"{layout.dataset_prefix(dataset_id)}parquet/{split}.parquet", sink.getvalue())
    return files
