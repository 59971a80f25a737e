"""Use case: export the failed cases and their corrections to `learning_data/` (CONTRACT.md's bucket layout).

`failed_cases.jsonl` holds stored cases, a line each (correction history included); `corrections.jsonl` holds
corrections, a line each, with their case id and `correction_number` (1 for a case's first). Both are change
logs that grow by appending: an export appends the cases changed since the previous one as one segment,
composed onto the file server-side (GCS compose, the documented way to append to an object: nothing is
downloaded or rewritten). The changed cases are the ones in the case snapshot's parts the previous export had
not read (every write reaches the snapshot: imports write parts, single writes reach it by its tail), read whole
from the store by id; an export is as fresh as the snapshot it reads.

So a case can have several lines. For a case_id the last line is the case as it is (the one with the latest
`updated_at`), the snapshot's rule; a correction repeats with the same content, (case_id, correction_number)
names it. A file is rewritten whole, one line per case, on the first export, once the snapshot was compacted
(the parts it had read are gone), when more than half the cases changed, when lines would outnumber cases two
to one, or after MAX_SEGMENTS appends; also when it is not at the generation the last export recorded (a run that
died between its append and its metadata, or a concurrent one).

`metadata.json` goes last, under a generation precondition, and says what the files are: when, the statistics,
each file's generation, bytes, rows and segments (offset, bytes, rows and sha256 of each appended range, so a
download is checked range by range), and the snapshot parts read.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import pyarrow.parquet as pq

from shared.domain import bucket_layout as layout
from shared.domain.statistics import summarize
from shared.json_encoding import dumps_json
from shared.ports import Bucket, CaseStore

JSONL = "application/x-ndjson"
FILES = (layout.FAILED_CASES, layout.CORRECTIONS)
MAX_SEGMENTS = 100  # appends before a file is rewritten whole (keeps metadata.json small)


def correction_rows(case: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per entry of the case's correction history, oldest first, numbered from 1."""
    for number, entry in enumerate(case.get("corrections") or [], start=1):
        yield {"case_id": case.get("case_id"), "correction_number": number, **entry}


class _Tally:
    """What was streamed into one segment: its sha256, bytes and rows."""

    def __init__(self) -> None:
        self.digest, self.bytes, self.rows = hashlib.sha256(), 0, 0

    def add(self, line: bytes) -> bytes:
        self.digest.update(line)
        self.bytes += len(line)
        self.rows += 1
        return line

    def segment(self, offset: int, now: datetime) -> dict[str, Any]:
        return {"offset": offset, "bytes": self.bytes, "rows": self.rows, "sha256": self.digest.hexdigest(),
                "exported_at": now.isoformat()}


def changed_case_ids(bucket: Bucket, parts: Iterable[str]) -> list[str]:
    """The case ids of these snapshot parts (their case_id column only), sorted, once each."""
    ids: set[str] = set()
    for name in parts:
        data = bucket.get(name)
        if data is not None:  # compacted away meanwhile: the export that sees it gone rewrites whole
            column = pq.read_table(io.BytesIO(data), columns=["case_id"]).column("case_id")
            ids.update(case_id for case_id in column.to_pylist() if case_id is not None)
    return sorted(ids)


def _plan(previous: Mapping[str, Any] | None, parts: Sequence[str], total_cases: int,
          bucket: Bucket) -> tuple[str, list[str], str]:
    """("rewrite" | "append" | "none", the case ids to append, why)."""
    log = (previous or {}).get("log")
    if not log:
        return "rewrite", [], "first export"
    read = set(log["parts"])
    if not read <= set(parts):
        return "rewrite", [], "the snapshot was compacted"
    new_parts = [name for name in parts if name not in read]
    if not new_parts:
        return "none", [], "no new snapshot parts"
    ids = changed_case_ids(bucket, new_parts)
    if not ids:
        return "none", [], "the new snapshot parts hold no case"
    files = previous["files"] if previous else {}
    lines = files[layout.FAILED_CASES]["rows"]
    if len(ids) * 2 > total_cases or lines + len(ids) > 2 * max(total_cases, 1):
        return "rewrite", [], f"{len(ids)} changed cases of {total_cases}"
    if any(len(files[name]["segments"]) >= MAX_SEGMENTS for name in FILES):
        return "rewrite", [], f"{MAX_SEGMENTS} segments"
    return "append", ids, f"{len(ids)} changed cases"


def _write_segments(bucket: Bucket, cases: Iterable[Mapping[str, Any]], stamp: str) -> dict[str, tuple[str, _Tally]]:
    """Each file's segment of these cases, staged under EXPORT_SEGMENTS: its name and tally, by file."""
    staged = {name: (f"{layout.EXPORT_SEGMENTS}{stamp}-{name.rsplit('/', 1)[-1]}", _Tally()) for name in FILES}
    (cases_name, case_tally), (corr_name, corr_tally) = staged[layout.FAILED_CASES], staged[layout.CORRECTIONS]
    with bucket.writer(cases_name, JSONL) as case_out, bucket.writer(corr_name, JSONL) as corr_out:
        for case in cases:
            case_out.write(case_tally.add(dumps_json(case) + b"\n"))
            for row in correction_rows(case):
                corr_out.write(corr_tally.add(dumps_json(row) + b"\n"))
    return staged


def _land(
    bucket: Bucket, staged: Mapping[str, tuple[str, _Tally]], previous: Mapping[str, Any] | None, append: bool,
    now: datetime,
) -> dict[str, dict[str, Any]] | None:
    """Compose each staged segment onto its file (append) or as the file (rewrite), each under a generation
    precondition; each file's manifest entry, None when a file moved on (a concurrent or crashed export)."""
    entries: dict[str, dict[str, Any]] = {}
    try:
        for name, (segment, tally) in staged.items():
            if append:
                recorded = dict((previous or {})["files"][name])
                sources, generation, offset = [name, segment], int(recorded["generation"]), int(recorded["bytes"])
                segments = [*recorded["segments"], tally.segment(offset, now)]
                rows = int(recorded["rows"]) + tally.rows
            else:
                sources, generation, offset = [segment], bucket.generation(name), 0
                segments, rows = [tally.segment(0, now)], tally.rows
            landed = bucket.compose_if_generation(sources, name, generation, JSONL)
            if landed is None:
                return None
            entries[name] = {"generation": landed, "bytes": offset + tally.bytes, "rows": rows, "segments": segments}
    finally:
        for segment, _ in staged.values():
            bucket.delete(segment)
    return entries


def export_cases(
    store: CaseStore, bucket: Bucket, now: datetime, parts: Sequence[str] | None = None
) -> dict[str, Any]:
    """Append the cases changed since the last export to the two files (or rewrite them whole: see the module),
    then metadata.json; a summary. `parts`: the snapshot's part names now (listed when not given).

    Nothing is written when no part is new and the statistics are what the last export recorded."""
    statistics = orjson.loads(dumps_json(summarize(store.counter_shards())))
    parts = sorted(parts if parts is not None else bucket.names(layout.SNAPSHOT_PARTS))
    data, meta_generation = bucket.get_versioned(layout.LEARNING_METADATA)
    previous = orjson.loads(data) if data is not None else None
    mode, ids, why = _plan(previous, parts, int(statistics.get("total_cases") or 0), bucket)
    stamp = f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    if mode == "none":
        unchanged = previous is not None and previous.get("statistics") == statistics
        if unchanged and previous is not None and previous["log"]["parts"] == parts:
            return {"exported_at": previous.get("exported_at"), "objects": {}, "skipped": "nothing changed since",
                    "cases": 0, "corrections": 0}
        entries: dict[str, dict[str, Any]] = dict((previous or {})["files"])
        written = {"cases": 0, "corrections": 0}
    else:
        landed = None
        if mode == "append":
            staged = _write_segments(bucket, store.get_cases(ids), stamp)
            landed = _land(bucket, staged, previous, append=True, now=now)
            if landed is None:
                mode, why = "rewrite", "a file is not at the generation the last export recorded"
        if landed is None:
            staged = _write_segments(bucket, store.stream_cases(), stamp)
            landed = _land(bucket, staged, previous, append=False, now=now)
        if landed is None:
            return {"exported_at": now.isoformat(), "objects": {}, "skipped": "another export is writing",
                    "cases": 0, "corrections": 0}
        entries = landed
        written = {"cases": staged[layout.FAILED_CASES][1].rows, "corrections": staged[layout.CORRECTIONS][1].rows}
    metadata = {"exported_at": now, "statistics": statistics, "files": entries,
                "log": {"parts": parts, "mode": mode, "why": why}}
    committed = bucket.put_if_generation(layout.LEARNING_METADATA, dumps_json(metadata, indent=True), meta_generation)
    objects = {name: bucket.uri(name) for name in (*FILES, layout.LEARNING_METADATA)}
    return {"exported_at": now.isoformat(), "objects": objects if committed else {}, "mode": mode, "why": why,
            **written, "lines": entries[layout.FAILED_CASES]["rows"], "metadata_committed": committed}
