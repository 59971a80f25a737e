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

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

COPY_CHUNK = 8 * 1024 * 1024  # bytes per read when copying a split file to a local file


@dataclass(frozen=True)
class SplitFile:
    """One split file as fetched: its local copy and sha256, or None for both when it is missing."""

    split: str
    path: Path | None
    sha256: str | None

    @property
    def name(self) -> str:
        return f"{self.split}.jsonl"


def fetch_split_files(bucket: Bucket, dataset_id: str, folder: Path) -> dict[str, SplitFile]:
    """Each split file of the dataset copied to ``folder`` through ``bucket.reader`` a chunk at a time, hashed
    on the way; by split, in dataset order."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = layout.dataset_prefix(dataset_id)
    fetched = {}
    for split in SPLITS:
        path = folder / f"{split}.jsonl"
        digest = hashlib.sha256()
        try:
            with bucket.reader(f"{prefix}{split}.jsonl") as stream, path.open("wb") as out:
                while chunk := stream.read(COPY_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except ObjectGone:
            path.unlink(missing_ok=True)
            fetched[split] = SplitFile(split, None, None)
            continue
        fetched[split] = SplitFile(split, path, digest.hexdigest())
    return fetched


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
    engine.con.execute("SET preserve_insertion_order = true")  # rowid is then the line's place in its file
    try:
        for split, table in tables.items():
            _read_lines(engine, table, files.get(split), fields)
    finally:
        engine.con.execute("SET preserve_insertion_order = false")
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


def _udf_python_str(texts: pa.Array) -> pa.Array:
    """str() of each raw JSON value, as case_splits keys a case_id that is not a string."""
    return pa.array([str(orjson.loads(text)) for text in texts.to_pylist()], pa.string())


def compare_case_files(
    files1: Mapping[str, Path | None], files2: Mapping[str, Path | None], settings: EngineSettings | None = None,
) -> dict[str, Any]:
    """versions.compare_cases of two datasets' local split files (their case_splits maps), joined on DuckDB."""
    with SnapshotEngine(settings) as engine:
        engine.con.create_function("stt_python_str", _udf_python_str, [sqltypes.VARCHAR], sqltypes.VARCHAR,
                                   type=func.ARROW)
        tables = {}
        for version, files in ((1, files1), (2, files2)):
            for split, table in _lines_tables(engine, f"stt_cases_{version}", files, ("case_id",)).items():
                tables[(version, split)] = table
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
