"""Use case: an upload of `imports/<name>.jsonl` ingests every line as a failure event, once per object version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from shared.config import Settings
from shared.errors import ObjectGone
from shared.ports import Bucket, CaseStore
from shared.services.bucket_objects import is_new_object, object_version_id
from shared.services.ingestion import import_failures

IMPORT_PREFIX = "imports/"
RESULTS_PREFIX = "import_results/"







def is_import_notification(attributes: Mapping[str, str], settings: Settings) -> bool:
    """True for a finalized `imports/*.jsonl` object of this deployment's bucket."""
    return is_new_object(attributes, settings, IMPORT_PREFIX, ".jsonl")


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
    base = RESULTS_PREFIX + object_name.removeprefix(IMPORT_PREFIX).removesuffix(".jsonl")
    summary: dict[str, Any] = {**report.summary(), "object": bucket.uri(object_name), "generation": str(generation)}
    if rejected_lines:
        summary["rejected_lines_uri"] = bucket.put(
            f"{base}.rejected.jsonl", b"\n".join(rejected_lines) + b"\n", "application/x-ndjson"
        )
    bucket.put(f"{base}.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2), "application/json")
    ledger.save_import(import_id, summary)
    return {**summary, "status": "imported"}
