"""Use case: rebuild the stored cases from the `learning_data/` export (the seed's `sync_all_from_gcs`).

`failed_cases.jsonl` is a change log (case_exports.py): for a case_id its last line is the case as it is,
correction history included. A restore reads the file twice as a stream, first for where each case's last line
is, then to store those lines, and stores each case create-if-absent with the counters it adds
(`case_counters`), 500 to an atomic write, as a bulk import does. So a restore into an empty store gives back
the cases, their corrections and the statistics; into a live store it only adds the cases it lacks, and running
it twice changes nothing. Not in the export, so not restored: quarantined payloads (and their count).

The export wrote timestamps as ISO text; the case's own timestamps (`created_at`, `updated_at`, `occurred_at`,
each correction's `corrected_at`) are stored as timestamps again. `tail_at` (the snapshot's tail marker) is
dropped: restored cases are written in bulk, like imported ones, and the snapshot already holds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.domain.cases import case_counters
from shared.errors import BadInput, NeverExported, ObjectGone
from shared.ports import Bucket, CaseStore

BATCH = 500  # cases per atomic write (Firestore's limit)
_TIMESTAMPS = ("created_at", "updated_at", "occurred_at")


def _timestamp(value: Any) -> Any:
    """An ISO text back to a datetime; anything else (None, a value a producer gave) as it is."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def stored_form(line: dict[str, Any]) -> dict[str, Any]:
    """An exported case as the store keeps it: its timestamps typed again, without the tail marker."""
    case = {key: value for key, value in line.items() if key != "tail_at"}
    for name in _TIMESTAMPS:
        if name in case:
            case[name] = _timestamp(case[name])
    case["corrections"] = [
        {**entry, "corrected_at": _timestamp(entry.get("corrected_at"))} if isinstance(entry, dict) else entry
        for entry in case.get("corrections") or []
    ]
    return case


def _last_lines(bucket: Bucket) -> dict[str, int]:
    """Each case_id with the number of its last line."""
    last: dict[str, int] = {}
    for number, line in enumerate(bucket.lines(layout.FAILED_CASES)):
        if line.strip():
            last[_case_id(line, number)] = number
    return last


def _case_id(line: bytes, number: int) -> str:
    try:
        case = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"{layout.FAILED_CASES} line {number + 1} is not JSON ({exc})") from exc
    if not isinstance(case, dict) or not isinstance(case.get("case_id"), str):
        raise BadInput(f"{layout.FAILED_CASES} line {number + 1} is not a case (no case_id)")
    return str(case["case_id"])


def _latest_cases(bucket: Bucket, last: dict[str, int]) -> Iterator[dict[str, Any]]:
    wanted = set(last.values())
    for number, line in enumerate(bucket.lines(layout.FAILED_CASES)):
        if number in wanted:
            yield stored_form(orjson.loads(line))


def restore_cases(store: CaseStore, bucket: Bucket) -> dict[str, Any]:
    """Store every case of the export that the store lacks, with its counters; what was restored.
    NeverExported (a NotFound) when the export does not exist."""
    try:
        last = _last_lines(bucket)
    except ObjectGone as exc:
        raise NeverExported(f"nothing to restore: {bucket.uri(layout.FAILED_CASES)} does not exist; "
                            "run sync_all_to_gcs first") from exc
    restored = present = 0
    batch: list[tuple[str, dict[str, Any], Any]] = []

    def flush() -> None:
        nonlocal restored, present
        existing = store.create_cases(batch)
        present += len(existing)
        restored += len(batch) - len(existing)
        batch.clear()

    for case in _latest_cases(bucket, last):
        batch.append((case["case_id"], case, case_counters(case)))
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    return {"source": bucket.uri(layout.FAILED_CASES), "cases": len(last), "restored": restored,
            "already_stored": present}
