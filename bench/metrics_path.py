"""10k performance records through the push path, then get_performance_trend over them.

(a) the no-op function (its effect: a line in a local file) is the floor; (b) record_metrics (its effect: a
Firestore document) is measured against it in the same run, with the same number of events published in
batches: rate = events / (last effect - first publish). Then the trend over the stored records: cold (no
snapshot: a full read of the collection), the snapshot build (which also prunes the recent points it holds),
warm (snapshot + the recent points stored since: only the overlap), and warm again after TAIL more records
were stored (they must all be in it), each the median of several calls; the pure trend math on the points in
memory is the floor.
Run: `.venv/bin/python bench/metrics_path.py` (BENCH_METRICS_N to resize).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from google.cloud import firestore, pubsub_v1

from bench.tables import print_table
from shared.adapters.firestore_metrics import FirestoreMetricStore
from shared.config import Settings
from shared.domain.trends import performance_trend
from shared.metadata_tracker import MetadataTracker
from shared.services.metric_reads import performance_history
from stack.local_stack import REPO_ROOT, LocalStack, StackConfig, StackInfo
from stack.wiring import WiredFunction, start_wired_function

N = int(os.environ.get("BENCH_METRICS_N", "10000"))
REPEATS = 5
TAIL = 100


def record(i: int, base: datetime) -> bytes:
    """A distinct performance record (its own timestamp, so its own record id)."""
    return orjson.dumps({"kind": "performance", "model_version": f"v{i // 1000}", "wer": 0.2 + (i % 7) / 100,
                         "cer": 0.08, "error_rate": 0.1, "correction_rate": 0.4, "inference_time": 0.3,
                         "recorded_at": (base + timedelta(seconds=i)).isoformat()})


def push(fn: WiredFunction, bodies: list[bytes], effects: Callable[[], tuple[int, float]]) -> float:
    """Publish every body in batches, wait until every effect is visible; events per second."""
    publisher = pubsub_v1.PublisherClient()
    started = time.time()
    futures = [publisher.publish(fn.topic_path(), body) for body in bodies]
    for future in futures:
        future.result(timeout=120)
    deadline = time.monotonic() + 120 + len(bodies) / 20
    while time.monotonic() < deadline:
        count, last = effects()
        if count >= len(bodies):
            return len(bodies) / (last - started)
        time.sleep(1.0)
    raise SystemExit(f"{fn.name}: only {effects()[0]} of {len(bodies)} effects visible")


def timed(call: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of `call` in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def measure(info: StackInfo, settings: Settings, tmp: Path) -> tuple[list[list[object]], list[list[object]]]:
    noop_log = tmp / "noop.log"
    noop_log.touch()
    noop = start_wired_function(info, REPO_ROOT / "bench/functions/noop/main.py", "noop", settings, "bench-noop",
                                tmp / "logs", extra_env={"NOOP_LOG": str(noop_log)})
    metrics_settings = replace(settings, collection_prefix="bench_rm_")
    metrics = start_wired_function(info, REPO_ROOT / "functions/record_metrics/main.py", "record_metrics",
                                   metrics_settings, "bench-record-metrics", tmp / "logs")
    history = firestore.Client(project=settings.project).collection("bench_rm_performance_history")

    def noop_effects() -> tuple[int, float]:
        times = [float(line.split()[1]) for line in noop_log.read_text().splitlines()]
        return len(times), max(times, default=0.0)

    def metric_effects() -> tuple[int, float]:
        count = int(history.count().get()[0][0].value)
        if count < N:
            return count, 0.0
        last = history.order_by("stored_at", direction=firestore.Query.DESCENDING).limit(1).get()[0]
        return count, last.get("stored_at").timestamp()

    base = datetime.now(UTC) - timedelta(days=2)
    try:
        push(noop, [record(i, base) for i in range(20)], noop_effects)  # warm-up: clients opened, not measured
        noop_log.write_text("")
        floor = push(noop, [record(i, base) for i in range(N)], noop_effects)
        rate = push(metrics, [record(i, base) for i in range(N)], metric_effects)
    finally:
        noop.stop()
        metrics.stop()
    push_rows: list[list[object]] = [["noop (floor)", N, floor, "100%"], ["record_metrics", N, rate,
                                                                          f"{rate / floor:.0%}"]]

    tracker = MetadataTracker(metrics_settings)
    store = FirestoreMetricStore(metrics_settings)
    cold = timed(lambda: performance_trend(store.performance_points(None), "wer"), 3)
    build_started = time.perf_counter()
    snapshot = tracker.refresh_snapshot()
    build = (time.perf_counter() - build_started) * 1e3
    warm = timed(lambda: tracker.get_performance_trend("wer"))
    points, _, _ = performance_history(store)
    math_only = timed(lambda: performance_trend(points, "wer"))
    trend = tracker.get_performance_trend("wer")
    assert trend["count"] == N == snapshot["count"], (trend["count"], snapshot["count"])
    later = base + timedelta(seconds=N)
    for i in range(TAIL):  # stored after the snapshot, as a training job keeps doing
        tracker.record_performance(0.1, 0.05, 0.1, 0.4, 0.3, model_version="v-tail",
                                   recorded_at=later + timedelta(seconds=i))
    warm_tail = timed(lambda: tracker.get_performance_trend("wer"))
    trend = tracker.get_performance_trend("wer")
    assert trend["count"] == N + TAIL and trend["last"] == 0.1, (trend["count"], trend["last"])
    trend_rows: list[list[object]] = [
        ["trend math on points in memory (floor)", N, math_only, "1.00x"],
        ["get_performance_trend, warm (snapshot + tail)", N, warm, f"{warm / math_only:.2f}x"],
        [f"get_performance_trend, warm, {TAIL} stored since", N + TAIL, warm_tail, f"{warm_tail / math_only:.2f}x"],
        ["snapshot build (once, then by aggregate)", N, build, f"{build / math_only:.2f}x"],
        ["trend, cold (full collection read)", N, cold, f"{cold / math_only:.2f}x"],
    ]
    return push_rows, trend_rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        settings = Settings(project="demo-bench", collection_prefix="bench_", ack_deadline_s=60)
        stack = LocalStack(StackConfig(state_dir=tmp / "stack", settings=settings, functions=()))
        info = stack.up()
        os.environ.update(info.env)
        try:
            push_rows, trend_rows = measure(info, settings, tmp)
        finally:
            stack.down()
    print_table(f"training-metrics push path on the emulators: {N} performance records published in batches",
                ["function", "events", "events/s", "vs floor"], push_rows)
    print_table(f"get_performance_trend('wer') over {N} stored records (median of {REPEATS}; cold: of 3)",
                ["variant", "records", "ms", "vs floor"], trend_rows)


if __name__ == "__main__":
    main()
