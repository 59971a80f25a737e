"""Use cases of failure ingestion: a failure event, a correction, a bulk import file.

Bad input is never retried: it is kept (quarantine, with the raw payload and a reason a person understands)
and acknowledged. Store errors propagate, so the delivery is retried and finally dead-lettered.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.cases import CounterDelta, already_applied, apply_correction, case_counters, new_case
from shared.domain.failure_event import Correction, FailureEvent, derive_case_id, parse_correction, parse_failure_event
from shared.errors import InvalidEvent
from shared.ports import CaseStore

# Lines of an import are written this many at a time (one atomic Firestore write: cases + one counter shard).
IMPORT_BATCH = 499
IMPORT_WRITERS = 2
# fork: the worker inherits the loaded modules (spawn would re-import them and re-run an unguarded __main__).
# The parent holds gRPC threads, which is safe here because the worker only runs pure domain code: it never
# touches gRPC, logging or the clients, so no lock copied mid-flight is ever taken in the child.
_FORK = multiprocessing.get_context("fork")
REJECTS_KEPT_INLINE = 1000




@dataclass(frozen=True)
class Outcome:
    """What one delivery did: stored, duplicate, corrected or quarantined (with the reason)."""

    status: str
    case_id: str | None = None
    reason: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def record_failure(data: bytes, message_id: str, store: CaseStore, now: datetime | None = None) -> Outcome:
    """Validate a failure event and store it as a case, exactly once per case id."""
    try:
        event = parse_failure_event(data)
    except InvalidEvent as exc:
        store.quarantine(f"record_failure-{message_id}", data, exc.reason, "record_failure", message_id=message_id)
        return Outcome("quarantined", reason=exc.reason)
    return store_event(event, message_id, store, now)


def store_event(event: FailureEvent, message_id: str | None, store: CaseStore, now: datetime | None = None) -> Outcome:
    """Store a validated event as a case with its counters; a second time changes nothing."""
    case_id = derive_case_id(event)
    case = new_case(event, case_id, message_id, now or _now())
    created = store.create_case(case_id, case, case_counters(case))
    return Outcome("stored" if created else "duplicate", case_id=case_id)


def record_correction(data: bytes, message_id: str, store: CaseStore, now: datetime | None = None) -> Outcome:
    """Apply a correction to its case, keeping the history; a redelivery changes nothing."""
    try:
        correction = parse_correction(data)
    except InvalidEvent as exc:
        store.quarantine(
            f"record_correction-{message_id}", data, exc.reason, "record_correction", message_id=message_id
        )
        return Outcome("quarantined", reason=exc.reason)
    outcome = correct_case(correction, message_id, store, now)
    if outcome is None:
        # Most likely the correction overtook its failure event, or names a wrong id: keep it to re-publish.
        reason = f"no case with case_id {correction.case_id!r}; re-publish the correction once the case exists"
        store.quarantine(f"record_correction-{message_id}", data, reason, "record_correction",
                         message_id=message_id, case_id=correction.case_id)
        return Outcome("quarantined", case_id=correction.case_id, reason=reason)
    return outcome


def correct_case(
    correction: Correction, message_id: str | None, store: CaseStore, now: datetime | None = None
) -> Outcome | None:
    """Apply a validated correction in one transaction; None when the case does not exist."""
    applied = {"changed": False}

    def change(case: dict[str, Any]) -> tuple[dict[str, Any], CounterDelta] | None:
        applied["changed"] = not already_applied(case, message_id)
        return apply_correction(case, correction, message_id, now or _now()) if applied["changed"] else None

    if store.update_case(correction.case_id, change) is None:
        return None
    return Outcome("corrected" if applied["changed"] else "duplicate", case_id=correction.case_id)


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
    """Ingest one JSONL file of failure events (line numbers from 1); every line is counted once.

    Three stages overlap: parsing and scoring in a worker process (the CPU-heavy part, out of this process's
    GIL), the file read and bookkeeping here, and IMPORT_WRITERS commits waiting on Firestore.
    """
    report = ImportReport(import_id=import_id)
    seen: set[str] = set()
    stamp = now or _now()
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
