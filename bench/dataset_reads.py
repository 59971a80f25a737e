"""Reads of finished datasets (issue #13): the quality check, the comparison of two versions and the rollback
verification, each against today's in-memory function in the same run, on local files.

Seeds two datasets of N rows as split files in a folder the bench reads as a bucket (get and a streamed
reader, as BucketStore serves them): the second drops one case in 20, adds as many and moves one in 1000 to
another split. Then, each in a fresh process so its peak RSS is its own:

- quality: ``dataset_quality`` (split files streamed to a temp dir, counted on DuckDB) against today's
  ``check_quality(read_rows(...))``, every row as a dict;
- compare: the cases of ``compare_versions`` (both datasets' files fetched, joined on DuckDB) against today's
  ``compare_cases(case_splits(...), case_splits(...))``;
- read-floor: DuckDB's bare ``read_json`` of the first dataset's files, every field the quality rules read
  extracted as JSON text and summed up (nothing kept): the floor of any check that parses the lines;
- verify: ``changed_files`` (each file hashed through the reader in 8 MiB chunks) against today's whole-file
  ``get`` and sha256, with the floor of a raw ``hashlib.file_digest`` of the same files.

Targets (issue #13): quality over 1M rows <= 3 s; compare of two 1M-row versions <= 10 s with bounded memory;
verification <= 1.5x a raw sha256 of the same bytes. The machine is shared: compare figures of one run only.
Run: `.venv/bin/python bench/dataset_reads.py` (BENCH_READS_N rows per dataset, default 1,000,000;
BENCH_READS_BASELINE=0 skips today's functions, which hold every row).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from bench.snapshot_build import synthetic_cases
from bench.tables import print_table

N = int(os.environ.get("BENCH_READS_N", "1000000"))
BASELINE = os.environ.get("BENCH_READS_BASELINE", "1") != "0"
SETTINGS = {"memory_limit": "1GB", "threads": 2}
SPLITS = ("train", "val", "test")
DATASETS = ("bench-1", "bench-2")


class FolderBucket:
    """A folder read as the bucket: the two reads the dataset functions use (get and a streamed reader)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, name: str, generation: int | None = None) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    @contextlib.contextmanager
    def reader(self, name: str, generation: int | None = None) -> Iterator[BinaryIO]:
        from shared.errors import ObjectGone

        path = self.root / name
        if not path.is_file():
            raise ObjectGone(name)
        with path.open("rb") as stream:
            yield stream


def split_of(i: int) -> str:
    return "train" if i % 10 < 8 else ("val" if i % 10 == 8 else "test")


def seed(root: Path) -> dict[str, dict[str, Any]]:
    """Both datasets' split files under root; each file's manifest entry, by dataset."""
    from shared.domain import bucket_layout as layout
    from shared.domain.dataset_build import to_row

    recorded: dict[str, dict[str, Any]] = {}
    for number, dataset_id in enumerate(DATASETS):
        folder = root / layout.dataset_prefix(dataset_id)
        folder.mkdir(parents=True)
        outs = {split: (folder / f"{split}.jsonl").open("wb") for split in SPLITS}
        digests = {split: hashlib.sha256() for split in SPLITS}
        for i, case in enumerate(synthetic_cases(N + N // 20)):
            if (number == 0 and i >= N) or (number == 1 and i % 20 == 3):
                continue  # the second dataset drops one case in 20 and has N // 20 more at the end
            split = split_of(i + 8 if number == 1 and i % 1000 == 11 else i)  # and moves one in 1000 (train to test)
            line = orjson.dumps(to_row(case, split)) + b"\n"
            outs[split].write(line)
            digests[split].update(line)
        for out in outs.values():
            out.close()
        recorded[dataset_id] = {f"{split}.jsonl": {"sha256": digests[split].hexdigest()} for split in SPLITS}
    return recorded


def child(work: str, root: Path, recorded: dict[str, Any]) -> None:
    """One measured piece of work in this fresh process; prints its seconds and peak RSS as JSON."""
    from shared.domain import bucket_layout as layout
    from shared.domain import versions
    from shared.domain.dataset_quality import check_quality
    from shared.ports import Bucket
    from shared.services.dataset_versions import case_splits
    from shared.services.datasets import changed_files, dataset_quality, read_rows
    from shared.snapshot import sql
    from shared.snapshot.dataset_files import compare_case_files, fetch_split_files
    from shared.snapshot.engine import EngineSettings

    bucket = cast(Bucket, FolderBucket(root))
    settings = EngineSettings(**SETTINGS)  # type: ignore[arg-type]
    result: dict[str, Any] = {}
    started = time.perf_counter()
    if work == "quality":
        result["rows"] = dataset_quality(bucket, DATASETS[0], settings)["num_samples"]
    elif work == "quality-today":
        result["rows"] = check_quality(read_rows(bucket, DATASETS[0]))["num_samples"]
    elif work == "compare":
        with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
            fetched = [{split: file.path for split, file in fetch_split_files(bucket, d, Path(tmp) / d).items()}
                       for d in DATASETS]
            result["cases"] = compare_case_files(fetched[0], fetched[1], settings)
    elif work == "compare-today":
        result["cases"] = versions.compare_cases(case_splits(bucket, DATASETS[0]), case_splits(bucket, DATASETS[1]))
    elif work == "read-floor":
        import duckdb

        folder = root / layout.dataset_prefix(DATASETS[0])
        con = duckdb.connect(config={"memory_limit": SETTINGS["memory_limit"], "threads": SETTINGS["threads"]})
        columns = "{" + ", ".join(f"{name}: 'JSON'" for name in sql.SPLIT_FIELDS) + "}"
        touched = " + ".join(f"sum(length(CAST({name} AS VARCHAR)))" for name in sql.SPLIT_FIELDS)  # every field
        result["rows"] = con.execute(
            f"SELECT count(*), {touched} FROM read_json($paths, format = 'newline_delimited', "
            f"records = true, columns = {columns})", {"paths": [str(folder / f"{split}.jsonl") for split in SPLITS]},
        ).fetchall()[0][0]
        con.close()
    elif work == "verify":
        result["changed"] = changed_files(bucket, DATASETS[0], recorded[DATASETS[0]])
    elif work == "verify-today":
        prefix = layout.dataset_prefix(DATASETS[0])
        result["changed"] = [name for name, entry in sorted(recorded[DATASETS[0]].items())
                             if hashlib.sha256(bucket.get(prefix + name) or b"").hexdigest() != entry["sha256"]]
    elif work == "verify-floor":
        folder = root / layout.dataset_prefix(DATASETS[0])
        for name in sorted(recorded[DATASETS[0]]):
            with (folder / name).open("rb") as file:
                hashlib.file_digest(file, "sha256")
    result["s"] = time.perf_counter() - started
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(orjson.dumps(result).decode())


def measured(work: str, root: Path, recorded: dict[str, Any]) -> dict[str, Any]:
    stdout = subprocess.run(
        [sys.executable, __file__, "--child", work, str(root), orjson.dumps(recorded).decode()],
        check=True, capture_output=True, text=True,
    ).stdout
    return dict(orjson.loads(stdout.strip().splitlines()[-1]))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        recorded = seed(root)
        seeded = time.perf_counter() - started
        mib = sum(path.stat().st_size for path in root.rglob("*.jsonl")) / 2**20 / 2
        works = ["quality", "read-floor", "compare", "verify", "verify-floor"]
        works += ["quality-today", "compare-today", "verify-today"] if BASELINE else []
        runs = {work: measured(work, root, recorded) for work in works}
    if BASELINE:
        assert runs["compare"]["cases"] == runs["compare-today"]["cases"], "the join and the maps disagree"
    assert runs["verify"]["changed"] == [], "the seeded files changed"

    def row(label: str, work: str, versus: str, target: str) -> list[list[object]]:
        other = runs.get(versus)
        base_s = other["s"] if other else "-"
        base_mib = other["peak_mib"] if other else "-"
        return [
            [f"{label} s", runs[work]["s"], base_s, f"{runs[work]['s'] / other['s']:.2f}x" if other else "-", target],
            [f"{label} peak RSS MiB", runs[work]["peak_mib"], base_mib,
             f"{runs[work]['peak_mib'] / other['peak_mib']:.2f}x" if other else "-", ""],
        ]

    print_table(
        f"dataset reads over {N:,}-row datasets ({mib:,.0f} MiB of split files each; seeded in {seeded:.1f} s)",
        ["measure", "sttdata", "baseline", "ratio", "target"],
        [
            *row(f"quality report ({runs['quality']['rows']:,} rows)", "quality", "quality-today", "<= 3 s"),
            *row("quality report vs DuckDB's bare JSON read (floor)", "quality", "read-floor", ""),
            *row("compare cases of two versions", "compare", "compare-today", "<= 10 s"),
            *row("rollback verification (today's get + sha256)", "verify", "verify-today", ""),
            *row("rollback verification (raw sha256 floor)", "verify", "verify-floor", "<= 1.5x"),
        ],
    )
    print(f"cases: {runs['compare']['cases']}")
    print("baseline: today's in-memory functions (every row as a dict, whole files by get) in a fresh process;"
          " floors: DuckDB's bare read_json of the same files, hashlib.file_digest of them")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), orjson.loads(sys.argv[4]))
    else:
        main()
