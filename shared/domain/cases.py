"""A stored case: what a failure event becomes, how a correction changes it, and the counters each moves.

Derived fields exist once a corrected transcript does: ``wer``/``cer`` (raw), ``normalized_wer``/
``normalized_cer`` (see transcript_metrics), and ``error_types`` derived from the pair when the sender gave
none (``error_types_source`` says which: ``given``, ``derived`` or ``none``). A correction keeps the history
(who, when, previous and new text, the delivery's message id) and recomputes the derived fields; given error
types of the correction win, else the case's given ones stay, else they are derived again.

``error_score``: the sender's when given (``error_score_source: given``). A case sent without one gets
``min(1, normalized_wer)`` once a correction exists (``error_score_source: derived``): the share of the
words the model got wrong, casing and punctuation aside, so ``min_error_score`` selects it like any other
case instead of never; each later correction derives it again. Without a correction it stays absent.

A correction history keeps both texts of every correction, so it can outgrow a document (1 MiB: a 50 KB
transcript fills it after ~9 corrections). A store keeps the newest entries in the case (at most
`history_budget` bytes as Firestore counts them) and moves older ones out (`entries_to_move_out`); every read
gives the history back whole, oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.error_taxonomy import derive_error_types
from shared.domain.failure_event import Correction, FailureEvent
from shared.domain.firestore_limits import DOCUMENT_NAME_BYTES, MAX_DOCUMENT_BYTES, storage_size
from shared.domain.transcript_metrics import score_transcript

SCORE_FIELDS = ("wer", "cer", "normalized_wer", "normalized_cer")


@dataclass
class CounterDelta:
    """Increments of the statistics counters caused by one write (negative when a type is replaced)."""

    total_cases: int = 0
    corrected_cases: int = 0
    error_score_sum: float = 0.0
    error_score_count: int = 0
    quarantined: int = 0
    error_types: dict[str, int] = field(default_factory=dict)
    model_versions: dict[str, int] = field(default_factory=dict)

    def add(self, other: CounterDelta) -> None:
        """Fold `other` into this delta (for one write that covers many cases)."""
        self.total_cases += other.total_cases
        self.corrected_cases += other.corrected_cases
        self.error_score_sum += other.error_score_sum
        self.error_score_count += other.error_score_count
        self.quarantined += other.quarantined
        for name, n in other.error_types.items():
            self.error_types[name] = self.error_types.get(name, 0) + n
        for name, n in other.model_versions.items():
            self.model_versions[name] = self.model_versions.get(name, 0) + n

    def is_empty(self) -> bool:
        return self == CounterDelta()


def _derived(original: str, corrected: str | None, given_types: list[str] | None) -> dict[str, Any]:
    """Scores and error types for a transcript pair (only types when there is no correction)."""
    if corrected is None:
        types = sorted(set(given_types)) if given_types else []
        return {"error_types": types, "error_types_source": "given" if given_types else "none", "corrected": False}
    scores = score_transcript(reference=corrected, hypothesis=original)
    types = sorted(set(given_types)) if given_types else derive_error_types(original, corrected)
    return {
        **scores.model_dump(),
        "error_types": types,
        "error_types_source": "given" if given_types else "derived",
        "corrected": True,
    }


def derived_error_score(derived: dict[str, Any]) -> float | None:
    """The error score of a corrected case sent without one: ``min(1, normalized_wer)`` (None uncorrected)."""
    wer = derived.get("normalized_wer")
    return None if wer is None else round(min(1.0, float(wer)), 6)


def _score_fields(given_score: float | None, derived: dict[str, Any]) -> dict[str, Any]:
    """error_score and where it came from: the sender's, else derived from the correction, else none."""
    if given_score is not None:
        return {"error_score_source": "given"}
    score = derived_error_score(derived)
    return {"error_score": score, "error_score_source": "derived"} if score is not None else {}


def new_case(event: FailureEvent, case_id: str, message_id: str | None, now: datetime) -> dict[str, Any]:
    """The document stored for a failure event: every field as given plus the case's own."""
    given = event.model_dump(exclude_unset=True)
    derived = _derived(event.original_transcript, event.corrected_transcript, event.error_types)
    return {
        **given,
        **derived,
        **_score_fields(event.error_score, derived),
        "case_id": case_id,
        "created_at": now,
        "updated_at": now,
        "corrections": [],
        "message_id": message_id,
    }


# What makes a case the case it is: a producer's case_id given again with other values here is a mistake.
IDENTITY_FIELDS = ("audio_path", "original_transcript", "model_version", "occurred_at")


def conflicting_fields(stored: dict[str, Any], event: FailureEvent) -> list[str]:
    """The identity fields in which `event` differs from the case stored under its case_id (none: a redelivery)."""
    return [name for name in IDENTITY_FIELDS if stored.get(name) != getattr(event, name)]


def case_counters(case: dict[str, Any]) -> CounterDelta:
    """What a newly stored case adds to the statistics."""
    delta = CounterDelta(total_cases=1, corrected_cases=int(bool(case.get("corrected"))))
    if case.get("error_score") is not None:
        delta.error_score_sum = float(case["error_score"])
        delta.error_score_count = 1
    delta.error_types = {name: 1 for name in case.get("error_types") or []}
    delta.model_versions = {str(case.get("model_version") or "(unknown)"): 1}
    return delta


def already_applied(case: dict[str, Any], message_id: str | None) -> bool:
    """True when this delivery's correction is already in the case's history."""
    return message_id is not None and any(c.get("message_id") == message_id for c in case.get("corrections", []))


def apply_correction(
    case: dict[str, Any], correction: Correction, message_id: str | None, now: datetime
) -> tuple[dict[str, Any], CounterDelta]:
    """The fields to update on the case, and the counter changes (corrected once, types swapped)."""
    case_types = case.get("error_types") if case.get("error_types_source") == "given" else None
    given_types = correction.error_types or case_types
    derived = _derived(case.get("original_transcript", ""), correction.corrected_transcript, given_types)
    entry = {
        "corrected_by": correction.corrected_by,
        "corrected_at": now,
        "previous_transcript": case.get("corrected_transcript"),
        "corrected_transcript": correction.corrected_transcript,
        "error_types": derived["error_types"],
        "message_id": message_id,
    }
    updates = {
        **derived,
        "corrected_transcript": correction.corrected_transcript,
        "corrections": [*case.get("corrections", []), entry],
        "updated_at": now,
    }
    delta = CounterDelta(corrected_cases=0 if case.get("corrected") else 1)
    if case.get("error_score_source") != "given" and (case.get("error_score") is None
                                                       or case.get("error_score_source") == "derived"):
        score = derived_error_score(derived)
        if score is not None:
            previous = case.get("error_score")
            updates |= {"error_score": score, "error_score_source": "derived"}
            delta.error_score_sum = score - float(previous or 0.0)
            delta.error_score_count = 0 if previous is not None else 1
    for name in case.get("error_types") or []:
        delta.error_types[name] = delta.error_types.get(name, 0) - 1
    for name in derived["error_types"]:
        delta.error_types[name] = delta.error_types.get(name, 0) + 1
    delta.error_types = {k: v for k, v in delta.error_types.items() if v}
    return updates, delta


# The most a case keeps of its correction history in itself (Firestore's size), the rest moved out; and what a
# case's own fields and the store's bookkeeping are given besides, below the 1 MiB document limit.
HISTORY_BUDGET_BYTES = 256 * 1024
DOCUMENT_MARGIN_BYTES = 16 * 1024


def history_budget(case: dict[str, Any]) -> int:
    """How many bytes of correction history `case` (its other fields as they will be stored) may keep in itself."""
    return history_room(storage_size({key: value for key, value in case.items() if key != "corrections"}))


def history_room(rest_bytes: int) -> int:
    """history_budget of a case whose fields other than its history take `rest_bytes` (storage_size)."""
    room = MAX_DOCUMENT_BYTES - DOCUMENT_NAME_BYTES - DOCUMENT_MARGIN_BYTES - rest_bytes - storage_size("corrections")
    return max(0, min(HISTORY_BUDGET_BYTES, room))


def entries_to_move_out(kept: list[dict[str, Any]], budget: int, sizes: Sequence[int] | None = None) -> int:
    """How many of the oldest entries of `kept` (a history kept in the case, oldest first) to move out so that the
    rest fits `budget` bytes; all of them when even the newest alone does not. `sizes`: the entries'
    storage_size when the caller has them."""
    sizes = [storage_size(entry) for entry in kept] if sizes is None else sizes
    total = sum(sizes)
    moved = 0
    while moved < len(kept) and total > budget:
        total -= sizes[moved]
        moved += 1
    return moved
