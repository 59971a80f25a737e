"""Use case: an upload of `imports/<name>.jsonl` ingests every line as a failure event, once per object version."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import orjson

from shared.config import Settings
from shared.services.bucket_objects import is_new_object, object_version_id
from shared.services.ingestion import CaseStore, import_failures

IMPORT_PREFIX = "imports/"
RESULTS_PREFIX = "import_results/"


class ObjectGone(LookupError):
    """The notified object version no longer exists."""


class ImportLedger(CaseStore, Protocol):
    """A case store that also remembers finished imports."""

    def save_import(self, import_id: str, summary: dict[str, Any]) -> None: ...

    def import_result(self, import_id: str) -> dict[str, Any] | None: ...


class ImportBucket(Protocol):
    """Where the import files are read and their results written."""

    def uri(self, name: str) -> str: ...

    def put(self, name: str, data: bytes, content_type: str = ...) -> str: ...

    def lines(self, name: str, generation: int | None = None) -> Iterator[bytes]:
        """The object's lines; ObjectGone when that version no longer exists."""
        ...


def is_import_notification(attributes: Mapping[str, str], settings: Settings) -> bool:
    """True for a finalized `imports/*.jsonl` object of this deployment's bucket."""
    return is_new_object(attributes, settings, IMPORT_PREFIX, ".jsonl")


def run_import(
    object_name: str, generation: str | int | None, ledger: ImportLedger, bucket: ImportBucket
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
    base = RESULTS_PREFIX + object_name.removeprefix(IMPORT_PREFIX).removesuffix(".jsonl")
    summary: dict[str, Any] = {**report.summary(), "object": bucket.uri(object_name), "generation": str(generation)}
    if rejected_lines:
        summary["rejected_lines_uri"] = bucket.put(
            f"{base}.rejected.jsonl", b"\n".join(rejected_lines) + b"\n", "application/x-ndjson"
        )
    bucket.put(f"{base}.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2), "application/json")
    ledger.save_import(import_id, summary)
    return {**summary, "status": "imported"}
