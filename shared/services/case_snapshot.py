"""Use cases of the case snapshot (`learning_data/cases/`): keep it complete, and build datasets over it.

Firestore holds each case for its one-at-a-time writes; the snapshot holds every case as Parquet parts for the
reads that scan (builds, analysts). Two writers keep it complete:

- bulk imports write the cases they stored as parts themselves (`SnapshotAppender`);
- everything written one case at a time (events, corrections, the Python API) carries `tail_at`, its commit
  time; `sync_snapshot` writes the cases changed since the watermark as a part, then moves the watermark. It
  runs before every build, so a build sees every case stored before its request was uploaded, and on every
  scheduled `aggregate`. The very first sync (no watermark yet) writes every stored case once.

A case written again appears in a later part; the row with the latest `updated_at` wins on reading, so a
case written twice (a redelivered import, an overlapping tail) is harmless.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from shared.domain import bucket_layout as layout
from shared.domain.audio_clips import RowAudio
from shared.domain.case_snapshot import cases_to_table
from shared.domain.dataset_quality import QualityThresholds
from shared.domain.dataset_request import BuildRequest
from shared.domain.trends import as_utc
from shared.ports import Bucket, CaseStore
from shared.services.audio_reads import OpenBucket, only_bucket, read_headers
from shared.snapshot.engine import ByteSink, EngineSettings, build_from_snapshot, compact, finished_metadata
from shared.snapshot.parts import ROWS_PER_PART, fetch_parts, write_cases, write_part

JSONL = "application/x-ndjson"
PARQUET = "application/vnd.apache.parquet"
# More parts than this are compacted into one by the scheduled upkeep.
MAX_PARTS = 64


def read_watermark(bucket: Bucket) -> tuple[dict[str, Any] | None, int]:
    """The sync state (`tail_at`: the latest commit time the snapshot holds) and its object generation."""
    data, generation = bucket.get_versioned(layout.SNAPSHOT_WATERMARK)
    return (orjson.loads(data) if data is not None else None), generation


def sync_snapshot(cases: CaseStore, bucket: Bucket, now: datetime) -> dict[str, Any]:
    """Write the cases changed since the watermark as parts, then move the watermark; what was written.

    The watermark is the latest `tail_at` read, not the clock: a Firestore query sees every write committed
    before it runs, so nothing committed at or before that time can be missing. The next read starts at it
    again (at or after, in case another write committed at that same instant); the cases already read at
    exactly the watermark are recorded with it and skipped, so a sync with nothing new writes no part.
    """
    state, generation = read_watermark(bucket)
    since = as_utc(state.get("tail_at")) if state else None
    seen_at_since = set((state or {}).get("at_watermark") or [])
    latest: list[Any] = [since, set(seen_at_since)]  # the latest tail_at read, and the cases read at it

    def new_rows(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            stamp = as_utc(row.get("tail_at"))
            if stamp is not None and stamp == since and row.get("case_id") in seen_at_since:
                continue
            if stamp is not None and (latest[0] is None or stamp > latest[0]):
                latest[:] = [stamp, set()]
            if stamp is not None and stamp == latest[0]:
                latest[1].add(row.get("case_id"))
            yield row

    rows = cases.stream_cases() if state is None else cases.cases_changed_since(since)
    parts = write_cases(bucket, new_rows(rows), now=now, prefix=layout.SNAPSHOT_PARTS)
    watermark = latest[0].isoformat() if latest[0] is not None else None
    moved = bucket.put_if_generation(
        layout.SNAPSHOT_WATERMARK,
        orjson.dumps({"tail_at": watermark, "at_watermark": sorted(latest[1]), "synced_at": now.isoformat(),
                      "parts": parts}),
        generation,
    )
    # Lost to a concurrent sync: its watermark stays; ours would differ only by what both wrote anyway.
    return {"parts": parts, "tail_at": watermark, "first": state is None, "watermark_moved": moved}


def maintain_snapshot(cases: CaseStore, bucket: Bucket, now: datetime, max_parts: int = MAX_PARTS) -> dict[str, Any]:
    """The scheduled upkeep: sync the tail, and compact the parts into one once there are more than `max_parts`
    (each sync and import adds parts; a build reads every part)."""
    synced = sync_snapshot(cases, bucket, now)
    names = bucket.names(layout.SNAPSHOT_PARTS)
    before, compacted = len(names), None
    if before > max_parts:
        compacted = compact(bucket, now, EngineSettings.from_env(), layout.SNAPSHOT_PARTS)
        names = bucket.names(layout.SNAPSHOT_PARTS)
    # part_names: what the snapshot is made of now, so the exports need not list the parts again.
    return {**synced, "parts_before": before, "compacted_into": compacted, "part_names": names}


class SnapshotAppender:
    """The cases a bulk import stored, written as parts of about `rows_per_part` rows as they come; held as
    Arrow columns in between, not as the cases' dicts."""

    def __init__(
        self, bucket: Bucket, now: datetime, rows_per_part: int = ROWS_PER_PART, parts: Sequence[str] = ()
    ) -> None:
        self.bucket, self.now, self.rows_per_part = bucket, now, rows_per_part
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.parts: list[str] = list(parts)  # written by earlier attempts of the same import

    def add(self, cases: Sequence[Mapping[str, Any]]) -> None:
        if cases:
            self.pending.append(cases_to_table(cases))
            self.rows += len(cases)
        if self.rows >= self.rows_per_part:
            self.flush()

    def flush(self) -> list[str]:
        """Write what is pending as one part; every part written so far."""
        if self.pending:
            table = pa.concat_tables(self.pending)
            self.parts.append(write_part(self.bucket, table, self.now, prefix=layout.SNAPSHOT_PARTS))
            self.pending, self.rows = [], 0
        return self.parts


def build_over_snapshot(
    request: BuildRequest, dataset_id: str, source: str, bucket: Bucket, now: datetime,
    before_write: Callable[[], None] = lambda: None, thresholds: QualityThresholds | None = None,
    open_bucket: OpenBucket | None = None,
) -> dict[str, Any] | None:
    """Build a dataset from the snapshot's parts: the split files and their Parquet copies streamed to the
    bucket with their sha256, then `metadata.json` (the dataset is finished once it exists); its metadata, None
    when no case is eligible.

    `before_write` runs before the first byte is written (a leased build checks it still holds its lease);
    the quality report applies `thresholds` (None: the seed's defaults). A request with a duration filter or an
    augmentation has its rows' clip headers read through `open_bucket` (the audio's buckets; default: this
    bucket only) where the rows have no duration.
    Memory is DuckDB's limit (EngineSettings) plus the parts' compressed size in the temporary folder.
    """
    prefix = layout.dataset_prefix(dataset_id)
    opened: list[str] = []

    def open_file(name: str) -> AbstractContextManager[ByteSink]:
        if not opened:
            before_write()
        opened.append(name)
        return bucket.writer(prefix + name, PARQUET if name.endswith(".parquet") else JSONL)

    opener = open_bucket or only_bucket(bucket)

    def read_audio(rows: Sequence[tuple[str, str, str]]) -> Iterator[RowAudio]:
        return read_headers(opener, rows)

    with tempfile.TemporaryDirectory(prefix="stt-build-") as folder:
        paths, names = fetch_parts(bucket, Path(folder), layout.SNAPSHOT_PARTS)
        build = build_from_snapshot(paths, request, open_file, dataset_id=dataset_id, created_at=now,
                                    source=source, settings=EngineSettings.from_env(), names=names,
                                    thresholds=thresholds, read_audio=read_audio)
    if build.total == 0:
        return None
    data_files = {split: bucket.uri(prefix + layout.split_file(split)) for split in build.split_sizes}
    metadata = finished_metadata(build, bucket.uri(prefix), data_files)
    bucket.put(prefix + layout.DATASET_METADATA, orjson.dumps(metadata, option=orjson.OPT_INDENT_2),
               "application/json")
    return metadata
