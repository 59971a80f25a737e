"""Use case: keep a failure event pushed from `transcription-failures` as a case, exactly once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


class CaseStore(Protocol):
    """Where cases and rejected payloads are kept."""

    def create_case(self, case_id: str, case: dict[str, Any]) -> bool:
        """Store a new case; False when `case_id` already exists (a duplicate delivery)."""

    def quarantine(self, quarantine_id: str, record: dict[str, Any]) -> bool:
        """Keep a rejected payload with its reason; False when already kept."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery: stored, duplicate or quarantined."""

    status: str
    case_id: str | None = None
    reason: str | None = None


def record_failure(data: bytes, message_id: str, store: CaseStore) -> Outcome:
    """Parse a failure event and store it as a case keyed by its case id."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _quarantine(store, data, message_id, f"payload is not JSON: {exc}")
    if not isinstance(event, dict):
        return _quarantine(store, data, message_id, "payload is not a JSON object")
    case_id = str(event.get("case_id") or hashlib.sha256(data).hexdigest()[:32])
    created = store.create_case(case_id, {**event, "case_id": case_id, "message_id": message_id})
    return Outcome("stored" if created else "duplicate", case_id=case_id)


def _quarantine(store: CaseStore, data: bytes, message_id: str, reason: str) -> Outcome:
    store.quarantine(message_id, {"raw": data, "reason": reason, "message_id": message_id})
    return Outcome("quarantined", reason=reason)
