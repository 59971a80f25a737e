"""Use case: export the failed cases and their corrections to `learning_data/` (CONTRACT.md's bucket layout).

`failed_cases.jsonl` holds one stored case a line (its correction history included), `corrections.jsonl`
one correction a line (with its case id), and `metadata.json` what was exported: when, the statistics,
and each file's sha256, bytes and rows. Each object is one upload and the metadata goes last, so it never
describes files that are not there yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

from shared.domain import bucket_layout as layout
from shared.domain.statistics import summarize
from shared.json_encoding import dumps_json
from shared.ports import Bucket, CaseStore

JSONL = "application/x-ndjson"


def correction_rows(case: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per entry of the case's correction history, oldest first."""
    for entry in case.get("corrections") or []:
        yield {"case_id": case.get("case_id"), **entry}


class _Tally:
    """What was streamed into one export file: its sha256, bytes and rows, as the manifest records them."""

    def __init__(self) -> None:
        self.digest, self.bytes, self.rows = hashlib.sha256(), 0, 0

    def add(self, line: bytes) -> bytes:
        self.digest.update(line)
        self.bytes += len(line)
        self.rows += 1
        return line

    def entry(self) -> dict[str, Any]:
        return {"sha256": self.digest.hexdigest(), "bytes": self.bytes, "rows": self.rows}


def export_cases(
    store: CaseStore, bucket: Bucket, now: datetime, source: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Stream the three exports to the bucket (never held in memory); a summary of the objects written.

    With `source` (what else the cases are made of now, e.g. the case snapshot's watermark and parts), nothing is
    written when the statistics and `source` are what the last export recorded: nothing changed since.
    """
    statistics = summarize(store.counter_shards())
    made_of = orjson.loads(dumps_json({"statistics": statistics, **(source or {})}))
    last = bucket.get(layout.LEARNING_METADATA)
    previous = orjson.loads(last) if last is not None else {}
    if source is not None and previous.get("source") == made_of:
        return {"exported_at": previous.get("exported_at"), "objects": {}, "skipped": "nothing changed since",
                "cases": previous["files"][layout.FAILED_CASES]["rows"],
                "corrections": previous["files"][layout.CORRECTIONS]["rows"]}
    tallies = {layout.FAILED_CASES: _Tally(), layout.CORRECTIONS: _Tally()}
    with bucket.writer(layout.FAILED_CASES, JSONL) as cases, bucket.writer(layout.CORRECTIONS, JSONL) as corrections:
        for case in store.stream_cases():
            cases.write(tallies[layout.FAILED_CASES].add(dumps_json(case) + b"\n"))
            for row in correction_rows(case):
                corrections.write(tallies[layout.CORRECTIONS].add(dumps_json(row) + b"\n"))
    written = {name: bucket.uri(name) for name in tallies}
    metadata = {
        "exported_at": now,
        "statistics": statistics,
        "files": {name: tally.entry() for name, tally in tallies.items()},
        "source": made_of,
    }
    written[layout.LEARNING_METADATA] = bucket.put(
        layout.LEARNING_METADATA, dumps_json(metadata, indent=True), "application/json"
    )
    return {"exported_at": now.isoformat(), "objects": written, "cases": tallies[layout.FAILED_CASES].rows,
            "corrections": tallies[layout.CORRECTIONS].rows}
