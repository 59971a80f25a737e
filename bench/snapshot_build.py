"""A dataset build over a 1M-case snapshot on DuckDB, against DuckDB's bare read-filter-write of the same parts,
measured in the same run.

Seeds N synthetic cases (4 in 5 corrected, one in 20 updated again in a later part) as snapshot parts with the
writer (parts.write_cases, the documented backfill path), then, each in a fresh process so its peak RSS is its
own: the build end to end on local files (engine.build_from_snapshot: select, the split files written with
their sha256, the quality report, the metadata; then metadata.json's dict) for a request that keeps 64% of
the cases and for the default request, the floor (DuckDB's COPY of the latest, filtered, split rows to JSON,
nothing else), the engine's quality report over N rows, and today's check_quality over the same N rows as
dicts (the baseline it replaces). The machine is shared: compare figures of one run, not across runs.

Targets (issue #13): build <= 10 s and peak RSS <= 1.5 GiB at 1M cases; quality over 1M rows <= 3 s.
Run: `.venv/bin/python bench/snapshot_build.py` (BENCH_SNAPSHOT_N to resize, BENCH_SNAPSHOT_DIR to keep and
reuse the seeded parts, BENCH_SNAPSHOT_BASELINE=0 to skip today's check_quality, which holds N dicts).
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.tables import peak_rss_mib, print_table

N = int(os.environ.get("BENCH_SNAPSHOT_N", "1000000"))
BASELINE = os.environ.get("BENCH_SNAPSHOT_BASELINE", "1") != "0"
REQUEST = {"min_error_score": 0.2, "balance_error_types": False, "version_name": "bench"}
# Every case, for the quality check over N rows.
ALL_ROWS = {"min_error_score": 0.0, "include_uncorrected": True, "balance_error_types": False}
SETTINGS = {"memory_limit": "1GB", "threads": 2}
START = datetime(2026, 11, 1, tzinfo=UTC)
WORDS = ("turn left at the light number and park behind the bank please call my mother tomorrow morning about "
         "the dentist appointment on friday before noon or after lunch if the weather is fine").split()


def synthetic_cases(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """n stored cases of ~0.5 KB of text, as record_failure stores them (4 in 5 corrected)."""
    rng = random.Random(seed)
    sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(25, 45))) for _ in range(4096)]
    for i in range(n):
        reference = f"{sentences[i % 4096]} {i}"
        corrected = i % 5 != 0
        yield {
            "case_id": f"case-{i:08d}",
            "audio_path": f"gs://stt-audio/bench/{i:08d}.wav",
            "original_transcript": reference.upper() if i % 2 else reference.replace("left", "right"),
            "corrected_transcript": reference if corrected else None,
            "corrected": corrected,
            "error_types": ["all_caps"] if i % 2 else ["substitution"],
            "error_types_source": "derived" if corrected else "none",
            "error_score": (i % 100) / 100,
            "speaker_id": f"spk-{i % 5000}",
            "model_version": f"v{i % 3}",
            "language": "en",
            "duration_s": 1.0 + (i % 900) / 100,
            "wer": (i % 37) / 37 if corrected else None,
            "cer": (i % 53) / 53 if corrected else None,
            "created_at": START + timedelta(seconds=i),
            "updated_at": START + timedelta(seconds=i),
        }


def updated_again(n: int) -> Iterator[dict[str, Any]]:
    """One case in 20, corrected again a day later (the tail of Firestore since the backfill's watermark)."""
    for case in synthetic_cases(n):
        if int(case["case_id"][5:]) % 20 == 7:
            case["corrected_transcript"] = f"{case['original_transcript'].lower()} again"
            case["corrected"] = True
            case["updated_at"] += timedelta(days=1)
            yield case


def seed(folder: Path) -> dict[str, float]:
    """The snapshot of n cases under folder (kept between runs when BENCH_SNAPSHOT_DIR is set)."""
    from shared.snapshot.parts import LocalPartStore, part_names, write_cases

    store = LocalPartStore(folder)
    if part_names(store):
        return {"seed_s": float("nan")}
    started = time.perf_counter()
    write_cases(store, synthetic_cases(N), rows_per_part=250_000, now=START)
    write_cases(store, updated_again(N), rows_per_part=250_000, now=START + timedelta(days=1))
    return {"seed_s": time.perf_counter() - started}


def compression(folder: Path) -> list[list[object]]:
    """One 250k-row part written as zstd and as snappy: write time, size, and DuckDB's read of every column."""
    import duckdb
    import pyarrow.parquet as pq

    from shared.snapshot.parts import LocalPartStore, part_names

    store = LocalPartStore(folder)
    table = pq.read_table(store.path(part_names(store)[0]))
    rows = []
    for codec in ("zstd", "snappy"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"part.{codec}.parquet"
            started = time.perf_counter()
            pq.write_table(table, path, compression=codec)
            written = time.perf_counter() - started
            con = duckdb.connect(config={"threads": 2})
            started = time.perf_counter()
            con.execute(
                "SELECT sum(strlen(original_transcript) + strlen(coalesce(corrected_transcript, '')) + strlen(case_id)"
                " + strlen(audio_path)), max(updated_at), sum(error_score) FROM read_parquet($p)", {"p": str(path)}
            ).fetchall()
            read = time.perf_counter() - started
            con.close()
            rows.append([f"{codec} ({table.num_rows:,} rows)", written, read, path.stat().st_size / 2**20])
    return rows


def child(work: str, folder: Path, out: Path) -> None:
    """One measured piece of work in this fresh process; prints its seconds, phases and peak RSS as JSON."""
    from shared.domain.dataset_request import BuildRequest
    from shared.snapshot.engine import EngineSettings, SnapshotEngine, build_from_snapshot, finished_metadata
    from shared.snapshot.parts import LocalPartStore, fetch_parts

    settings = EngineSettings(**SETTINGS)  # type: ignore[arg-type]
    paths, names = fetch_parts(LocalPartStore(folder), out)
    result: dict[str, Any] = {}
    started = time.perf_counter()
    if work in ("build", "build-default"):
        request = BuildRequest(**REQUEST) if work == "build" else BuildRequest()  # type: ignore[arg-type]

        @contextlib.contextmanager
        def open_file(name: str) -> Iterator[Any]:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            with (out / name).open("wb") as file:
                yield file

        build = build_from_snapshot(
            paths, request, open_file, dataset_id="bench", created_at=datetime.now(UTC), source="bench",
            settings=settings, names=names,
        )
        data_files = {split: str(out / f"{split}.jsonl") for split in build.split_sizes}
        metadata = finished_metadata(build, str(out), data_files)
        (out / "metadata.json").write_bytes(orjson.dumps(metadata, option=orjson.OPT_INDENT_2))
        result["rows"] = build.total
        result["steps"] = dict(build.seconds)
        result["passed"] = build.quality_report["passed"]
    elif work == "floor":
        with SnapshotEngine(settings) as engine:
            engine.load_parts(paths, names)
            engine.floor_copy(BuildRequest(**REQUEST), out / "floor")  # type: ignore[arg-type]
    elif work == "quality":
        with SnapshotEngine(settings) as engine:
            engine.load_parts(paths, names)
            result["rows"] = sum(engine.select(BuildRequest(**ALL_ROWS)).values())  # type: ignore[arg-type]
            started = time.perf_counter()  # the check alone, over the rows the select left in DuckDB
            result["passed"] = engine.quality_report()["passed"]
    elif work == "today":
        from shared.domain.dataset_quality import check_quality, validate_lines

        with SnapshotEngine(settings) as engine:  # the same N rows, written out, then read as today's dicts
            engine.load_parts(paths, names)
            engine.select(BuildRequest(**ALL_ROWS))  # type: ignore[arg-type]

            @contextlib.contextmanager
            def to_file(name: str) -> Iterator[Any]:
                with (out / name).open("wb") as file:
                    yield file

            engine.write_splits(to_file, parquet=False)
        splits = {split: validate_lines(split, (out / f"{split}.jsonl").read_bytes().splitlines())[0]
                  for split in ("train", "val", "test")}
        started = time.perf_counter()
        result["passed"] = check_quality(splits)["passed"]
        result["rows"] = sum(len(rows) for rows in splits.values())
    result["s"] = time.perf_counter() - started
    result["peak_mib"] = peak_rss_mib()
    print(orjson.dumps(result).decode())


def measured(work: str, folder: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{work}-") as out:
        stdout = subprocess.run(
            [sys.executable, __file__, "--child", work, str(folder), out], check=True, capture_output=True, text=True
        ).stdout
    return dict(orjson.loads(stdout.strip().splitlines()[-1]))


def main() -> None:
    kept = os.environ.get("BENCH_SNAPSHOT_DIR")
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        folder = Path(kept) if kept else Path(tmp)
        seeded = seed(folder)
        floor = measured("floor", folder)
        build = measured("build", folder)
        balanced = measured("build-default", folder)
        quality = measured("quality", folder)
        today = measured("today", folder) if BASELINE else None
        codecs = compression(folder)
    seeded_text = "parts reused" if seeded["seed_s"] != seeded["seed_s"] else f"seeded in {seeded['seed_s']:.1f} s"
    print_table(
        f"dataset build over a {N:,}-case snapshot ({build['rows']:,} rows built; {seeded_text})",
        ["measure", "sttdata", "floor/baseline", "ratio", "target"],
        [
            ["build s (parts -> split files + sha256, quality, metadata)", build["s"], floor["s"],
             f"{build['s'] / floor['s']:.2f}x", "<= 10 s"],
            ["build peak RSS MiB", build["peak_mib"], floor["peak_mib"],
             f"{build['peak_mib'] / floor['peak_mib']:.2f}x", "<= 1536 MiB"],
            [f"build s, default request (balanced, {balanced['rows']:,} rows)", balanced["s"], floor["s"],
             f"{balanced['s'] / floor['s']:.2f}x", "<= 10 s"],
            ["build peak RSS MiB, default request", balanced["peak_mib"], floor["peak_mib"],
             f"{balanced['peak_mib'] / floor['peak_mib']:.2f}x", "<= 1536 MiB"],
            [f"quality report s ({quality['rows']:,} rows)", quality["s"], today["s"] if today else "-",
             f"{quality['s'] / today['s']:.2f}x" if today else "-", "<= 3 s"],
            ["quality peak RSS MiB", quality["peak_mib"], today["peak_mib"] if today else "-",
             f"{quality['peak_mib'] / today['peak_mib']:.2f}x" if today else "-", ""],
        ],
    )
    steps = build["steps"]
    print("build steps s: " + ", ".join(f"{name} {value:.2f}" for name, value in steps.items()))
    print("floor: DuckDB's COPY of the latest, filtered, split rows to JSON, in a fresh process;"
          " baseline: today's check_quality over the same rows as dicts")
    print_table("snapshot part codecs (parts.DEFAULT_COMPRESSION is zstd)", ["part", "write s", "DuckDB read s", "MiB"],
                codecs)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
