"""Use case: an upload of `imports/<name>.jsonl` (or `.parquet`) ingests every line (row) as a failure event, once
per object version.

Three stages overlap: parsing and scoring in a worker process (the CPU-heavy part, out of this process's GIL),
the file read and bookkeeping here, and IMPORT_WRITERS commits waiting on Firestore.
"""

from __future__ import annotations

import io
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

import orjson

from shared.clock import utc_now
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.cases import CounterDelta, case_counters, new_case
from shared.domain.failure_event import derive_case_id, parse_failure_event
from shared.errors import InvalidEvent, ObjectGone
from shared.json_encoding import json_default
from shared.ports import Bucket, CaseStore
from shared.services.bucket_objects import is_new_object, object_version_id
from shared.services.case_snapshot import SnapshotAppender
from shared.services.outcome import Outcome

# Lines of an import are written this many at a time (one atomic Firestore write: cases + one counter shard).
IMPORT_BATCH = 499
IMPORT_WRITERS = 2
# fork: the worker inherits the loaded modules (spawn would re-import them and re-run an unguarded __main__).
# The parent holds gRPC threads, which is safe here because the worker only runs pure domain code: it never
# touches gRPC, logging or the clients, so no lock copied mid-flight is ever taken in the child.
_FORK = multiprocessing.get_context("fork")
REJECTS_KEPT_INLINE = 1000
# Rejected lines held in memory before they are streamed to their object.
REJECTS_IN_MEMORY = 4 * 1024 * 1024
JSONL = "application/x-ndjson"


@dataclass
class ImportReport:
    """Per-file result of a bulk import: accepted, duplicates, rejected lines with their reasons."""

    import_id: str
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects: list[dict[str, Any]] = field(default_factory=list)  # the first REJECTS_KEPT_INLINE

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "rejects"} | {"rejects": self.rejects}


@dataclass(frozen=True)
class PreparedLine:
    """One import line after parsing and scoring: a case to write, or a reject with its reason."""

    number: int
    case_id: str | None = None
    case: dict[str, Any] | None = None
    delta: CounterDelta | None = None
    raw: bytes | None = None
    reason: str | None = None


def prepare_lines(numbered: list[tuple[int, bytes]], import_id: str, stamp: datetime) -> list[PreparedLine]:
    """Parse, validate and score a chunk of lines (pure: runs in a worker process)."""
    prepared = []
    for number, raw in numbered:
        try:
            event = parse_failure_event(raw)
        except InvalidEvent as exc:
            prepared.append(PreparedLine(number, raw=raw, reason=exc.reason))
            continue
        case_id = derive_case_id(event)
        case = new_case(event, case_id, None, stamp) | {"import_id": import_id, "import_line": number}
        prepared.append(PreparedLine(number, case_id, case, case_counters(case)))
    return prepared


def _chunks(lines: Iterable[bytes], report: ImportReport) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for number, raw in enumerate(lines, start=1):
        report.lines += 1
        if raw.strip():  # a blank line (often the last) is no event
            chunk.append((number, raw))
        if len(chunk) >= IMPORT_BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_failures(
    lines: Iterable[bytes],
    import_id: str,
    store: CaseStore,
    on_reject: Callable[[int, bytes, str], None] | None = None,
    now: datetime | None = None,
    on_stored: Callable[[list[dict[str, Any]]], None] | None = None,
) -> ImportReport:
    """Ingest one JSONL file of failure events (line numbers from 1); every line is counted once.

    `on_stored` gets each committed batch's cases as stored: the new ones, and those an interrupted earlier
    attempt of this same import had committed (they count as accepted, not as duplicates).
    """
    report = ImportReport(import_id=import_id)
    seen: set[str] = set()
    stamp = now or utc_now()
    parsing: deque[Future[list[PreparedLine]]] = deque()
    writing: deque[tuple[Future[dict[str, str | None]], list[tuple[str, dict[str, Any], CounterDelta]]]] = deque()

    def settle(job: tuple[Future[dict[str, str | None]], list[tuple[str, dict[str, Any], CounterDelta]]]) -> None:
        existing = job[0].result()
        ours = [case_id for case_id, owner in existing.items() if owner == import_id]
        report.duplicates += len(existing) - len(ours)
        report.accepted += len(job[1]) - len(existing) + len(ours)
        if on_stored is not None:
            stored = [case for case_id, case, _ in job[1] if case_id not in existing]
            on_stored(stored + [case for case_id in ours if (case := store.get_case(case_id)) is not None])

    def collect(prepared: list[PreparedLine], writers: ThreadPoolExecutor) -> None:
        # Batches never conflict with each other: a case id goes into one batch only (`seen`).
        batch = []
        for line in prepared:
            if line.case_id is None:
                report.rejected += 1
                if len(report.rejects) < REJECTS_KEPT_INLINE:
                    report.rejects.append({"line": line.number, "reason": line.reason})
                if on_reject is not None:
                    on_reject(line.number, line.raw or b"", line.reason or "")
            elif line.case_id in seen:
                report.duplicates += 1
            else:
                seen.add(line.case_id)
                batch.append((line.case_id, line.case or {}, line.delta or CounterDelta()))
        if batch:
            writing.append((writers.submit(store.create_cases, batch), batch))
        while len(writing) > IMPORT_WRITERS:
            settle(writing.popleft())

    with ProcessPoolExecutor(max_workers=1, mp_context=_FORK) as parser, ThreadPoolExecutor(IMPORT_WRITERS) as writers:
        for chunk in _chunks(lines, report):
            parsing.append(parser.submit(prepare_lines, chunk, import_id, stamp))
            while len(parsing) > 2:  # a bounded look-ahead: the file is never all in memory
                collect(parsing.popleft().result(), writers)
        while parsing:
            collect(parsing.popleft().result(), writers)
        while writing:
            settle(writing.popleft())
    return report


def is_import_notification(attributes: Mapping[str, str], settings: Settings) -> bool:
    """True for a finalized `imports/*.jsonl` or `imports/*.parquet` object of this deployment's bucket."""
    return any(is_new_object(attributes, settings, layout.IMPORTS, suffix) for suffix in layout.IMPORT_SUFFIXES)


def parquet_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Each row of a Parquet file as the JSON line of the same fields, read a row group at a time.

    Imports validate JSON lines; a row goes through the same parser, so a Parquet file is refused or accepted
    row by row exactly as its JSONL export would be (timestamps become ISO text, nulls are left out).
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(stream)
    for group in range(parquet.num_row_groups):
        for row in parquet.read_row_group(group).to_pylist():
            yield orjson.dumps({k: v for k, v in row.items() if v is not None}, default=_as_text)


def _as_text(value: Any) -> Any:
    """A Parquet value JSON has no type for: as stored data is encoded, else as text (validation judges it)."""
    try:
        return json_default(value)
    except TypeError:
        return str(value)


class RejectSink:
    """The rejected lines of an import as JSON lines, kept in memory up to `spill_bytes`, then streamed to their
    object; so a file of millions of bad lines is written whole without being held."""

    def __init__(self, bucket: Bucket, name: str, spill_bytes: int = REJECTS_IN_MEMORY) -> None:
        self.bucket, self.name, self.spill_bytes = bucket, name, spill_bytes
        self.buffer = io.BytesIO()
        self.stack = ExitStack()
        self.stream: BinaryIO | None = None

    def add(self, number: int, raw: bytes, reason: str) -> None:
        line = orjson.dumps({"line": number, "reason": reason, "raw": raw.decode("utf-8", "replace")}) + b"\n"
        if self.stream is None and self.buffer.tell() + len(line) > self.spill_bytes:
            self.stream = self.stack.enter_context(self.bucket.writer(self.name, JSONL))
            self.stream.write(self.buffer.getvalue())
            self.buffer = io.BytesIO()
        (self.stream or self.buffer).write(line)

    def close(self) -> str | None:
        """Finish the object; its URI, or None when no line was rejected."""
        if self.stream is not None:
            self.stack.close()
            return self.bucket.uri(self.name)
        if self.buffer.tell():
            return self.bucket.put(self.name, self.buffer.getvalue(), JSONL)
        return None

    def abandon(self) -> None:
        """Cancel a streamed object (the import failed: its retry writes the rejects again)."""
        self.stack.__exit__(RuntimeError, RuntimeError("import failed"), None)


def run_import(
    object_name: str, generation: str | int | None, ledger: CaseStore, bucket: Bucket
) -> dict[str, Any]:
    """Import one object version; returns the per-file result (also kept in Firestore and the bucket)."""
    import_id = object_version_id(object_name, generation)
    done = ledger.import_result(import_id)
    if done is not None:
        return {**done, "status": "already imported"}
    base = layout.import_result_base(object_name)
    rejects = RejectSink(bucket, f"{base}.rejected.jsonl")
    snapshot = SnapshotAppender(bucket, utc_now())
    gen = int(generation) if generation else None
    try:
        with _object_lines(bucket, object_name, gen) as lines:
            report = import_failures(lines, import_id, ledger, on_reject=rejects.add, on_stored=snapshot.add)
        # Before the result is saved: a crash until then redelivers the import, which writes these again.
        parts = snapshot.flush()
    except ObjectGone:
        rejects.abandon()
        # Deleted or overwritten before we read it: a newer version brings its own notification.
        return {"status": "object gone", "object": bucket.uri(object_name), "generation": str(generation),
                "lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    except BaseException:
        rejects.abandon()
        raise
    summary: dict[str, Any] = {**report.summary(), "object": bucket.uri(object_name), "generation": str(generation),
                               "snapshot_parts": parts}
    rejected_uri = rejects.close()
    if rejected_uri is not None:
        summary["rejected_lines_uri"] = rejected_uri
    bucket.put(f"{base}.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2), "application/json")
    ledger.save_import(import_id, summary)
    return {**summary, "status": "imported"}


@contextmanager
def _object_lines(bucket: Bucket, name: str, generation: int | None) -> Iterator[Iterator[bytes]]:
    """The object's events as lines: JSONL as it is, Parquet a row a line."""
    if name.endswith(".parquet"):
        with bucket.reader(name, generation) as stream:
            yield parquet_lines(stream)
    else:
        yield bucket.lines(name, generation)


# What the log line of an import keeps of its result (the whole result is in import_results/ and Firestore).
_LOGGED = ("object", "lines", "accepted", "duplicates", "rejected")


def serve_notification(attributes: Mapping[str, str], settings: Settings, store: CaseStore, bucket: Bucket) -> Outcome:
    """Import the notified object if it is a new import of this bucket; anything else is ignored."""
    if not is_import_notification(attributes, settings):
        return Outcome("ignored", details={"object": attributes.get("objectId")})
    result = run_import(attributes["objectId"], attributes.get("objectGeneration"), store, bucket)
    return Outcome(result["status"], details={key: result[key] for key in _LOGGED})
