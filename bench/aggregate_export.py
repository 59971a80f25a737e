"""The scheduled aggregate's case exports (learning_data/) with 100k stored cases and 1k new since its last run,
against exporting those 1k cases alone, on the emulators (issue #13: <= 3x).

Seeds N cases through the bulk import (Firestore and the case snapshot's parts, in-process on the emulators), runs
the aggregate's case work once (the export's first run writes every case: today's cost on every run before the
exports became change logs), stores 1k more one at a time (the snapshot's tail), then measures the aggregate's
case work again: the snapshot's upkeep (tail sync) and the export (the changed cases read by id and appended by
GCS compose). The baseline: the same 1k cases stored alone in a namespace and bucket of their own, exported.

The tail sync's query is an index read in Firestore; on the emulator it scans the whole collection
(LOCAL-STACK-NOTES.md), so its row shows the emulator's cost at N cases, not the cloud's. The export's own row is
the figure the target is about.
Run: `make bench` or `.venv/bin/python bench/aggregate_export.py` (BENCH_AGGREGATE_N to resize).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("STT_EMULATOR_HEAP", "3g")  # about 2 GB of emulator heap per 180k documents

import orjson

from bench.dataset_build import event  # the same synthetic failure events
from bench.tables import print_table
from shared.config import Settings

N = int(os.environ.get("BENCH_AGGREGATE_N", "100000"))
NEW = 1_000


def main() -> None:
    from google.cloud import storage

    from shared import DataManager
    from shared.bootstrap import adapters
    from shared.clock import utc_now
    from shared.services.bulk_import import run_import
    from shared.services.case_exports import export_cases
    from shared.services.case_snapshot import maintain_snapshot
    from stack.local_stack import running_stack

    settings = Settings(project="demo-bench-aggregate", collection_prefix="agg_")
    alone = replace(settings, collection_prefix="alone_", bucket="bench-alone")
    with running_stack(settings):
        client = storage.Client(project=settings.project)
        client.create_bucket(alone.bucket)
        world, solo = adapters(settings), adapters(alone)
        maintain_snapshot(world.cases, world.bucket, utc_now())  # a new deployment: the tail starts here

        started = time.perf_counter()
        world.bucket.put("imports/seed.jsonl", b"".join(orjson.dumps(event(i)) + b"\n" for i in range(N)))
        imported = run_import("imports/seed.jsonl", world.bucket.generation("imports/seed.jsonl"), world.cases,
                              world.bucket)
        if imported["accepted"] != N:
            raise SystemExit(f"the seed import accepted {imported['accepted']:,} of {N:,}")
        seeded_s = time.perf_counter() - started

        def aggregate_cases() -> tuple[float, float, dict[str, object]]:
            now = utc_now()
            started = time.perf_counter()
            snapshot = maintain_snapshot(world.cases, world.bucket, now)
            synced = time.perf_counter()
            exported = export_cases(world.cases, world.bucket, now, snapshot["part_names"])
            return synced - started, time.perf_counter() - synced, exported

        first_sync_s, first_export_s, first = aggregate_cases()
        manager, solo_manager = DataManager(settings), DataManager(alone)
        for i in range(N, N + NEW):
            manager.store_failed_case(**event(i))  # type: ignore[arg-type]
            solo_manager.store_failed_case(**event(i))  # type: ignore[arg-type]
        sync_s, export_s, appended = aggregate_cases()

        maintain_snapshot(solo.cases, solo.bucket, utc_now())
        started = time.perf_counter()
        baseline = export_cases(solo.cases, solo.bucket, utc_now())
        alone_s = time.perf_counter() - started
    if (first["mode"], appended["mode"], baseline["mode"]) != ("rewrite", "append", "rewrite"):
        raise SystemExit(f"unexpected export modes: {first}, {appended}, {baseline}")
    if appended["cases"] != NEW or baseline["cases"] != NEW:
        raise SystemExit(f"the runs exported {appended['cases']} and {baseline['cases']} cases, not {NEW}")
    print_table(
        f"aggregate's case exports: {N:,} stored cases (seeded in {seeded_s:.0f} s), {NEW:,} new since the last run",
        ["measure", "sttdata", f"export {NEW:,} alone", "ratio", "target"],
        [
            [f"export step ({NEW:,} cases appended)", export_s, alone_s, f"{export_s / alone_s:.2f}x", "<= 3x"],
            ["aggregate's case work (tail sync + export)", sync_s + export_s, alone_s,
             f"{(sync_s + export_s) / alone_s:.2f}x", "(sync: emulator scan)"],
            [f"  its tail sync (emulator scans {N:,} docs)", sync_s, "", "", ""],
            [f"whole rewrite of {N:,} (every run before change logs)", first_export_s, alone_s,
             f"{first_export_s / alone_s:.2f}x", ""],
        ],
    )
    print(f"first run's snapshot sync {first_sync_s:.2f} s; appended {appended['cases']} cases, file now "
          f"{appended['lines']:,} lines; baseline: a full export of the same {NEW:,} cases stored alone")


if __name__ == "__main__":
    main()
