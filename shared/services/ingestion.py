"""Use cases of failure ingestion: a failure event, a correction, a bulk import file.

Bad input is never retried: it is kept (quarantine, with the raw payload and a reason a person understands)
and acknowledged. Store errors propagate, so the delivery is retried and finally dead-lettered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.domain.cases import CounterDelta, already_applied, apply_correction, case_counters, new_case
from shared.domain.failure_event import (
    Correction,
    FailureEvent,
    InvalidEvent,
    derive_case_id,
    parse_correction,
    parse_failure_event,
)

# Lines of an import are written this many at a time (one atomic Firestore write: cases + one counter shard).
IMPORT_BATCH = 499
IMPORT_WRITERS = 2
REJECTS_KEPT_INLINE = 1000


class CaseStore(Protocol):
    """Where cases, their counters and rejected payloads are kept.

    Quarantine ids are `<function>-<message id>`: message ids are unique per topic only.
    """

    def create_case(self, case_id: str, case: dict[str, Any], delta: CounterDelta) -> bool: ...

    def create_cases(self, items: Sequence[tuple[str, dict[str, Any], CounterDelta]]) -> set[str]: ...

    def update_case(
        self, case_id: str, change: Callable[[dict[str, Any]], tuple[dict[str, Any], CounterDelta] | None]
    ) -> dict[str, Any] | None: ...

    def quarantine(self, quarantine_id: str, raw: bytes, reason: str, source: str, **context: Any) -> bool: ...


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
    pending: list[tuple[str, dict[str, Any], CounterDelta]] = []
    in_flight: deque[tuple[Future[set[str]], int]] = deque()
    stamp = now or _now()

    def settle(job: tuple[Future[set[str]], int]) -> None:
        existing = job[0].result()
        report.duplicates += len(existing)
        report.accepted += job[1] - len(existing)

    # Commits wait on the network while parsing and scoring need the CPU: overlap them, IMPORT_WRITERS at a time.
    # Batches never conflict with each other: a case id goes into one batch only (`seen`).
    with ThreadPoolExecutor(max_workers=IMPORT_WRITERS) as writers:

        def flush() -> None:
            in_flight.append((writers.submit(store.create_cases, list(pending)), len(pending)))
            pending.clear()
            while len(in_flight) > IMPORT_WRITERS:
                settle(in_flight.popleft())

        for number, raw in enumerate(lines, start=1):
            report.lines += 1
            if not raw.strip():
                continue  # a blank line (often the last) is no event
            try:
                event = parse_failure_event(raw)
            except InvalidEvent as exc:
                report.rejected += 1
                if len(report.rejects) < REJECTS_KEPT_INLINE:
                    report.rejects.append({"line": number, "reason": exc.reason})
                if on_reject is not None:
                    on_reject(number, raw, exc.reason)
                continue
            case_id = derive_case_id(event)
            if case_id in seen:
                report.duplicates += 1
                continue
            seen.add(case_id)
            case = new_case(event, case_id, None, stamp) | {"import_id": import_id, "import_line": number}
            pending.append((case_id, case, case_counters(case)))
            if len(pending) >= IMPORT_BATCH:
                flush()
        if pending:
            flush()
        while in_flight:
            settle(in_flight.popleft())
    return report
