"""Use case: export the failed cases and their corrections to `learning_data/` (CONTRACT.md's bucket layout).

`failed_cases.jsonl` holds one stored case a line (its correction history included), `corrections.jsonl`
one correction a line (with its case id), and `metadata.json` what was exported: when, the statistics,
and each file's sha256, bytes and rows. Each object is one upload and the metadata goes last, so it never
describes files that are not there yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from shared.domain import bucket_layout as layout
from shared.domain.statistics import summarize
from shared.domain.versions import file_entry
from shared.json_encoding import dumps_json
from shared.ports import CaseStore, ObjectWriter

JSONL = "application/x-ndjson"




def correction_rows(case: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per entry of the case's correction history, oldest first."""
    for entry in case.get("corrections") or []:
        yield {"case_id": case.get("case_id"), **entry}


def export_cases(store: CaseStore, objects: ObjectWriter, now: datetime) -> dict[str, Any]:
    """Write the three exports; a summary of the objects written."""
    cases: list[bytes] = []
    corrections: list[bytes] = []
    for case in store.stream_cases():
        cases.append(dumps_json(case) + b"\n")  # encoded at once: a line is smaller than its document
        corrections.extend(dumps_json(row) + b"\n" for row in correction_rows(case))
    files = {
        layout.FAILED_CASES: (b"".join(cases), len(cases)),
        layout.CORRECTIONS: (b"".join(corrections), len(corrections)),
    }
    written = {name: objects.put(name, data, JSONL) for name, (data, _) in files.items()}
    metadata = {
        "exported_at": now,
        "statistics": summarize(store.counter_shards()),
        "files": {name: file_entry(data, rows) for name, (data, rows) in files.items()},
    }
    written[layout.LEARNING_METADATA] = objects.put(
        layout.LEARNING_METADATA, dumps_json(metadata, indent=True), "application/json"
    )
    return {"exported_at": now.isoformat(), "objects": written, "cases": len(cases), "corrections": len(corrections)}
