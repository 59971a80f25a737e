"""Bulk import and statistics at 100k cases, against raw Firestore measured in the same run.

Targets (issue 3): a 100k-event import through the real path (upload -> notification -> ingest_import ->
Firestore) at >= 60% of the raw WriteBatch rate (the same documents, 500 per commit, one writer);
get_statistics over 100k cases <= 0.2 s (baseline: a count() aggregation over the cases).
Run: `make bench` or `.venv/bin/python bench/ingestion.py` (BENCH_IMPORT_N to resize).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("STT_EMULATOR_HEAP", "3g")  # 200k documents in one emulator

import orjson
from google.cloud import firestore, storage

from bench.objects import wait_for_json
from bench.tables import print_table
from shared import DataManager
from shared.config import Settings
from shared.domain.cases import new_case
from shared.domain.failure_event import derive_case_id, parse_failure_event
from shared.topology import build_topology
from stack.local_stack import running_stack

N = int(os.environ.get("BENCH_IMPORT_N", "100000"))
REFERENCES = [
    "Please call Stella and ask her to bring these things with her from the store",
    "The meeting is moved to three thirty on Thursday",
    "Turn left at the second light and park behind the bank",
]

SPEAKERS = ["Ana", "Ben", "Chloe", "Dmitri", "Esi", "Farid", "Grace"]


def events(n: int) -> list[dict[str, object]]:
    """Half corrected (scored and typed on ingest), half not, as a real backlog would be."""
    out = []
    for i in range(n):
        # Every line's text is its own, as in a real backlog: no cache can lean on repeats across lines.
        ref = f"{REFERENCES[i % len(REFERENCES)]} for ticket {i} of {SPEAKERS[i % len(SPEAKERS)]}"
        event: dict[str, object] = {
            "audio_path": f"gs://stt-audio/bench/{i:07d}.wav",
            "original_transcript": ref.upper() if i % 3 else ref.lower(),
            "error_score": (i % 100) / 100,
            "model_version": f"v{i % 4}",
            "speaker_id": f"spk-{i % 500}",
        }
        if i % 2 == 0:
            event["corrected_transcript"] = ref
        out.append(event)
    return out


def raw_write_batch(db: firestore.Client, collection: str, evs: list[dict[str, object]]) -> float:
    """Baseline: the same case documents (built beforehand), 500 per WriteBatch, one writer."""
    now = datetime.now(UTC)
    docs = []
    for e in evs:
        parsed = parse_failure_event(orjson.dumps(e))
        docs.append((derive_case_id(parsed), new_case(parsed, derive_case_id(parsed), None, now)))
    coll = db.collection(collection)
    started = time.perf_counter()
    for i in range(0, len(docs), 500):
        batch = db.batch()
        for case_id, doc in docs[i : i + 500]:
            batch.create(coll.document(case_id), doc)
        batch.commit()
    return len(docs) / (time.perf_counter() - started)


def import_through_bucket(settings: Settings, evs: list[dict[str, object]]) -> float:
    """Upload imports/bench.jsonl and wait for its result object: the whole event-driven path."""
    bucket = storage.Client(project=settings.project).bucket(settings.bucket)
    body = b"\n".join(orjson.dumps(e) for e in evs) + b"\n"
    started = time.perf_counter()
    bucket.blob("imports/bench.jsonl").upload_from_string(body)
    result = wait_for_json(bucket, "import_results/bench.json")
    elapsed = time.perf_counter() - started
    if result["accepted"] != len(evs):
        raise SystemExit(f"import accepted {result['accepted']} of {len(evs)}: {result}")
    return len(evs) / elapsed


def main() -> None:
    settings = Settings(project="demo-bench-ingest", collection_prefix="bench_")
    evs = events(N)
    with running_stack(settings, (build_topology(settings).function("ingest_import"),)):
        db = firestore.Client(project=settings.project)
        raw_rate = raw_write_batch(db, "raw_failed_cases", evs)
        import_rate = import_through_bucket(settings, evs)
        manager = DataManager(settings)
        stats_s = []
        for _ in range(5):
            started = time.perf_counter()
            stats = manager.get_statistics()
            stats_s.append(time.perf_counter() - started)
        count_s = []
        for _ in range(3):
            started = time.perf_counter()
            db.collection("bench_failed_cases").count().get()
            count_s.append(time.perf_counter() - started)
    if stats["total_cases"] != N:
        raise SystemExit(f"statistics count {stats['total_cases']} cases, expected {N}")
    print_table(
        f"failure ingestion at {N:,} cases",
        ["measure", "sttdata", "baseline", "ratio", "target"],
        [
            [
                "import events/s (upload -> all stored)",
                import_rate,
                raw_rate,
                f"{import_rate / raw_rate:.0%}",
                ">= 60% of raw WriteBatch",
            ],
            [
                "get_statistics s (median of 5)",
                statistics.median(stats_s),
                statistics.median(count_s),
                f"{statistics.median(stats_s) / statistics.median(count_s):.2f}x",
                "<= 0.2 s (baseline: count())",
            ],
        ],
    )


if __name__ == "__main__":
    main()
