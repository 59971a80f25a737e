"""Reads of finished datasets (issue #13): the quality check, the comparison of two versions and the rollback
verification, each against today's in-memory function in the same run, on local files.

Seeds two datasets of N rows as a build leaves them (split files, their Parquet copies, metadata.json with
every file's sha256) in a folder the bench reads as a bucket (get and a streamed reader, as BucketStore serves
them): the second drops one case in 20, adds as many and moves one in 1000 to another split. Then, each in a
fresh process so its peak RSS is its own:

- quality: ``dataset_quality`` (split files hashed, Parquet copies fetched, the build's quality SQL over them)
  against the same report from the split files (``quality-json``: streamed to a temp dir, parsed by DuckDB's
  JSON reader, the path of a dataset without copies) and today's ``check_quality(read_rows(...))``, every row
  as a dict;
- compare: the cases of ``compare_versions`` (both datasets' copies fetched, joined on DuckDB) against the
  same join over their split files (``compare-json``) and today's ``compare_cases(case_splits(...), ...)``;
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
from bench.tables import peak_rss_mib, print_table

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
    """Both datasets' split files and Parquet copies (written as the build writes them: ROW_SCHEMA, zstd, row
    groups of PARQUET_ROW_GROUP rows) and metadata.json under root; each file's manifest entry, by dataset."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shared.domain import bucket_layout as layout
    from shared.domain.dataset_build import to_row
    from shared.snapshot.engine import PARQUET_ROW_GROUP, ROW_SCHEMA

    recorded: dict[str, dict[str, Any]] = {}
    for number, dataset_id in enumerate(DATASETS):
        folder = root / layout.dataset_prefix(dataset_id)
        (folder / "parquet").mkdir(parents=True)
        outs = {split: (folder / layout.split_file(split)).open("wb") for split in SPLITS}
        copies = {split: pq.ParquetWriter(folder / layout.parquet_copy(split), ROW_SCHEMA, compression="zstd")
                  for split in SPLITS}
        pending: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}

        def flush(writer: pq.ParquetWriter, rows: list[dict[str, Any]]) -> None:
            writer.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), row_group_size=PARQUET_ROW_GROUP)
            rows.clear()

        for i, case in enumerate(synthetic_cases(N + N // 20)):
            if (number == 0 and i >= N) or (number == 1 and i % 20 == 3):
                continue  # the second dataset drops one case in 20 and has N // 20 more at the end
            split = split_of(i + 8 if number == 1 and i % 1000 == 11 else i)  # and moves one in 1000 (train to test)
            row = to_row(case, split)
            outs[split].write(orjson.dumps(row) + b"\n")
            pending[split].append(row)
            if len(pending[split]) == PARQUET_ROW_GROUP:
                flush(copies[split], pending[split])
        for split in SPLITS:
            flush(copies[split], pending[split])
            copies[split].close()
            outs[split].close()
        files = {}
        names = [*(layout.split_file(split) for split in SPLITS), *(layout.parquet_copy(split) for split in SPLITS)]
        for name in names:
            with (folder / name).open("rb") as file:
                files[name] = {"sha256": hashlib.file_digest(file, "sha256").hexdigest()}
        (folder / layout.DATASET_METADATA).write_bytes(orjson.dumps({"dataset_id": dataset_id, "files": files}))
        recorded[dataset_id] = files
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
    elif work == "quality-json":
        from shared.snapshot.dataset_files import DatasetRows, quality_of_rows

        with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
            files = fetch_split_files(bucket, DATASETS[0], Path(tmp))
            rows = DatasetRows({split: file.path for split, file in files.items()}, parquet=False)
            result["rows"] = quality_of_rows(rows, settings)["num_samples"]
    elif work == "quality-today":
        result["rows"] = check_quality(read_rows(bucket, DATASETS[0]))["num_samples"]
    elif work == "compare":
        from shared.snapshot.dataset_files import DatasetRows, read_datasets

        def compare(rows: list[DatasetRows]) -> dict[str, Any]:
            assert all(side.parquet for side in rows), "the copies were not taken"
            return compare_case_files(rows[0], rows[1], settings)

        with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
            result["cases"] = read_datasets(bucket, [(d, recorded[d]) for d in DATASETS], Path(tmp), compare)
    elif work == "compare-json":
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
        result["bytes"] = sum((root / layout.dataset_prefix(DATASETS[0]) / name).stat().st_size
                              for name in recorded[DATASETS[0]])
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
    result["peak_mib"] = peak_rss_mib()
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
        copies_mib = sum(path.stat().st_size for path in root.rglob("*.parquet")) / 2**20 / 2
        works = ["quality", "quality-json", "read-floor", "compare", "compare-json", "verify", "verify-floor"]
        works += ["quality-today", "compare-today", "verify-today"] if BASELINE else []
        runs = {work: measured(work, root, recorded) for work in works}
    assert runs["compare"]["cases"] == runs["compare-json"]["cases"], "the copies and the split files disagree"
    assert runs["quality"]["rows"] == runs["quality-json"]["rows"] == N
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
        f"dataset reads over {N:,}-row datasets ({mib:,.0f} MiB of split files and {copies_mib:,.0f} MiB of Parquet"
        f" copies each; seeded in {seeded:.1f} s)",
        ["measure", "sttdata", "baseline", "ratio", "target"],
        [
            *row(f"quality report ({runs['quality']['rows']:,} rows)", "quality", "quality-today", "<= 3 s"),
            *row("quality report vs the same from the split files", "quality", "quality-json", ""),
            *row("quality report vs DuckDB's bare JSON read (floor)", "quality", "read-floor", ""),
            *row("compare cases of two versions", "compare", "compare-today", "<= 10 s"),
            *row("compare cases vs the same join over the split files", "compare", "compare-json", ""),
            *row("rollback verification (today's get + sha256)", "verify", "verify-today", ""),
            *row("rollback verification (raw sha256 floor)", "verify", "verify-floor", "<= 1.5x"),
        ],
    )
    print(f"cases: {runs['compare']['cases']}")
    print("baseline: the in-memory functions (every row as a dict, whole files by get) in a fresh process, and the"
          " reads of the split files a dataset without copies takes; floors: DuckDB's bare read_json of the split"
          " files, hashlib.file_digest of every file of the manifest")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], Path(sys.argv[3]), orjson.loads(sys.argv[4]))
    else:
        main()
