"""Use cases of failure ingestion, one message at a time: a failure event, a correction.

Bad input is never retried: it is kept (quarantine, with the raw payload and a reason a person understands)
and acknowledged. Store errors propagate, so the delivery is retried and finally dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from shared.clock import utc_now
from shared.domain.cases import (
    CounterDelta,
    already_applied,
    apply_correction,
    case_counters,
    conflicting_fields,
    new_case,
)
from shared.domain.failure_event import Correction, FailureEvent, derive_case_id, parse_correction, parse_failure_event
from shared.errors import BadInput, InvalidEvent, NotFound, UnstorableRecord
from shared.json_encoding import json_default
from shared.ports import CaseStore
from shared.services.outcome import Outcome


def record_failure(
    data: bytes, message_id: str, store: CaseStore, now: datetime | None = None, audio_root: str | None = None
) -> Outcome:
    """Validate a failure event and store it as a case, exactly once per case id; a relative audio_path is
    resolved against ``audio_root`` (Settings.resolved_audio_root)."""
    try:
        event = parse_failure_event(data, audio_root)
    except InvalidEvent as exc:
        store.quarantine(f"record_failure-{message_id}", data, exc.reason, "record_failure", message_id=message_id)
        return Outcome("quarantined", reason=exc.reason)
    try:
        outcome = store_event(event, message_id, store, now)
    except UnstorableRecord as exc:  # valid, yet the store refuses it: retried, it would fail every time
        case_id = derive_case_id(event)
        store.quarantine(f"record_failure-{message_id}", data, exc.reason, "record_failure", message_id=message_id,
                         case_id=case_id)
        return Outcome("quarantined", case_id=case_id, reason=exc.reason)
    reason = _reused_case_id(event, outcome, store)
    if reason is not None:
        store.quarantine(f"record_failure-{message_id}", data, reason, "record_failure", message_id=message_id,
                         case_id=outcome.case_id)
        return Outcome("quarantined", case_id=outcome.case_id, reason=reason)
    return outcome


def _reused_case_id(event: FailureEvent, outcome: Outcome, store: CaseStore) -> str | None:
    """Why a duplicate is no redelivery: the producer gave a stored case_id to a different event; else None."""
    if outcome.status != "duplicate" or event.case_id is None:
        return None  # a derived case_id is a hash of the identity fields: a duplicate of it is the same event
    stored = store.get_case(event.case_id)
    differing = conflicting_fields(stored, event) if stored is not None else []
    if not differing:
        return None
    return (f"case_id {event.case_id!r} reused with different content: {', '.join(differing)} "
            "differ from the stored case")


def store_event(event: FailureEvent, message_id: str | None, store: CaseStore, now: datetime | None = None) -> Outcome:
    """Store a validated event as a case with its counters; a second time changes nothing."""
    case_id = derive_case_id(event)
    case = new_case(event, case_id, message_id, now or utc_now())
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
        return apply_correction(case, correction, message_id, now or utc_now()) if applied["changed"] else None

    if store.update_case(correction.case_id, change) is None:
        return None
    return Outcome("corrected" if applied["changed"] else "duplicate", case_id=correction.case_id)


# Lists of cases answer at most this many (a page of whole cases stays far below an HTTP answer's 32 MiB).
DEFAULT_LIST = 100
MAX_LIST = 1000


def list_limit(limit: int) -> int:
    """`limit` when it is a page size a list may answer; BadInput says the range otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
        raise BadInput(f"limit must be an integer from 1 to {MAX_LIST}, got {limit!r}")
    return limit


def store_failure_fields(fields: Mapping[str, Any], store: CaseStore, audio_root: str | None = None) -> str:
    """Validate the fields of a failure event (as the Python API takes them) and store the case; its id."""
    event = parse_failure_event(orjson.dumps(dict(fields), default=json_default), audio_root)
    outcome = store_event(event, None, store)
    reason = _reused_case_id(event, outcome, store)
    if reason is not None:
        raise InvalidEvent(reason)
    return str(outcome.case_id)


def correct_by_id(
    case_id: str, corrected_transcript: str, corrected_by: str | None, error_types: list[str] | None,
    store: CaseStore,
) -> dict[str, Any]:
    """Add a correction to a case (as the Python API takes it); the case after it. NotFound for an unknown id."""
    fields = {"case_id": case_id, "corrected_transcript": corrected_transcript, "corrected_by": corrected_by,
              "error_types": error_types}
    correction = parse_correction(orjson.dumps({k: v for k, v in fields.items() if v is not None}))
    case = store.get_case(case_id) if correct_case(correction, None, store) else None
    if case is None:
        raise NotFound(f"no case with case_id {case_id!r}")
    return case
