"""A dataset build over 100k cases, against reading the same cases from Firestore, measured in the same run.

Targets: a build through the whole path (upload dataset-requests/x.json -> notification -> build_dataset ->
split files, metadata.json, registry entry) in <= 2x the time of the floor, streaming the same candidate cases
out of Firestore (any build must read them); the build's peak memory <= 1 GiB at 100k cases (the deployed
function has 2 GiB), against the peak of the stream alone. Memory is the max RSS of a fresh process doing
only that work (the Python API's prepare_dataset, the same use case the function runs).
Run: `make bench` or `.venv/bin/python bench/dataset_build.py` (BENCH_BUILD_N to resize).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("STT_EMULATOR_HEAP", "3g")

import orjson

from bench.objects import wait_for_json
from bench.tables import print_table
from shared.config import Settings

N = int(os.environ.get("BENCH_BUILD_N", "100000"))
REQUEST = {"min_error_score": 0.2, "balance_error_types": False, "version_name": "bench"}


def seed_cases(settings: Settings, n: int) -> None:
    """n cases as record_failure stores them (4 in 5 corrected), 500 per WriteBatch."""
    from google.cloud import firestore

    from shared.domain.cases import new_case
    from shared.domain.failure_event import derive_case_id, parse_failure_event

    db = firestore.Client(project=settings.project)
    cases = db.collection(settings.collection("failed_cases"))
    now = datetime.now(UTC)
    batch = db.batch()
    for i in range(n):
        reference = f"turn left at light number {i} and park behind the bank"
        event = {
            "audio_path": f"gs://stt-audio/bench/{i:07d}.wav",
            "original_transcript": reference.upper() if i % 2 else reference.replace("left", "right"),
            "error_score": (i % 100) / 100,
            "speaker_id": f"spk-{i % 700}",
            "model_version": f"v{i % 3}",
        }
        if i % 5:
            event["corrected_transcript"] = reference
        parsed = parse_failure_event(orjson.dumps(event))
        case_id = derive_case_id(parsed)
        batch.create(cases.document(case_id), new_case(parsed, case_id, None, now))
        if (i + 1) % 500 == 0:
            batch.commit()
            batch = db.batch()
    batch.commit()


def child(work: str) -> None:
    """Run one measured piece of work in this fresh process; print its seconds and peak RSS as JSON."""
    settings = Settings.from_env()
    started = time.perf_counter()
    if work == "stream":
        from shared.bootstrap import adapters

        rows = [case for case in adapters(settings).cases.stream_cases() if case.get("corrected")]
        size = len(rows)
    else:
        from shared import FinetuningDatasetPipeline

        info = FinetuningDatasetPipeline(settings).prepare_dataset(**REQUEST, create_version=True)  # type: ignore[arg-type]
        size = int(info["total_samples"])
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(orjson.dumps({"s": time.perf_counter() - started, "peak_mib": peak_mib, "rows": size}).decode())


def measured(work: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", work], env=env, check=True, capture_output=True, text=True
    ).stdout
    return dict(orjson.loads(out.strip().splitlines()[-1]))


def build_through_bucket(settings: Settings) -> float:
    """Upload a build request and wait for its result object: the whole event-driven path."""
    from google.cloud import storage

    bucket = storage.Client(project=settings.project).bucket(settings.bucket)
    started = time.perf_counter()
    bucket.blob("dataset-requests/bench.json").upload_from_string(orjson.dumps(REQUEST))
    result = wait_for_json(bucket, "dataset_results/bench.json")
    if result["status"] != "built":
        raise SystemExit(f"the build did not succeed: {result}")
    return time.perf_counter() - started


def main() -> None:
    from shared.topology import build_topology
    from stack.local_stack import running_stack

    settings = Settings(project="demo-bench-build", collection_prefix="bench_")
    with running_stack(settings, (build_topology(settings).function("build_dataset"),)) as info:
        seed_cases(settings, N)
        env = {**os.environ, **info.env, **settings.to_env()}
        stream = measured("stream", env)
        through_bucket = build_through_bucket(settings)
        api = measured("build", env)
    if stream["rows"] != N * 4 // 5:
        raise SystemExit(f"streamed {stream['rows']:,} corrected cases, seeded {N * 4 // 5:,}")
    print_table(
        f"dataset build over {N:,} cases ({stream['rows']:,} corrected, {api['rows']:,} rows built)",
        ["measure", "sttdata", "baseline", "ratio", "target"],
        [
            ["build s (upload -> result)", through_bucket, stream["s"], f"{through_bucket / stream['s']:.2f}x",
             "<= 2x streaming the cases"],
            ["build s (Python API)", api["s"], stream["s"], f"{api['s'] / stream['s']:.2f}x", ""],
            ["peak memory MiB (Python API)", api["peak_mib"], stream["peak_mib"],
             f"{api['peak_mib'] / stream['peak_mib']:.2f}x", "<= 1024 MiB"],
        ],
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
