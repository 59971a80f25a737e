"""Use cases over finished datasets: read, list, validate, and export them for Hugging Face.

A dataset is the prefix `finetuning_datasets/<dataset_id>/`; it is finished once its `metadata.json` exists
(written last, with every split file's sha256).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_quality import QualityThresholds, gate_reasons, validate_lines
from shared.domain.split_balance import metadata_split_warnings, with_split_warnings
from shared.errors import BadInput, NotFound
from shared.ports import Bucket
from shared.snapshot.dataset_files import (
    DatasetRows,
    copy_object,
    fetch_split_files,
    file_line_issues,
    quality_of_rows,
    read_datasets,
    verified_copies,
)
from shared.snapshot.engine import EngineSettings

HASH_CHUNK = 8 * 1024 * 1024  # bytes read per step when hashing an object


def dataset_info(metadata: Mapping[str, Any], version_id: str | None) -> dict[str, Any]:
    """What a build returns: where the dataset is and what is in it (the keys prepare_dataset returns)."""
    info = {
        key: metadata.get(key)
        for key in ("dataset_id", "created_at", "gcs_path", "data_files", "total_samples", "split_sizes",
                    "error_type_distribution", "checksum")
    }
    info["quality_passed"] = bool(metadata["quality_report"]["passed"])
    # Splits empty or far from their ratio, and why (a dataset built before these were recorded: worked out now).
    info["split_warnings"] = list(metadata.get("split_warnings", metadata_split_warnings(metadata)))
    if version_id is not None:
        info["version_id"] = version_id
    return info


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
    return copy_object(bucket, name, None, chunk_bytes)


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


def dataset_quality(
    bucket: Bucket, dataset_id: str, settings: EngineSettings | None = None,
    thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    """check_quality's report of the dataset's rows as they are now, counted on DuckDB over local copies of its
    Parquet copies when they and its split files are as built, else of its split files
    (shared/snapshot/dataset_files.py): memory is the engine's limit, not the rows. `passed` applies
    `thresholds` (None: the seed's defaults)."""
    metadata = read_metadata(bucket, dataset_id) or {}
    prefix = layout.dataset_prefix(dataset_id)
    if not metadata and all(bucket.size(prefix + layout.split_file(split)) is None for split in SPLITS):
        # A typo'd id would otherwise read as a dataset "with no rows" that merely fails its thresholds.
        raise NotFound(f"no dataset {dataset_id!r}: {bucket.uri(prefix)} holds neither "
                       f"{layout.DATASET_METADATA} nor a split file")
    engine = settings or EngineSettings.from_env()
    with tempfile.TemporaryDirectory(prefix="stt-quality-") as tmp:
        report = read_datasets(bucket, [(dataset_id, metadata.get("files", {}))], Path(tmp),
                               lambda rows: quality_of_rows(rows[0], engine, thresholds))
    return with_split_warnings(report, metadata_split_warnings(metadata))


def validate_dataset(
    bucket: Bucket, dataset_id: str, now: datetime, settings: EngineSettings | None = None,
    thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    """Check a dataset as it is now: files present, rows well-formed, checksums as recorded, no leakage, and
    its quality metrics at least `thresholds` (None: the seed's defaults); `is_valid` when nothing is wrong.

    Each split file is streamed to a local copy (hashed on the way), its lines checked one at a time, and the
    quality report counted on DuckDB over the copies; no split's rows are held in memory."""
    metadata = read_metadata(bucket, dataset_id)
    issues: list[str] = [] if metadata else [f"missing required file: {layout.DATASET_METADATA}"]
    recorded = (metadata or {}).get("files", {})
    with tempfile.TemporaryDirectory(prefix="stt-validate-") as tmp:
        files = fetch_split_files(bucket, dataset_id, Path(tmp))
        for split, file in files.items():
            if file.path is None:
                issues.append(f"missing required file: {file.name}")
                continue
            if file.name in recorded and file.sha256 != recorded[file.name]["sha256"]:
                issues.append(f"{file.name}: sha256 differs from metadata.json (changed after the build)")
            issues.extend(file_line_issues(split, file.path))
        paths = {split: file.path for split, file in files.items()}
        as_built = all(file.sha256 == recorded.get(file.name, {}).get("sha256") for file in files.values())
        # As built, the Parquet copies (when still as built too) hold the same rows and read faster.
        copies = verified_copies(bucket, dataset_id, recorded, Path(tmp) / "copies") if as_built else None
        rows = DatasetRows(paths, parquet=False) if copies is None else DatasetRows(dict(copies), parquet=True)
        quality = quality_of_rows(rows, settings or EngineSettings.from_env(), thresholds)
    quality = with_split_warnings(quality, metadata_split_warnings(metadata or {}))
    issues.extend(gate_reasons(quality))
    return {
        "dataset_id": dataset_id,
        "validated_at": now.isoformat(),
        "is_valid": not issues,
        "issues": issues,
        "warnings": quality["quality_metrics"]["warnings"],
        "statistics": {split: {"num_samples": quality["split_sizes"][split]} for split in SPLITS},
        "quality": quality,
    }


def huggingface_files(bucket: Bucket, dataset_id: str, output_format: str = "json") -> dict[str, str]:
    """The dataset's files for `datasets.load_dataset(output_format, data_files=...)`, by split.

    The JSONL rows already are Hugging Face's format (audio, text, ...); "parquet" returns the Parquet copies
    the build wrote beside them (`parquet/<split>.parquet`). A dataset built before the copies gets them
    written now, from its split files.
    """
    metadata = finished_metadata(bucket, dataset_id)
    if output_format == "json":
        return dict(metadata["data_files"])
    if output_format != "parquet":
        raise BadInput(f"output_format must be 'json' or 'parquet', not {output_format!r}")
    prefix = layout.dataset_prefix(dataset_id)
    recorded = metadata.get("files", {})
    if all(layout.parquet_copy(split) in recorded for split in SPLITS):
        return {split: bucket.uri(prefix + layout.parquet_copy(split)) for split in SPLITS
                if recorded[layout.parquet_copy(split)].get("rows")}  # an empty split: Hugging Face skips it too
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    files = {}
    for split, data in read_split_files(bucket, dataset_id).items():
        if not data:  # an empty split has no rows to infer a schema from: Hugging Face skips it too
            continue
        sink = io.BytesIO()
        pq.write_table(pa_json.read_json(io.BytesIO(data)), sink)
        files[split] = bucket.put(prefix + layout.parquet_copy(split), sink.getvalue())
    return files
