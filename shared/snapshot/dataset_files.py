"""A finished dataset's split files on DuckDB: its quality report, its line issues and the comparison of two
datasets' cases, without holding their rows.

The split files are streamed from the bucket to local files (``fetch_split_files``, hashing them on the way),
read by DuckDB's JSON reader (each field the rules read as raw JSON; blank lines skipped; a file with a line
that is malformed or not an object is read again line by line with ``read_ndjson_objects``, which tells those
apart from an object without the fields) and turned into the engine's ``stt_rows`` with check_quality's
normalisation (a field that is not a string counts as "", ``has_correction`` only when it is JSON true, an
``error_score`` that is not a number fails the range rule). The engine's quality path then counts every rule
in SQL; the few rows its report names get their raw ``error_score`` and ``split`` back, so the messages are
check_quality's own (a string score is shown as ``'0.5'``, not as a number).

Where DuckDB and orjson read a line differently, the report can differ from ``check_quality(read_rows(...))``
(tests/unit/test_dataset_reads.py checks equality on everything else):

- an object with a repeated key: DuckDB keeps the first value, orjson the last;
- a number orjson refuses (beyond a double's range, an integer past 64 bits): DuckDB reads the row, orjson
  calls the line invalid and read_rows skips it.

The line issues (validate_lines' messages) come from a Python pass over the local file, one line at a time.

``compare_case_files`` is ``versions.compare_cases`` of two datasets' ``case_splits`` maps: each dataset's
latest split per case_id (``str()`` of the value, so a number or null is keyed as Python keys it; the same two
reading differences apply) and a full join of the two, counted in SQL; only the first ``MOVED_IDS_CAP`` moved
ids reach Python.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pyarrow as pa
from duckdb import func, sqltypes

from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_facts import report_from_facts
from shared.domain.dataset_quality import QualityThresholds, line_issues
from shared.domain.versions import MOVED_IDS_CAP
from shared.errors import ObjectGone
from shared.ports import Bucket
from shared.snapshot import sql
from shared.snapshot.engine import EngineSettings, SnapshotEngine

T = TypeVar("T")
COPY_CHUNK = 8 * 1024 * 1024  # bytes per read when copying a split file to a local file
PARALLEL_READS = 4  # objects of a dataset read at once


@dataclass(frozen=True)
class SplitFile:
    """One split file as fetched: its local copy and sha256, or None for both when it is missing."""

    split: str
    path: Path | None
    sha256: str | None

    @property
    def name(self) -> str:
        return f"{self.split}.jsonl"


def copy_object(bucket: Bucket, name: str, path: Path | None, chunk_bytes: int = COPY_CHUNK) -> str | None:
    """The object's sha256, read through ``bucket.reader`` a chunk at a time (never the whole object in memory)
    and, with a ``path``, copied there on the way; None when the object is missing (nothing is left at ``path``
    then)."""
    digest = hashlib.sha256()
    try:
        with bucket.reader(name) as stream, (path.open("wb") if path else contextlib.nullcontext()) as out:
            while chunk := stream.read(chunk_bytes):
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
    except ObjectGone:
        if path:
            path.unlink(missing_ok=True)
        return None
    return digest.hexdigest()


def _copy_objects(bucket: Bucket, jobs: Mapping[str, Path | None]) -> dict[str, str | None]:
    """``copy_object`` of each object name -> local path (None: hash only), a few at a time: sha256 and the
    bucket's reads both leave the GIL, so the files of a dataset are read side by side."""
    if len(jobs) == 1:
        return {name: copy_object(bucket, name, path) for name, path in jobs.items()}
    with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
        futures = {name: pool.submit(copy_object, bucket, name, path) for name, path in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def fetch_split_files(bucket: Bucket, dataset_id: str, folder: Path) -> dict[str, SplitFile]:
    """Each split file of the dataset copied to ``folder`` through ``bucket.reader`` a chunk at a time, hashed
    on the way; by split, in dataset order."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = layout.dataset_prefix(dataset_id)
    paths = {split: folder / layout.split_file(split) for split in SPLITS}
    hashes = _copy_objects(bucket, {prefix + layout.split_file(split): paths[split] for split in SPLITS})
    shas = {split: hashes[prefix + layout.split_file(split)] for split in SPLITS}
    return {split: SplitFile(split, paths[split] if sha is not None else None, sha) for split, sha in shas.items()}


@dataclass(frozen=True)
class DatasetRows:
    """Where a dataset's rows are read from: its Parquet copies, or its split files (local paths by split; None
    for a missing file)."""

    paths: Mapping[str, Path | None]
    parquet: bool


def verified_copies(
    bucket: Bucket, dataset_id: str, recorded: Mapping[str, Mapping[str, Any]], folder: Path
) -> dict[str, Path] | None:
    """The dataset's Parquet copies as local files (by split) when each is still the bytes its build recorded
    (``recorded``: metadata.json's ``files``); None for a dataset without copies or with one changed."""
    names = {split: layout.parquet_copy(split) for split in SPLITS}
    if not all(name in recorded for name in names.values()):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    prefix = layout.dataset_prefix(dataset_id)
    paths = {split: folder / f"{split}.parquet" for split in SPLITS}
    hashes = _copy_objects(bucket, {prefix + names[split]: paths[split] for split in SPLITS})
    if all(hashes[prefix + name] == recorded[name].get("sha256") for name in names.values()):
        return paths
    for path in paths.values():
        path.unlink(missing_ok=True)
    return None


def split_files_as_built(bucket: Bucket, dataset_id: str, recorded: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when every split file is still the bytes its build recorded (hashed as streams, nothing kept)."""
    prefix = layout.dataset_prefix(dataset_id)
    names = [layout.split_file(split) for split in SPLITS]
    hashes = _copy_objects(bucket, dict.fromkeys((prefix + name for name in names), None))
    return all(hashes[prefix + name] == recorded.get(name, {}).get("sha256") for name in names)


def _split_file_rows(bucket: Bucket, dataset_id: str, folder: Path) -> DatasetRows:
    files = fetch_split_files(bucket, dataset_id, folder)
    return DatasetRows({split: file.path for split, file in files.items()}, parquet=False)


def read_datasets(
    bucket: Bucket, datasets: Sequence[tuple[str, Mapping[str, Mapping[str, Any]]]], folder: Path,
    work: Callable[[list[DatasetRows]], T],
) -> T:
    """``work`` over the rows of each dataset ((dataset_id, metadata.json's ``files``) in order), as they are
    now: a dataset's Parquet copies when they and its split files are still the bytes its build recorded (the
    copies then hold exactly the split files' rows), else its split files.

    The copies are verified before ``work`` starts; the split files (several times their size) are hashed in a
    thread while it runs, and in the rare case one changed since the build, that dataset is read again from its
    split files and ``work`` runs again."""
    rows: list[DatasetRows] = []
    with ThreadPoolExecutor(max_workers=1) as hashing:
        checks: list[Future[bool] | None] = []
        for number, (dataset_id, recorded) in enumerate(datasets):
            copies = verified_copies(bucket, dataset_id, recorded, folder / f"{number}-copies")
            if copies is None:
                checks.append(None)
                rows.append(_split_file_rows(bucket, dataset_id, folder / f"{number}-files"))
                continue
            checks.append(hashing.submit(split_files_as_built, bucket, dataset_id, recorded))
            rows.append(DatasetRows(dict(copies), parquet=True))
        result = work(rows)
        changed = [number for number, check in enumerate(checks) if check is not None and not check.result()]
    if not changed:
        return result
    for number in changed:
        rows[number] = _split_file_rows(bucket, datasets[number][0], folder / f"{number}-files")
    return work(rows)


def _python_value(text: str | None) -> Any:
    """What orjson makes of a raw JSON value (None for an absent field)."""
    return None if text is None else orjson.loads(text)


def _read_lines(
    engine: SnapshotEngine, table: str, path: Path | None, fields: tuple[str, ...] = sql.SPLIT_FIELDS
) -> None:
    """One split file's lines as ``table``, in file order: DuckDB's JSON reader, or each line parsed whole when
    the file has a line that reader cannot tell from an object without the fields."""
    con = engine.con
    if path is None or not path.stat().st_size:
        con.execute(sql.empty_split_lines(table, fields))
        return
    con.execute(sql.split_lines_fast(table, fields), {"path": str(path)})
    if con.execute(sql.unreadable_lines(table)).fetchall()[0][0]:
        con.execute(sql.split_lines_exact(table, fields), {"path": str(path)})


def _lines_tables(engine: SnapshotEngine, prefix: str, files: Mapping[str, Path | None],
                  fields: tuple[str, ...] = sql.SPLIT_FIELDS) -> dict[str, str]:
    """Each split file's lines as a table named ``<prefix>_<split>``; the tables by split, in dataset order."""
    tables = {split: f"{prefix}_{split}" for split in SPLITS}
    with engine.insertion_order():  # rowid is then the line's place in its file
        for split, table in tables.items():
            _read_lines(engine, table, files.get(split), fields)
    return tables


def load_split_files(engine: SnapshotEngine, files: Mapping[str, Path | None]) -> dict[str, int]:
    """Fill the engine's ``stt_rows`` with the rows of local split files (a missing file has none), each row in
    the split whose file holds it; the number of rows of each split."""
    engine.con.execute(sql.rows_from_split_lines(_lines_tables(engine, "stt_lines", files)))
    return engine.count_splits()


def loaded_quality_report(engine: SnapshotEngine, thresholds: QualityThresholds | None = None) -> dict[str, Any]:
    """check_quality's report of rows loaded by ``load_split_files``: the engine's counts, with the replayed
    rows' raw ``error_score`` and ``split`` put back for their messages."""
    facts = engine.quality_facts()
    wanted = [(flagged.split, flagged.position) for flagged in facts.replay]
    raw: dict[tuple[str, int], tuple[str | None, str | None]] = {}
    if wanted:
        found = engine.con.execute(
            sql.RAW_OF_ROWS, {"keys": [{"s": split, "p": pos} for split, pos in wanted]}
        ).fetchall()
        raw = {(split, int(pos)): (score, split_json) for split, pos, score, split_json in found}
    replay = []
    for flagged in facts.replay:
        score, split_json = raw[(flagged.split, flagged.position)]
        row = {**flagged.row, "error_score": _python_value(score), "split": _python_value(split_json)}
        replay.append(dataclasses.replace(flagged, row=row))
    return report_from_facts(dataclasses.replace(facts, replay=replay), thresholds)


def quality_of_files(
    files: Mapping[str, Path | None], settings: EngineSettings | None = None,
    thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    """check_quality's report of the rows of local split files, counted on DuckDB."""
    with SnapshotEngine(settings) as engine:
        load_split_files(engine, files)
        return loaded_quality_report(engine, thresholds)


def load_parquet_copies(engine: SnapshotEngine, files: Mapping[str, Path | None]) -> dict[str, int]:
    """Fill the engine's ``stt_rows`` with the rows of a dataset's Parquet copies (each row in the split whose
    copy holds it, in file order), as the build's own rows were; the number of rows of each split."""
    engine.con.execute(sql.rows_from_parquet_copies(_split_paths(files)))
    return engine.count_splits()


def _split_paths(files: Mapping[str, Path | None]) -> dict[str, str]:
    missing = [split for split, path in files.items() if path is None]
    if missing:
        raise ValueError(f"no Parquet copy of {missing}")  # verified_copies returns a copy of every split
    return {split: str(path) for split, path in files.items()}


def quality_of_rows(
    rows: DatasetRows, settings: EngineSettings | None = None, thresholds: QualityThresholds | None = None,
) -> dict[str, Any]:
    """check_quality's report of a dataset's rows, from its Parquet copies (the build's own SQL over the same
    rows) or its split files."""
    if not rows.parquet:
        return quality_of_files(rows.paths, settings, thresholds)
    with SnapshotEngine(settings) as engine:
        load_parquet_copies(engine, rows.paths)
        return engine.quality_report(thresholds)


def _udf_python_str(texts: pa.Array) -> pa.Array:
    """str() of each raw JSON value, as case_splits keys a case_id that is not a string."""
    return pa.array([str(orjson.loads(text)) for text in texts.to_pylist()], pa.string())


def compare_case_files(
    files1: Mapping[str, Path | None] | DatasetRows, files2: Mapping[str, Path | None] | DatasetRows,
    settings: EngineSettings | None = None,
) -> dict[str, Any]:
    """versions.compare_cases of two datasets' rows (their case_splits maps), joined on DuckDB; each side is its
    split files (local paths by split) or a ``read_datasets`` side (the Parquet copies' case_ids, read
    as a column, need no JSON parsing)."""
    with SnapshotEngine(settings) as engine:
        engine.con.create_function("stt_python_str", _udf_python_str, [sqltypes.VARCHAR], sqltypes.VARCHAR,
                                   type=func.ARROW)
        tables: dict[tuple[int, str], tuple[str, bool]] = {}
        for version, side in ((1, files1), (2, files2)):
            rows = side if isinstance(side, DatasetRows) else DatasetRows(side, parquet=False)
            if rows.parquet:
                for split, path in _split_paths(rows.paths).items():
                    table = f"stt_cases_{version}_{split}"
                    engine.con.execute(sql.parquet_case_ids(table), {"path": path})
                    tables[(version, split)] = (table, True)
                continue
            for split, table in _lines_tables(engine, f"stt_cases_{version}", rows.paths, ("case_id",)).items():
                tables[(version, split)] = (table, False)
        query = sql.case_diff(tables)
        added, removed, kept, moved, moved_ids = engine.con.execute(query, {"cap": MOVED_IDS_CAP}).fetchall()[0]
    return {"added": added, "removed": removed, "kept": kept, "moved": moved, "moved_case_ids": list(moved_ids)}


def file_line_issues(split: str, path: Path | None) -> list[str]:
    """validate_lines' issues of one local split file, read a line at a time."""
    if path is None:
        return []
    with path.open("rb") as lines:
        # A line of the file is split again as bytes.splitlines() splits (a lone \r ends a line there too).
        return line_issues(split, (part for line in lines for part in (line.splitlines() or [b""])))
