"""Publish -> effect visible, through real push subscriptions on the emulators.

(a) a no-op function (its effect: a line in a local file) is the floor; (b) create_only, one Firestore create
per push, is the floor of any function that stores; (c) record_failure is measured against both in the same run.
The Pub/Sub emulator pushes through two loops per subscription, each pulling one message, pushing it and waiting
for the answer (pubsub-emulator 0.8.20: `FakePubsubServer.NUM_CONCURRENT_PUSH_REQUESTS = 2`, `PushLoop`), so a
burst's rate is 2 / (one push's round trip): the ratio to the no-op measures what one Firestore commit adds to
the no-op's ~5 ms round trip, not the function's capacity (real Pub/Sub scales push concurrency with the acks).
Latency = the effect's own timestamp minus the time just before publish (one clock: everything runs on this
machine). Paced: 50 events/s; burst: 3,000 events published in batches, rate = events / (last effect - first
publish).
Run: `make bench` or `.venv/bin/python bench/push_path.py` (BENCH_PACED_N, BENCH_BURST_N to resize).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from google.cloud import firestore, pubsub_v1

from bench.tables import percentile, print_table
from shared.config import Settings
from stack.local_stack import REPO_ROOT, StackInfo, running_stack
from stack.wiring import WiredFunction, start_wired_function

PACED_N = int(os.environ.get("BENCH_PACED_N", "500"))
PACED_RATE = 50.0
BURST_N = int(os.environ.get("BENCH_BURST_N", "3000"))
# The emulators are JVMs: their JIT needs a few thousand requests before a commit costs what it will in steady
# state (a Firestore set goes from ~9 ms to ~2 ms). Each subject gets a warm-up burst, and the subjects take
# turns over ROUNDS rounds so that none is measured on a colder or busier machine than the others.
WARM_UP_N = int(os.environ.get("BENCH_WARM_UP_N", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


@dataclass
class Subject:
    """A wired function and how to read the time each event's effect became visible."""

    name: str
    fn: WiredFunction
    effect_times: Callable[[], dict[str, float]]  # message id -> epoch seconds
    # Polled while waiting: it must be cheap, or the wait itself loads the emulator the subject writes to.
    effect_count: Callable[[], int]


def payload(key: str) -> bytes:
    return orjson.dumps({"audio_path": f"gs://bench/{key}.wav", "original_transcript": "BENCH", "case_id": key})


def run_phase(subject: Subject, publisher: pubsub_v1.PublisherClient, n: int, rate: float | None) -> dict[str, float]:
    """Publish n events (paced at `rate`/s, or as fast as batching allows) and wait for every effect."""
    already = subject.effect_count()
    sent_at: list[float] = []
    futures = []
    started = time.perf_counter()
    for i in range(n):
        key = f"{subject.name}-{uuid.uuid4().hex[:12]}"
        if rate is not None:
            time.sleep(max(0.0, started + i / rate - time.perf_counter()))
        sent_at.append(time.time())
        futures.append(publisher.publish(subject.fn.topic_path(), payload(key)))
    sent = {future.result(timeout=60): at for future, at in zip(futures, sent_at, strict=True)}
    deadline = time.monotonic() + 120 + n / 20
    while True:
        if subject.effect_count() >= already + n:
            seen = subject.effect_times()
            if all(k in seen for k in sent):
                break
        if time.monotonic() > deadline:
            raise SystemExit(f"{subject.name}: only {subject.effect_count() - already} of {n} effects visible")
        time.sleep(0.5)
    latencies = sorted(seen[k] - sent[k] for k in sent)
    span = max(seen[k] for k in sent) - min(sent.values())
    return {"p50_ms": percentile(latencies, 50) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3, "events_s": n / span}


def main() -> None:
    settings = Settings(project="demo-bench", collection_prefix="bench_", ack_deadline_s=60)
    with running_stack(settings) as info, tempfile.TemporaryDirectory() as tmp_dir:
        rows = measure(info, settings, Path(tmp_dir))
    print_table(
        f"push path on the emulators: paced {PACED_N} events at {PACED_RATE:.0f}/s, burst of {BURST_N}",
        [
            "function",
            "paced p50 ms",
            "paced p99 ms",
            "burst events/s",
            "p99 vs noop",
            "events/s vs noop",
            "events/s vs create_only",
        ],
        rows,
    )


def measure(info: StackInfo, settings: Settings, tmp: Path) -> list[list[object]]:
    publisher = pubsub_v1.PublisherClient()
    noop_log = tmp / "noop.log"
    noop_log.touch()
    noop = start_wired_function(
        info,
        REPO_ROOT / "bench/functions/noop/main.py",
        "noop",
        settings,
        "bench-noop",
        tmp / "logs",
        extra_env={"NOOP_LOG": str(noop_log)},
    )
    create = start_wired_function(
        info,
        REPO_ROOT / "bench/functions/create_only/main.py",
        "create_only",
        replace(settings, collection_prefix="bench_co_"),
        "bench-create-only",
        tmp / "logs",
    )
    record = start_wired_function(
        info,
        REPO_ROOT / "functions/record_failure/main.py",
        "record_failure",
        replace(settings, collection_prefix="bench_rf_"),
        "bench-record-failure",
        tmp / "logs",
    )

    def noop_times() -> dict[str, float]:
        lines = noop_log.read_text().splitlines()
        return {message_id: float(at) for message_id, at in (line.split() for line in lines)}

    db = firestore.Client(project=settings.project)

    def stored_times(collection: str) -> Callable[[], dict[str, float]]:
        def times() -> dict[str, float]:
            docs = db.collection(collection).select(["created_at", "message_id"]).stream()
            return {d.get("message_id"): d.get("created_at").timestamp() for d in docs}

        return times

    def stored_count(collection: str) -> Callable[[], int]:
        return lambda: int(db.collection(collection).count().get()[0][0].value)

    try:
        subjects = [
            Subject("noop", noop, noop_times, lambda: len(noop_log.read_bytes().splitlines())),
            Subject("create_only", create, stored_times("bench_co_created"), stored_count("bench_co_created")),
            Subject(
                "record_failure",
                record,
                stored_times("bench_rf_failed_cases"),
                stored_count("bench_rf_failed_cases"),
            ),
        ]
        for subject in subjects:
            run_phase(subject, publisher, WARM_UP_N, None)
        rounds: dict[str, list[dict[str, float]]] = {s.name: [] for s in subjects}
        for _ in range(ROUNDS):
            for s in subjects:
                paced = run_phase(s, publisher, PACED_N, PACED_RATE)
                rounds[s.name].append({**paced, "burst": run_phase(s, publisher, BURST_N, None)["events_s"]})
        results = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in rounds.items()}
    finally:
        for fn in (noop, create, record):
            fn.stop()
    floor, store_floor = results["noop"], results["create_only"]
    return [
        [
            name,
            r["p50_ms"],
            r["p99_ms"],
            r["burst"],
            f"{r['p99_ms'] / floor['p99_ms']:.2f}x",
            f"{r['burst'] / floor['burst']:.0%}",
            f"{r['burst'] / store_floor['burst']:.0%}",
        ]
        for name, r in results.items()
    ]


if __name__ == "__main__":
    main()
