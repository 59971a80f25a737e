"""The dataset build in plain Python over rows as dicts: the reference the snapshot engine must equal byte for byte.

It was the production build until builds moved onto DuckDB over the case snapshot; the domain rules it applies
(shared/domain/dataset_build.py, dataset_quality.py) are still the specification of what a dataset holds.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS, dataset_metadata
from shared.domain.dataset_quality import check_quality
from shared.domain.dataset_request import BuildRequest
from shared.domain.split_balance import metadata_split_warnings, with_split_warnings
from shared.domain.versions import file_entry, manifest_checksum
from shared.ports import Bucket
from shared.snapshot.engine import PARQUET_ROW_GROUP, ROW_SCHEMA


def encode_rows(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)


def parquet_copy(rows: list[dict[str, Any]]) -> bytes:
    """A split's Parquet copy as the build writes it: its rows in ROW_SCHEMA, zstd, row groups of 100k rows."""
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, ROW_SCHEMA, compression="zstd") as writer:
        writer.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), row_group_size=PARQUET_ROW_GROUP)
    return sink.getvalue()


def write_dataset(
    dataset_id: str, request: BuildRequest, splits: Mapping[str, list[dict[str, Any]]], source: str,
    bucket: Bucket, now: datetime,
) -> dict[str, Any]:
    """Write the split files, then metadata.json (with checksums and the quality report); the metadata."""
    prefix = layout.dataset_prefix(dataset_id)
    files: dict[str, dict[str, Any]] = {}
    data_files: dict[str, str] = {}
    for split in SPLITS:
        data = encode_rows(splits[split])
        data_files[split] = bucket.put(f"{prefix}{split}.jsonl", data, "application/x-ndjson")
        files[f"{split}.jsonl"] = file_entry(data, len(splits[split]))
    for split in SPLITS:
        data = parquet_copy(splits[split])
        bucket.put(f"{prefix}parquet/{split}.parquet", data, "application/vnd.apache.parquet")
        files[f"parquet/{split}.parquet"] = file_entry(data, len(splits[split]))
    described = dataset_metadata(dataset_id, request, splits, now, source)
    warnings = metadata_split_warnings(described)
    metadata = {
        **described,
        "gcs_path": bucket.uri(prefix),
        "data_files": data_files,
        "files": files,
        "checksum": manifest_checksum(files),
        "split_warnings": warnings,
        "quality_report": with_split_warnings(check_quality(splits), warnings),
    }
    bucket.put(prefix + layout.DATASET_METADATA, orjson.dumps(metadata, option=orjson.OPT_INDENT_2), "application/json")
    return metadata





