"""Use case: an upload of `imports/<name>.jsonl` ingests every line as a failure event, once per object version.

Three stages overlap: parsing and scoring in a worker process (the CPU-heavy part, out of this process's GIL),
the file read and bookkeeping here, and IMPORT_WRITERS commits waiting on Firestore.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared.clock import utc_now
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.cases import CounterDelta, case_counters, new_case
from shared.domain.failure_event import derive_case_id, parse_failure_event
from shared.errors import InvalidEvent, ObjectGone
from shared.ports import Bucket, CaseStore
from shared.services.bucket_objects import is_new_object, object_version_id
from shared.services.outcome import Outcome

# Lines of an import are written this many at a time (one atomic Firestore write: cases + one counter shard).
IMPORT_BATCH = 499
IMPORT_WRITERS = 2
# fork: the worker inherits the loaded modules (spawn would re-import them and re-run an unguarded __main__).
# The parent holds gRPC threads, which is safe here because the worker only runs pure domain code: it never
# touches gRPC, logging or the clients, so no lock copied mid-flight is ever taken in the child.
_FORK = multiprocessing.get_context("fork")
REJECTS_KEPT_INLINE = 1000


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
) -> ImportReport:
    """Ingest one JSONL file of failure events (line numbers from 1); every line is counted once."""
    report = ImportReport(import_id=import_id)
    seen: set[str] = set()
    stamp = now or utc_now()
    parsing: deque[Future[list[PreparedLine]]] = deque()
    writing: deque[tuple[Future[set[str]], int]] = deque()

    def settle(job: tuple[Future[set[str]], int]) -> None:
        existing = job[0].result()
        report.duplicates += len(existing)
        report.accepted += job[1] - len(existing)

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
            writing.append((writers.submit(store.create_cases, batch), len(batch)))
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
    """True for a finalized `imports/*.jsonl` object of this deployment's bucket."""
    return is_new_object(attributes, settings, layout.IMPORTS, ".jsonl")


def run_import(
    object_name: str, generation: str | int | None, ledger: CaseStore, bucket: Bucket
) -> dict[str, Any]:
    """Import one object version; returns the per-file result (also kept in Firestore and the bucket)."""
    import_id = object_version_id(object_name, generation)
    done = ledger.import_result(import_id)
    if done is not None:
        return {**done, "status": "already imported"}
    rejected_lines: list[bytes] = []

    def keep_reject(number: int, raw: bytes, reason: str) -> None:
        rejected_lines.append(orjson.dumps({"line": number, "reason": reason, "raw": raw.decode("utf-8", "replace")}))

    gen = int(generation) if generation else None
    try:
        report = import_failures(bucket.lines(object_name, gen), import_id, ledger, on_reject=keep_reject)
    except ObjectGone:
        # Deleted or overwritten before we read it: a newer version brings its own notification.
        return {"status": "object gone", "object": bucket.uri(object_name), "generation": str(generation),
                "lines": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
    base = layout.import_result_base(object_name)
    summary: dict[str, Any] = {**report.summary(), "object": bucket.uri(object_name), "generation": str(generation)}
    if rejected_lines:
        summary["rejected_lines_uri"] = bucket.put(
            f"{base}.rejected.jsonl", b"\n".join(rejected_lines) + b"\n", "application/x-ndjson"
        )
    bucket.put(f"{base}.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2), "application/json")
    ledger.save_import(import_id, summary)
    return {**summary, "status": "imported"}


# What the log line of an import keeps of its result (the whole result is in import_results/ and Firestore).
_LOGGED = ("object", "lines", "accepted", "duplicates", "rejected")


def serve_notification(attributes: Mapping[str, str], settings: Settings, store: CaseStore, bucket: Bucket) -> Outcome:
    """Import the notified object if it is a new `imports/*.jsonl` of this bucket; anything else is ignored."""
    if not is_import_notification(attributes, settings):
        return Outcome("ignored", details={"object": attributes.get("objectId")})
    result = run_import(attributes["objectId"], attributes.get("objectGeneration"), store, bucket)
    return Outcome(result["status"], details={key: result[key] for key in _LOGGED})
