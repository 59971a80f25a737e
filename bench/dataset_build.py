"""A dataset build through the stack over 200k imported cases, against the engine's bare read of the same snapshot.

Issue #13's numbers: 200k cases imported through the stack (imports/*.jsonl -> ingest_import, which stores them
in Firestore and writes them into the case snapshot), 1k more stored one at a time (the snapshot's tail), then a
build through the upload path (dataset-requests/x.json -> notification -> build_dataset: tail sync, DuckDB over
the parts, split files, metadata.json, registry entry) in <= 15 s from upload to result, the build function's
peak RSS <= 600 MiB. The floor, measured in the same run on the same parts: DuckDB's bare read-filter-COPY of the
snapshot to JSONL (bench/snapshot_build.py measures the engine alone at 1M cases).
Run: `make bench` or `.venv/bin/python bench/dataset_build.py` (BENCH_BUILD_N to resize).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The Firestore emulator holds every imported case: about 2 GB of heap per 180k documents.
os.environ.setdefault("STT_EMULATOR_HEAP", "4g")

import orjson

from bench.objects import wait_for_json
from bench.tables import peak_rss_mib, print_table
from shared.config import Settings

N = int(os.environ.get("BENCH_BUILD_N", "200000"))
TAIL = 1_000
REQUEST = {"min_error_score": 0.2, "balance_error_types": False, "version_name": "bench"}


def event(i: int) -> dict[str, object]:
    """A failure event; 4 in 5 carry their correction."""
    reference = f"turn left at light number {i} and park behind the bank"
    fields: dict[str, object] = {
        "audio_path": f"gs://stt-audio/bench/{i:07d}.wav",
        "original_transcript": reference.upper() if i % 2 else reference.replace("left", "right"),
        "error_score": (i % 100) / 100,
        "speaker_id": f"spk-{i % 700}",
        "model_version": f"v{i % 3}",
    }
    if i % 5:
        fields["corrected_transcript"] = reference
    return fields


def import_through_stack(bucket: object, n: int) -> float:
    """Upload n events as one import and wait for its result; the seconds it took."""
    body = b"".join(orjson.dumps(event(i)) + b"\n" for i in range(n))
    started = time.perf_counter()
    bucket.blob("imports/bench.jsonl").upload_from_string(body)  # type: ignore[attr-defined]
    result = wait_for_json(bucket, "import_results/bench.json", poll_s=1.0)
    if result["accepted"] != n:
        raise SystemExit(f"the import accepted {result['accepted']:,} of {n:,}: {result}")
    return time.perf_counter() - started


def build_through_bucket(bucket: object) -> float:
    """Upload a build request and wait for its result object: the whole event-driven path."""
    started = time.perf_counter()
    bucket.blob("dataset-requests/bench.json").upload_from_string(orjson.dumps(REQUEST))  # type: ignore[attr-defined]
    result = wait_for_json(bucket, "dataset_results/bench.json")
    if result["status"] != "built":
        raise SystemExit(f"the build did not succeed: {result}")
    return time.perf_counter() - started


def function_peak_mib(target: str) -> float:
    """The peak resident memory (VmHWM) of the function serving `target`, in MiB: the largest of its processes
    (functions-framework may serve through a gunicorn master and a worker)."""
    peaks = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            status = (cmdline.parent / "status").read_text()
        except OSError:
            continue
        if b"--target" in argv and target.encode() in argv:
            peaks += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    if not peaks:
        raise SystemExit(f"no running function process serves {target}")
    return max(peaks)


def floor_child(parts_dir: str) -> None:
    """DuckDB's bare read-filter-COPY of the parts in `parts_dir` (the build's floor); prints s and peak RSS."""
    from shared.domain.dataset_request import BuildRequest
    from shared.snapshot.engine import EngineSettings, SnapshotEngine

    paths = sorted(Path(parts_dir).glob("*.parquet"))
    started = time.perf_counter()
    with SnapshotEngine(EngineSettings.from_env()) as engine, tempfile.TemporaryDirectory() as out:
        engine.load_parts(paths)
        engine.floor_copy(BuildRequest(**REQUEST), Path(out) / "floor")  # type: ignore[arg-type]
    peak = peak_rss_mib()
    print(orjson.dumps({"s": time.perf_counter() - started, "peak_mib": peak}).decode())


def measure_floor(settings: Settings, env: dict[str, str]) -> dict[str, float]:
    """The floor over the same parts the build read, downloaded first (as the build does), in a fresh process."""
    from shared.bootstrap import adapters
    from shared.domain import bucket_layout as layout
    from shared.snapshot.parts import fetch_parts

    with tempfile.TemporaryDirectory() as folder:
        fetch_parts(adapters(settings).bucket, Path(folder), layout.SNAPSHOT_PARTS)
        out = subprocess.run([sys.executable, __file__, "--floor", folder], env=env, check=True,
                             capture_output=True, text=True).stdout
    return dict(orjson.loads(out.strip().splitlines()[-1]))


def main() -> None:
    from google.cloud import storage

    from shared import DataManager
    from shared.bootstrap import adapters
    from shared.clock import utc_now
    from shared.services.case_snapshot import maintain_snapshot
    from shared.topology import build_topology
    from stack.local_stack import running_stack

    settings = Settings(project="demo-bench-build", collection_prefix="bench_")
    topology = build_topology(settings)
    functions = (topology.function("ingest_import"), topology.function("build_dataset"))
    with running_stack(settings, functions) as info:
        bucket = storage.Client(project=settings.project).bucket(settings.bucket)
        # What the first scheduled aggregate does on a new deployment: the snapshot's first sync finds no case,
        # so nothing is backfilled and the tail starts here (docs/snapshot.md).
        maintain_snapshot(adapters(settings).cases, adapters(settings).bucket, utc_now())
        imported_s = import_through_stack(bucket, N)
        manager = DataManager(settings)
        for i in range(N, N + TAIL):
            manager.store_failed_case(**event(i))  # type: ignore[arg-type]
        build_s = build_through_bucket(bucket)
        build_peak = function_peak_mib("build_dataset")
        rows = int(orjson.loads(bucket.blob("dataset_results/bench.json").download_as_bytes())["total_samples"])
        floor = measure_floor(settings, {**os.environ, **info.env, **settings.to_env()})
    print_table(
        f"dataset build through the stack over {N:,} imported + {TAIL:,} single cases ({rows:,} rows built)",
        ["measure", "sttdata", "floor", "ratio", "target"],
        [
            ["build s (upload -> result)", build_s, floor["s"], f"{build_s / floor['s']:.2f}x", "<= 15 s"],
            ["build function peak RSS MiB", build_peak, floor["peak_mib"], f"{build_peak / floor['peak_mib']:.2f}x",
             "<= 600 MiB"],
            [f"import s ({N:,} lines, upload -> result)", imported_s, "", f"{N / imported_s:,.0f} lines/s", ""],
        ],
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--floor"]:
        floor_child(sys.argv[2])
    else:
        main()
