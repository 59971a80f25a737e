"""Use case: an upload of `imports/<name>.jsonl` (or `.parquet`) ingests every line (row) as a failure event, once
per object version.

Three stages overlap: parsing and scoring in a worker process (the CPU-heavy part, out of this process's GIL),
the file read and bookkeeping here, and IMPORT_WRITERS commits waiting on Firestore.
"""

from __future__ import annotations

import io
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from shared.domain.trends import as_utc
from shared.errors import BadInput, InvalidEvent, ObjectGone, UnstorableRecord
from shared.json_encoding import json_default
from shared.ports import Bucket, CaseStore, ProgressBoard
from shared.services.bucket_objects import is_new_object, object_version_id
from shared.services.case_snapshot import SnapshotAppender
from shared.services.outcome import Outcome
from shared.services.work_progress import ProgressNotes

# Lines of an import are written this many at a time: one atomic Firestore write (at most 500 documents) holds
# them, their counter shard and up to 9 model versions' counters. At 499, a batch whose cases named any model
# went out as a second commit of a few cases, a round trip each time.
IMPORT_BATCH = 490
IMPORT_WRITERS = 2
# fork: the worker inherits the loaded modules (spawn would re-import them and re-run an unguarded __main__).
# The parent holds gRPC threads, which is safe here because the worker only runs pure domain code: it never
# touches gRPC, logging or the clients, so no lock copied mid-flight is ever taken in the child.
_FORK = multiprocessing.get_context("fork")
REJECTS_KEPT_INLINE = 1000
# A running import saves how far it got this often, so a redelivery (a crash, a timeout) resumes there.
CHECKPOINT_LINES = 50_000
# Rejected lines held in memory before they are streamed to their object.
REJECTS_IN_MEMORY = 4 * 1024 * 1024
JSONL = "application/x-ndjson"
# GCS joins at most this many objects in one compose.
MAX_COMPOSE = 32
# A JSONL import reads its object through a buffer this big (the bucket's stream fetches as much per request).
LINE_BUFFER = 8 * 1024 * 1024


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

    @classmethod
    def resumed(cls, import_id: str, checkpoint: Mapping[str, Any] | None) -> ImportReport:
        """The report as a checkpoint left it (its `lines` are the lines done), or a new one."""
        if checkpoint is None:
            return cls(import_id=import_id)
        return cls(import_id, int(checkpoint["line"]), int(checkpoint["accepted"]), int(checkpoint["duplicates"]),
                   int(checkpoint["rejected"]), list(checkpoint.get("rejects") or []))


# What writing a batch tells: the cases that already existed (with their origin), and those the store refused
# (case id -> reason).
_Written = tuple[dict[str, dict[str, Any]], dict[str, str]]


@dataclass
class _ChunkJob:
    """One chunk of the file, settled in file order: its batch's commit, its rejected lines and the lines whose
    case an earlier line of the file already had; `last_line` is the last line it covers (blank ones too), and
    `lines` the chunk's numbered lines (a line the store refuses is rejected with its text)."""

    write: Future[_Written] | None
    batch: list[tuple[str, dict[str, Any], CounterDelta]]
    rejects: list[PreparedLine]
    repeats: int
    last_line: int
    lines: list[tuple[int, bytes]]


@dataclass(frozen=True)
class PreparedLine:
    """One import line after parsing and scoring: a case to write, or a reject with its reason."""

    number: int
    case_id: str | None = None
    case: dict[str, Any] | None = None
    delta: CounterDelta | None = None
    raw: bytes | None = None
    reason: str | None = None


def prepare_lines(
    numbered: list[tuple[int, bytes]], import_id: str, stamp: datetime, audio_root: str | None = None
) -> list[PreparedLine]:
    """Parse, validate and score a chunk of lines (pure: runs in a worker process)."""
    prepared = []
    for number, raw in numbered:
        try:
            event = parse_failure_event(raw, audio_root)
        except InvalidEvent as exc:
            prepared.append(PreparedLine(number, raw=raw, reason=exc.reason))
            continue
        case_id = derive_case_id(event)
        case = new_case(event, case_id, None, stamp) | {"import_id": import_id, "import_line": number}
        prepared.append(PreparedLine(number, case_id, case, case_counters(case)))
    return prepared


def write_storable(store: CaseStore, batch: Sequence[tuple[str, dict[str, Any], CounterDelta]]) -> _Written:
    """Write `batch` in one commit; when the store refuses it for a case it cannot hold (a refused commit writes
    nothing), write each half the same way, down to the single cases it refuses. The cases that already existed,
    and the refused ones with the store's reason: one bad line costs about 2 log2(len(batch)) commits, and never
    the others."""
    try:
        return store.create_cases(batch), {}
    except UnstorableRecord as exc:
        if len(batch) == 1:
            return {}, {batch[0][0]: exc.reason}
    middle = len(batch) // 2
    existing, refused = write_storable(store, batch[:middle])
    later_existing, later_refused = write_storable(store, batch[middle:])
    return existing | later_existing, refused | later_refused


def _chunks(
    lines: Iterable[bytes], report: ImportReport, after_line: int
) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
    """Chunks of numbered non-blank lines after `after_line` (a checkpoint's), each with the last line it covers."""
    chunk: list[tuple[int, bytes]] = []
    number = after_line
    for number, raw in enumerate(lines, start=1):
        if number <= after_line:
            continue
        report.lines += 1
        if raw.strip():  # a blank line (often the last) is no event
            chunk.append((number, raw))
        if len(chunk) >= IMPORT_BATCH:
            yield chunk, number
            chunk = []
    if chunk or number > after_line:
        yield chunk, number


def import_failures(
    lines: Iterable[bytes],
    import_id: str,
    store: CaseStore,
    on_reject: Callable[[int, bytes, str], None] | None = None,
    now: datetime | None = None,
    on_stored: Callable[[list[dict[str, Any]]], None] | None = None,
    *,
    report: ImportReport | None = None,
    on_checkpoint: Callable[[int, ImportReport], None] | None = None,
    checkpoint_every: int = CHECKPOINT_LINES,
    audio_root: str | None = None,
    on_progress: Callable[[int, ImportReport], None] | None = None,
) -> ImportReport:
    """Ingest one JSONL file of failure events (line numbers from 1); every line is counted once; a relative
    audio_path is resolved against ``audio_root``.

    Lines are settled in file order: `on_reject` and `on_stored` (each committed batch's cases as stored) are
    called for everything up to a line before anything after it, and `on_checkpoint(line, report)` every
    `checkpoint_every` lines, when every line up to `line` is counted, kept or rejected; `on_progress(line, report)`
    likewise after every settled chunk (for people watching: it must be cheap). A `report` from a
    checkpoint resumes after its line. A case a line stored in an earlier, interrupted attempt of this same import
    counts as accepted again, not as a duplicate (the stored case says which import and line made it).
    """
    report = report or ImportReport(import_id=import_id)
    resume_after = report.lines
    seen: set[str] = set()
    stamp = now or utc_now()
    parsing: deque[tuple[Future[list[PreparedLine]], int, list[tuple[int, bytes]]]] = deque()
    jobs: deque[_ChunkJob] = deque()
    checkpointed = [resume_after]

    def settle(job: _ChunkJob) -> None:
        existing, refused = job.write.result() if job.write is not None else ({}, {})
        lines_of: dict[str, int] = {case_id: case["import_line"] for case_id, case, _ in job.batch}
        ours = [case_id for case_id, origin in existing.items()
                if origin.get("import_id") == import_id and origin.get("import_line") == lines_of[case_id]]
        report.duplicates += job.repeats + len(existing) - len(ours)
        report.accepted += len(job.batch) - len(existing) - len(refused) + len(ours)
        rejects = job.rejects
        if refused:  # valid lines the store cannot hold: rejected with their line, in file order with the others
            raw_of = dict(job.lines)
            unstorable = [PreparedLine(lines_of[case_id], raw=raw_of.get(lines_of[case_id], b""), reason=reason)
                          for case_id, reason in refused.items()]
            rejects = sorted([*job.rejects, *unstorable], key=lambda line: line.number)
        for line in rejects:
            report.rejected += 1
            if len(report.rejects) < REJECTS_KEPT_INLINE:
                report.rejects.append({"line": line.number, "reason": line.reason})
            if on_reject is not None:
                on_reject(line.number, line.raw or b"", line.reason or "")
        if on_stored is not None:
            stored = [case for case_id, case, _ in job.batch if case_id not in existing and case_id not in refused]
            on_stored(stored + [case for case_id in ours if (case := store.get_case(case_id)) is not None])
        if on_checkpoint is not None and job.last_line - checkpointed[0] >= checkpoint_every:
            checkpointed[0] = job.last_line
            on_checkpoint(job.last_line, report)
        if on_progress is not None:
            on_progress(job.last_line, report)

    def collect(
        prepared: list[PreparedLine], last_line: int, lines: list[tuple[int, bytes]], writers: ThreadPoolExecutor
    ) -> None:
        # Batches never conflict with each other: a case id goes into one batch only (`seen`).
        batch, rejects, repeats = [], [], 0
        for line in prepared:
            if line.case_id is None:
                rejects.append(line)
            elif line.case_id in seen:
                repeats += 1
            else:
                seen.add(line.case_id)
                batch.append((line.case_id, line.case or {}, line.delta or CounterDelta()))
        write = writers.submit(write_storable, store, batch) if batch else None
        jobs.append(_ChunkJob(write, batch, rejects, repeats, last_line, lines))
        while len(jobs) > IMPORT_WRITERS:
            settle(jobs.popleft())

    with ProcessPoolExecutor(max_workers=1, mp_context=_FORK) as parser, ThreadPoolExecutor(IMPORT_WRITERS) as writers:
        for chunk, last_line in _chunks(lines, report, resume_after):
            parsing.append((parser.submit(prepare_lines, chunk, import_id, stamp, audio_root), last_line, chunk))
            while len(parsing) > 2:  # a bounded look-ahead: the file is never all in memory
                future, line, numbered = parsing.popleft()
                collect(future.result(), line, numbered, writers)
        while parsing:
            future, line, numbered = parsing.popleft()
            collect(future.result(), line, numbered, writers)
        while jobs:
            settle(jobs.popleft())
    return report


def is_import_notification(attributes: Mapping[str, str], settings: Settings) -> bool:
    """True for a finalized `imports/*.jsonl` or `imports/*.parquet` object of this deployment's bucket."""
    return any(is_new_object(attributes, settings, layout.IMPORTS, suffix) for suffix in layout.IMPORT_SUFFIXES)


def parquet_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Each row of a Parquet file as the JSON line of the same fields, read a row group at a time.

    Imports validate JSON lines; a row goes through the same parser, so a Parquet file is refused or accepted
    row by row exactly as its JSONL export would be (timestamps become ISO text, nulls are left out).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(stream)
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"not a readable Parquet file: {exc}") from None
    for group in range(parquet.num_row_groups):
        try:
            rows = parquet.read_row_group(group).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise BadInput(f"row group {group} of the Parquet file cannot be read: {exc}") from None
        for row in rows:
            yield orjson.dumps({k: v for k, v in row.items() if v is not None}, default=_as_text)


def _as_text(value: Any) -> Any:
    """A Parquet value JSON has no type for: as stored data is encoded, else as text (validation judges it)."""
    try:
        return json_default(value)
    except TypeError:
        return str(value)


class RejectSink:
    """The rejected lines of an import as JSON lines, in segments: one per checkpoint, each held in memory up to
    `spill_bytes` and then streamed to its object, and joined into one object (server-side) when the import ends.
    So a file of millions of bad lines is written whole without being held, and a resumed import keeps the
    segments its checkpoints recorded."""

    def __init__(
        self, bucket: Bucket, name: str, segments: Sequence[str] = (), spill_bytes: int | None = None
    ) -> None:
        self.bucket, self.name = bucket, name
        self.spill_bytes = REJECTS_IN_MEMORY if spill_bytes is None else spill_bytes
        self.segments = list(segments)
        self.buffer = io.BytesIO()
        self.stack = ExitStack()
        self.stream: BinaryIO | None = None
        self.next_segment = self._segment_name(len(self.segments))

    def _segment_name(self, index: int) -> str:
        return f"{layout.reject_segments_prefix(self.name)}{index:06d}.jsonl"

    def add(self, number: int, raw: bytes, reason: str) -> None:
        line = orjson.dumps({"line": number, "reason": reason, "raw": raw.decode("utf-8", "replace")}) + b"\n"
        if self.stream is None and self.buffer.tell() + len(line) > self.spill_bytes:
            self.stream = self.stack.enter_context(self.bucket.writer(self.next_segment, JSONL))
            self.stream.write(self.buffer.getvalue())
            self.buffer = io.BytesIO()
        (self.stream or self.buffer).write(line)

    def cut(self) -> list[str]:
        """End the current segment (written whole now); every segment so far, for a checkpoint."""
        if self.stream is not None:
            self.stack.close()
            self.stream = None
        elif self.buffer.tell():
            self.bucket.put(self.next_segment, self.buffer.getvalue(), JSONL)
            self.buffer = io.BytesIO()
        else:
            return list(self.segments)
        self.segments.append(self.next_segment)
        self.next_segment = self._segment_name(len(self.segments))
        return list(self.segments)

    def close(self) -> str | None:
        """Join the segments into the one object; its URI, or None when no line was rejected.

        The segments stay until `discard_segments`: until the import's result is recorded, a redelivery resumes
        at the last checkpoint and joins the segments it lists again."""
        segments = self.cut()
        if not segments:
            return None
        joined = segments[:MAX_COMPOSE]
        self.bucket.compose(joined, self.name, JSONL)
        for start in range(MAX_COMPOSE, len(segments), MAX_COMPOSE - 1):
            self.bucket.compose([self.name, *segments[start:start + MAX_COMPOSE - 1]], self.name, JSONL)
        return self.bucket.uri(self.name)

    def discard_segments(self) -> None:
        """Delete the segments, a dead attempt's ones included (once the result that joined them is recorded)."""
        for leftover in self.bucket.names(layout.reject_segments_prefix(self.name)):
            self.bucket.delete(leftover)

    def abandon(self) -> None:
        """Cancel a segment being streamed (the import failed: its retry writes those rejects again)."""
        self.stack.__exit__(RuntimeError, RuntimeError("import failed"), None)


def run_import(
    object_name: str, generation: str | int | None, ledger: CaseStore, bucket: Bucket,
    checkpoint_every: int = CHECKPOINT_LINES, audio_root: str | None = None, progress: ProgressBoard | None = None,
) -> dict[str, Any]:
    """Import one object version, resuming after its last checkpoint when an attempt was interrupted; returns the
    per-file result (also kept in Firestore and the bucket). How far it got is noted on `progress` as it runs."""
    import_id = object_version_id(object_name, generation)
    base = layout.import_result_base(object_name)
    rejects_name = f"{base}.rejected.jsonl"
    done = ledger.import_result(import_id)
    if done is not None:
        if done.get("rejected_lines_uri"):  # an attempt killed between recording the result and this cleanup
            RejectSink(bucket, rejects_name).discard_segments()
        return {**done, "status": "already imported"}
    checkpoint = ledger.import_progress(import_id)
    # Every attempt stamps the cases as the first did: a case is the same whoever stores it.
    stamp = as_utc(checkpoint["stamp"]) if checkpoint else None
    stamp = stamp or utc_now()
    where = {"object": bucket.uri(object_name), "generation": str(generation)}
    notes = ProgressNotes(progress, "import", import_id)
    counted = ("accepted", "duplicates", "rejected")
    gen = int(generation) if generation else None
    # The object's size and how much of it was read give a watcher a percentage (lines have no known total).
    position = ReadPosition(bucket.size(object_name, gen))
    notes.note(state="running", name=object_name, **where, lines_done=int((checkpoint or {}).get("line", 0)),
               **{key: int((checkpoint or {}).get(key, 0)) for key in counted}, **position.fields())

    def note_progress(line: int, report: ImportReport) -> None:
        notes.now_and_then(state="running", lines_done=line, lines_read=report.lines,
                           **{key: getattr(report, key) for key in counted}, **position.fields())
    rejects = RejectSink(bucket, rejects_name, (checkpoint or {}).get("reject_segments") or ())
    snapshot = SnapshotAppender(bucket, stamp, parts=(checkpoint or {}).get("snapshot_parts") or ())

    def save_progress(line: int, report: ImportReport) -> None:
        counts = {key: value for key, value in report.summary().items() if key != "lines"}
        ledger.save_import_progress(import_id, {
            **counts, **where, "line": line, "stamp": stamp.isoformat(),
            "reject_segments": rejects.cut(), "snapshot_parts": snapshot.flush(),
        })

    try:
        with _object_lines(bucket, object_name, gen, position) as lines:
            report = import_failures(
                lines, import_id, ledger, on_reject=rejects.add, now=stamp, on_stored=snapshot.add,
                report=ImportReport.resumed(import_id, checkpoint), on_checkpoint=save_progress,
                checkpoint_every=checkpoint_every, audio_root=audio_root, on_progress=note_progress,
            )
        # Before the result is saved: a crash until then redelivers the import, which writes these again.
        parts = snapshot.flush()
    except ObjectGone:
        rejects.abandon()
        notes.note(state="object gone")
        # Deleted or overwritten before we read it: a newer version brings its own notification.
        return {"status": "object gone", **where, "lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    except BadInput as exc:  # the file as a whole cannot be read (a corrupt Parquet file): a result, not a retry
        rejects.abandon()
        refused = {**where, "import_id": import_id, "status": "rejected", "reason": exc.reason}
        bucket.put(f"{base}.json", orjson.dumps(refused, option=orjson.OPT_INDENT_2), "application/json")
        ledger.save_import(import_id, refused)
        notes.note(state="rejected", reason=exc.reason)
        return refused
    except BaseException:
        rejects.abandon()
        raise
    summary: dict[str, Any] = {**report.summary(), **where, "snapshot_parts": parts,
                               "resumed_after_line": int(checkpoint["line"]) if checkpoint else None}
    rejected_uri = rejects.close()
    if rejected_uri is not None:
        summary["rejected_lines_uri"] = rejected_uri
    bucket.put(f"{base}.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2), "application/json")
    ledger.save_import(import_id, summary)
    notes.note(state="finished", lines_done=report.lines, lines_read=report.lines,
               **{key: getattr(report, key) for key in counted}, **position.fields())
    rejects.discard_segments()
    return {**summary, "status": "imported"}


@dataclass
class ReadPosition:
    """How far an import read its object: `bytes_read` of `bytes_total` (the object's size, None when unknown).
    Counted for JSONL only: a Parquet file is read by row group, footer first, so no offset tracks its rows."""

    bytes_total: int | None
    bytes_read: int | None = None

    def fields(self) -> dict[str, int]:
        """The progress note's fields: what is known of the two."""
        known = {"bytes_total": self.bytes_total, "bytes_read": self.bytes_read}
        return {key: value for key, value in known.items() if value is not None}


def counted_lines(stream: BinaryIO, position: ReadPosition) -> Iterator[bytes]:
    """The stream's lines without their line ends (split on b"\\n", as Bucket.lines splits), each line's bytes
    (its end included) added to `position.bytes_read` as it is handed on: the offset the import has reached."""
    position.bytes_read = 0
    # Buffered: the bucket's blob reader alone, iterated by lines, reads a byte per read().
    with io.BufferedReader(stream, buffer_size=LINE_BUFFER) as buffered:  # type: ignore[arg-type,type-var]
        for line in buffered:
            position.bytes_read += len(line)
            yield line.rstrip(b"\r\n")


@contextmanager
def _object_lines(
    bucket: Bucket, name: str, generation: int | None, position: ReadPosition,
) -> Iterator[Iterator[bytes]]:
    """The object's events as lines: JSONL as it is (its bytes read counted on `position`), Parquet a row a
    line."""
    with bucket.reader(name, generation) as stream:
        yield parquet_lines(stream) if name.endswith(".parquet") else counted_lines(stream, position)


# What the log line of an import keeps of its result (the whole result is in import_results/ and Firestore).
_LOGGED = ("object", "lines", "accepted", "duplicates", "rejected", "reason")


def serve_notification(
    attributes: Mapping[str, str], settings: Settings, store: CaseStore, bucket: Bucket,
    progress: ProgressBoard | None = None,
) -> Outcome:
    """Import the notified object if it is a new import of this bucket; anything else is ignored."""
    if not is_import_notification(attributes, settings):
        return Outcome("ignored", details={"object": attributes.get("objectId")})
    result = run_import(attributes["objectId"], attributes.get("objectGeneration"), store, bucket,
                        audio_root=settings.resolved_audio_root(), progress=progress)
    return Outcome(result["status"], details={key: result[key] for key in _LOGGED if key in result})
