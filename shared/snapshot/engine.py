"""Dataset builds on DuckDB over the case snapshot: the same rows, files, quality report and metadata as
``build_splits`` + ``write_dataset`` over the same cases, in memory bounded by a setting, not by the data.

How the build service calls it (shared/services/case_snapshot.py)::

    with tempfile.TemporaryDirectory() as tmp:
        paths, names = fetch_parts(part_store, Path(tmp))             # parts.py: the bucket's parts as files
        build = build_from_snapshot(
            paths, request, open_file,                               # open_file(name) -> a context manager
            dataset_id=dataset_id, created_at=now, source=source,    #   whose .write(bytes) streams to
            settings=EngineSettings.from_env(), names=names,         #   finetuning_datasets/<id>/<name>
        )
    if build.total == 0: -> {"error": "No eligible cases", ...} (nothing was kept: open_file is not called)
    metadata = finished_metadata(build, bucket.uri(prefix), data_files)   # write_dataset's metadata dict
    bucket.put(prefix + "metadata.json", orjson.dumps(metadata, option=orjson.OPT_INDENT_2), ...)

Steps (SQL in sql.py): check every part's footer (a corrupt or incompatible part is named), select the keys of
the latest eligible sampled rows with their splits, read the selected rows once into ``stt_rows``, stream each
split's JSONL lines in case_id order to its writer while hashing them, then the same rows as each split's
Parquet copy (``parquet/<split>.parquet``: what check_quality and compare_versions read later instead of
parsing JSON), then count the quality rules and the metadata's figures over ``stt_rows``. DuckDB spills to
``temp_directory`` past ``memory_limit``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb import func, sqltypes

from shared.domain import bucket_layout as layout
from shared.domain.audio_clips import RowAudio, audio_report
from shared.domain.case_snapshot import SNAPSHOT_SCHEMA, sample_key, split_bucket, split_edges
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_facts import (
    FlaggedRow,
    Leak,
    QualityFacts,
    dataset_metadata_from_figures,
    report_from_facts,
)
from shared.domain.dataset_quality import ISSUE_CAP, QualityThresholds
from shared.domain.dataset_request import BuildRequest
from shared.domain.split_balance import metadata_split_warnings, with_split_warnings
from shared.domain.versions import manifest_checksum
from shared.errors import SnapshotPartError
from shared.ports import PartStore
from shared.snapshot import sql
from shared.snapshot.parts import (
    PartsInfo,
    check_parts,
    fetch_parts,
    part_name,
)

PARQUET_ROW_GROUP = 50_000  # rows per row group of a Parquet copy: DuckDB reads row groups in parallel
_LETTER = re.compile(r"[^\W\d_]")  # dataset_quality's rule for "text contains a letter"
ROW_SCHEMA = pa.schema(
    [
        ("audio", pa.string()),
        ("text", pa.string()),
        ("case_id", pa.string()),
        ("original_transcript", pa.string()),
        ("error_types", pa.list_(pa.string())),
        ("error_score", pa.float64()),
        ("has_correction", pa.bool_()),
        ("speaker_id", pa.string()),
        ("language", pa.string()),
        ("model_version", pa.string()),
        ("duration_s", pa.float64()),
        ("wer", pa.float64()),
        ("cer", pa.float64()),
        ("split", pa.string()),
    ]
)


class SnapshotError(RuntimeError):
    """The engine could not read the snapshot (a part DuckDB failed on mid-scan, a row outside every split)."""


class ByteSink(Protocol):
    """Where one split file's bytes go (a local file, a GCS blob writer)."""

    def write(self, data: bytes | memoryview, /) -> Any: ...


# Reads the headers of (case_id, audio, split) rows' clips (shared/services/audio_reads.py's read_headers).
ReadAudio = Callable[[Sequence[tuple[str, str, str]]], Iterable[RowAudio]]
# Opens one file of the dataset for writing, by its name relative to the dataset's prefix (`train.jsonl`).
OpenFile = Callable[[str], AbstractContextManager[ByteSink]]
_ROW_COLUMNS = ROW_SCHEMA.names  # the row's columns in a dataset_lines batch, after split_no and line


class _HashingSink:
    """A write-only stream over a ByteSink that hashes and counts what passes (ParquetWriter asks its tell())."""

    closed = False

    def __init__(self, out: ByteSink) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes | memoryview) -> int:
        self.digest.update(data)
        self.out.write(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Nothing held here: the ByteSink flushes when its context closes."""

    def entry(self, rows: int) -> dict[str, Any]:
        """The file's manifest entry (versions.file_entry)."""
        return {"sha256": self.digest.hexdigest(), "bytes": self.size, "rows": rows}


@dataclass(frozen=True)
class EngineSettings:
    """DuckDB's bounds in a build: its memory limit, its threads, where it spills."""

    memory_limit: str = "1GB"
    threads: int = 2
    temp_directory: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineSettings:
        """STT_SNAPSHOT_MEMORY_LIMIT (DuckDB's size text, e.g. 1GB), STT_SNAPSHOT_THREADS, STT_SNAPSHOT_TEMP_DIR."""
        env = os.environ if env is None else env
        return cls(
            memory_limit=env.get("STT_SNAPSHOT_MEMORY_LIMIT", cls.memory_limit),
            threads=int(env.get("STT_SNAPSHOT_THREADS", str(cls.threads))),
            temp_directory=env.get("STT_SNAPSHOT_TEMP_DIR") or None,
        )


@dataclass(frozen=True)
class SnapshotBuild:
    """What a build wrote: each split file's manifest entry, the quality report and the dataset metadata."""

    split_sizes: Mapping[str, int]
    files: Mapping[str, Mapping[str, Any]]
    quality_report: Mapping[str, Any]
    metadata: Mapping[str, Any]
    seconds: Mapping[str, float] = field(default_factory=dict)  # each step's wall time, for logs and benches

    @property
    def total(self) -> int:
        return sum(self.split_sizes.values())


class _ParquetCopy:
    """One split's Parquet copy, written as its rows come in batches of any size: ROW_SCHEMA, zstd, row groups
    of exactly PARQUET_ROW_GROUP rows (the last one smaller), each written from one contiguous table, so the
    same rows give the same bytes however DuckDB cut its batches."""

    def __init__(self, sink: ByteSink) -> None:
        self.out = _HashingSink(sink)
        self.writer = pq.ParquetWriter(self.out, ROW_SCHEMA, compression="zstd")
        self.pending: list[pa.Table] = []
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        """Rows of a dataset_lines batch (its row columns, after split_no and line)."""
        table = pa.Table.from_batches([batch.select(range(2, 2 + len(_ROW_COLUMNS)))])
        self.pending.append(table.rename_columns(_ROW_COLUMNS).cast(ROW_SCHEMA))
        self.rows += table.num_rows
        while self.rows >= PARQUET_ROW_GROUP:
            whole = pa.concat_tables(self.pending)
            self._write(whole.slice(0, PARQUET_ROW_GROUP))
            rest = whole.slice(PARQUET_ROW_GROUP)
            self.pending, self.rows = [rest], rest.num_rows

    def _write(self, table: pa.Table) -> None:
        self.writer.write_table(table.combine_chunks(), row_group_size=PARQUET_ROW_GROUP)

    def close(self, rows: int) -> dict[str, Any]:
        """Write what is left and the footer; the file's manifest entry."""
        if self.rows:
            self._write(pa.concat_tables(self.pending))
        self.writer.close()
        return self.out.entry(rows)


def _duckdb_type(data_type: pa.DataType) -> str:
    """The DuckDB type a snapshot column is read as."""
    if pa.types.is_list(data_type):
        return f"{_duckdb_type(data_type.value_type)}[]"
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMPTZ"
    names = {pa.string(): "VARCHAR", pa.float64(): "DOUBLE", pa.int64(): "BIGINT", pa.bool_(): "BOOLEAN"}
    return names[data_type]


SNAPSHOT_TYPES: dict[str, str] = {f.name: _duckdb_type(f.type) for f in SNAPSHOT_SCHEMA}


def _udf_split_bucket(keys: pa.Array) -> pa.Array:
    return pa.array([split_bucket(key or "") for key in keys.to_pylist()], pa.float64())


def _udf_sample_key(case_ids: pa.Array) -> pa.Array:
    return pa.array([sample_key(case_id or "") for case_id in case_ids.to_pylist()], pa.int64())


def _udf_has_letter(texts: pa.Array) -> pa.Array:
    return pa.array([bool(_LETTER.search(text or "")) for text in texts.to_pylist()], pa.bool_())


def _joined_bytes(column: pa.Array | pa.ChunkedArray) -> bytes | memoryview:
    """A string column's values back to back (each line ends with its newline): the data buffer, not copied."""
    if isinstance(column, pa.ChunkedArray):
        return b"".join(bytes(_joined_bytes(chunk)) for chunk in column.chunks)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.large_string())
    if len(column) == 0:
        return b""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32 if pa.types.is_string(column.type) else np.int64)
    start, end = int(offsets[column.offset]), int(offsets[column.offset + len(column)])
    return memoryview(column.buffers()[2])[start:end]


class SnapshotEngine:
    """One DuckDB connection for one build (or one quality check); close it, or use it as a context manager."""

    def __init__(self, settings: EngineSettings | None = None) -> None:
        settings = settings or EngineSettings()
        self.con = duckdb.connect(config={"memory_limit": settings.memory_limit, "threads": settings.threads})
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET preserve_insertion_order = false")  # every output here has its own ORDER BY
        # Never the working directory (read-only in a function); in a function /tmp is memory too, so spilling
        # there only spares DuckDB an out-of-memory error, not the instance its memory.
        spill = settings.temp_directory or os.path.join(tempfile.gettempdir(), "stt-duckdb-spill")
        self.con.execute("SET temp_directory = $dir", {"dir": spill})
        self.con.create_function("stt_split_bucket", _udf_split_bucket, [sqltypes.VARCHAR], sqltypes.DOUBLE,
                                 type=func.ARROW)
        self.con.create_function("stt_sample_key", _udf_sample_key, [sqltypes.VARCHAR], sqltypes.BIGINT,
                                 type=func.ARROW)
        self.con.create_function("stt_has_letter", _udf_has_letter, [sqltypes.VARCHAR], sqltypes.BOOLEAN,
                                 type=func.ARROW)
        self._parts: PartsInfo | None = None
        self._sizes: dict[str, int] = dict.fromkeys(SPLITS, 0)

    def __enter__(self) -> SnapshotEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # -- reading the snapshot ------------------------------------------------------------------------------

    def load_parts(self, paths: Sequence[Path], names: Sequence[str] | None = None) -> None:
        """Check the parts' footers (SnapshotPartError names a bad one) and read from them from now on."""
        self._parts = check_parts(paths, names)

    def _source(self) -> tuple[str, dict[str, Any]]:
        if self._parts is None:
            raise SnapshotError("no snapshot parts loaded")
        text = sql.source(SNAPSHOT_TYPES, self._parts.present, len(self._parts.paths))
        return text, {"parts": [str(path) for path in self._parts.paths]}

    def _run(self, statement: str, params: Mapping[str, Any]) -> None:
        try:
            self.con.execute(statement, dict(params))
        except duckdb.Error as exc:  # DuckDB names the file it failed on
            raise SnapshotError(f"reading the snapshot failed: {exc}") from exc

    def select(self, request: BuildRequest) -> dict[str, int]:
        """Pick the request's rows into ``stt_rows``; the size of each split."""
        if self._parts is not None and not self._parts.paths:
            return self.load_rows({})
        source, params = self._source()
        edges = dict(split_edges(request.ratios))
        params |= {
            "min_error_score": request.min_error_score,
            "include_uncorrected": request.include_uncorrected,
            "max_samples": request.max_samples,
            "min_duration_s": request.min_duration_s,
            "max_duration_s": request.max_duration_s,
            "edge_train": edges["train"],
            "edge_val": edges["val"],
            "edge_test": edges["test"],
        }
        keys = sql.select_keys(source, request.balance_error_types, request.max_samples is not None,
                               durations=request.filters_duration)
        self._run(keys, {name: value for name, value in params.items() if f"${name}" in keys})
        outside = self.con.sql(sql.MISSING_SPLITS).fetchall()[0][0]
        if outside:
            raise SnapshotError(f"{outside} selected rows have a split_bucket outside [0, 1)")
        self._run(sql.select_rows(source), {"parts": params["parts"]})
        self.con.execute("DROP TABLE stt_keys")
        return self._count_splits()

    def load_rows(self, splits: Mapping[str, pa.Table]) -> dict[str, int]:
        """Take dataset rows built elsewhere as ``stt_rows``, for a quality check: each split's rows (ROW_SCHEMA,
        in file order) by the split whose file holds them, which a row's own ``split`` field may contradict."""
        tables = []
        for split in SPLITS:
            table = splits.get(split, ROW_SCHEMA.empty_table()).select(ROW_SCHEMA.names).cast(ROW_SCHEMA)
            table = table.rename_columns([*ROW_SCHEMA.names[:-1], "split_field"])
            tables.append(table.append_column("split", pa.array([split] * len(table), pa.string())))
        table = pa.concat_tables(tables)
        table = table.append_column("input_order", pa.array(np.arange(len(table), dtype=np.int64)))
        self.con.register("stt_input", table)
        self.con.execute(sql.ROWS_FROM_INPUT)
        self.con.unregister("stt_input")
        return self._count_splits()

    def _reader(self, query: str, batch_rows: int) -> contextlib.closing[pa.RecordBatchReader]:
        """The query's result in batches, closed on leaving (the connection takes no query while it is open)."""
        return contextlib.closing(self.con.sql(query).to_arrow_reader(batch_rows))

    @contextlib.contextmanager
    def insertion_order(self) -> Iterator[None]:
        """Within the block, a query without an ORDER BY returns a table's rows in their stored order."""
        self.con.execute("SET preserve_insertion_order = true")
        try:
            yield
        finally:
            self.con.execute("SET preserve_insertion_order = false")

    def count_splits(self) -> dict[str, int]:
        """The size of each split of ``stt_rows`` as loaded by another module (shared/snapshot/dataset_files.py)."""
        return self._count_splits()

    def _count_splits(self) -> dict[str, int]:
        counts = dict(self.con.sql("SELECT split, count(*) FROM stt_rows GROUP BY split").fetchall())
        unknown = set(counts) - set(SPLITS)
        if unknown:
            raise SnapshotError(f"rows in unknown splits {sorted(unknown)}")
        self._sizes = {split: int(counts.get(split, 0)) for split in SPLITS}
        return dict(self._sizes)

    # -- durations from the audio's headers -------------------------------------------------------------------

    def rows_without_duration(self) -> list[tuple[str, str, str]]:
        """(case_id, audio, split) of the selected rows whose duration is unknown, in dataset order."""
        rows = self.con.sql(sql.ROWS_WITHOUT_DURATION)
        return [(str(case_id), str(audio), str(split)) for case_id, audio, split in rows.fetchall()]

    def fill_durations(self, checks: Sequence[RowAudio], request: BuildRequest) -> int:
        """Set the durations the headers gave; with a duration filter, leave out the rows whose duration is
        still unknown (an unusable clip) or outside the range, renumbered. How many rows were left out."""
        found = [check for check in checks if check.duration_s is not None]
        if found:
            table = pa.table({"case_id": [c.case_id for c in found], "duration_s": [c.duration_s for c in found]},
                             schema=pa.schema([("case_id", pa.string()), ("duration_s", pa.float64())]))
            self.con.register("stt_headers", table)
            self.con.execute("UPDATE stt_rows SET duration_s = h.duration_s FROM stt_headers AS h "
                             "WHERE stt_rows.case_id = h.case_id")
            self.con.unregister("stt_headers")
        if not request.filters_duration:
            return 0
        before = sum(self._sizes.values())
        self.con.execute(sql.KEEP_DURATIONS, {"min_duration_s": request.min_duration_s,
                                              "max_duration_s": request.max_duration_s})
        return before - sum(self._count_splits().values())

    # -- writing ---------------------------------------------------------------------------------------------

    def write_splits(
        self, open_file: OpenFile, batch_rows: int = 25_000, parquet: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Stream each split's JSONL to ``open_file("<split>.jsonl")`` and, with ``parquet``, its Parquet copy to
        ``open_file("parquet/<split>.parquet")`` (every split, an empty one too, in order); each file's manifest
        entry (versions.file_entry). One pass over the rows in their stored (seq) order for all of it: the lines
        and the row columns come in the same batches, split by split."""
        files: dict[str, dict[str, Any]] = {}
        copies: dict[str, dict[str, Any]] = {}  # after the split files in the manifest, as metadata.json lists them
        # stt_rows is stored in seq order (select_rows sorts it): read in that order, the rows need no second
        # sort here, which held every line and column at once (a third of a 200k build's peak memory).
        with self.insertion_order(), self._reader(sql.dataset_lines(), batch_rows) as reader:
            batches = iter(reader)
            pending: pa.RecordBatch | None = None
            for number, split in enumerate(SPLITS):
                written = 0
                with contextlib.ExitStack() as files_of_split:
                    out = _HashingSink(files_of_split.enter_context(open_file(layout.split_file(split))))
                    copy = _ParquetCopy(files_of_split.enter_context(open_file(layout.parquet_copy(split)))) \
                        if parquet else None
                    while True:
                        if pending is None:
                            pending = next(batches, None)
                            if pending is None:
                                break
                        numbers = pending.column(0).to_numpy(zero_copy_only=False)
                        if numbers[0] != number:
                            break  # this batch starts a later split
                        ends = np.flatnonzero(numbers != number)
                        end = int(ends[0]) if ends.size else len(numbers)
                        out.write(_joined_bytes(pending.column(1).slice(0, end)))
                        if copy is not None:
                            copy.add(pending.slice(0, end))
                        written += end
                        pending = None if end == len(numbers) else pending.slice(end)
                    # Rows out of split order would otherwise end a split early and go unwritten, silently.
                    if written != self._sizes[split]:
                        raise SnapshotError(f"wrote {written} rows of split {split}, selected {self._sizes[split]}")
                    if copy is not None:
                        copies[layout.parquet_copy(split)] = copy.close(self._sizes[split])
                files[layout.split_file(split)] = out.entry(self._sizes[split])
        return files | copies

    # -- the quality report and the metadata -----------------------------------------------------------------

    def quality_report(self, thresholds: QualityThresholds | None = None) -> dict[str, Any]:
        """check_quality's report of ``stt_rows``, counted in SQL; only a few rows reach Python."""
        return report_from_facts(self.quality_facts(), thresholds)

    def quality_facts(self) -> QualityFacts:
        """What check_quality counts, over every row of ``stt_rows`` (read once: shared/snapshot/sql.py)."""
        self.con.execute(sql.QUALITY_ROWS)
        case_dups, candidates, pair_dups, key_splits = sql.QUALITY_DUPLICATES
        self.con.execute(case_dups)
        self.con.execute(candidates)
        self.con.execute(pair_dups if self.con.sql(sql.PAIR_CANDIDATES).fetchall()[0][0] else sql.NO_PAIR_DUPS)
        self.con.execute(key_splits)
        self.con.execute(sql.QUALITY_FLAGS)
        names = [
            "complete", "consistent", "valid", "unique", "completeness", "consistency", "validity",
            "case_repeats", "pair_repeats",
        ]
        counts = dict(zip(names, self.con.sql(sql.QUALITY_COUNTS).fetchall()[0], strict=True))
        picks = self.con.sql(sql.QUALITY_REPLAY, params={"cap": ISSUE_CAP + 1}).fetchall()
        leaks = self.con.sql(sql.QUALITY_LEAKS, params={"cap": ISSUE_CAP + 1}).fetchall()
        groups, leaked_groups, leaked_cases = self.con.sql(sql.QUALITY_GROUPS).fetchall()[0]
        for table in sql.QUALITY_TABLES:
            self.con.execute(f"DROP TABLE {table}")
        fields = self._rows_at([(split, int(pos)) for split, pos, *_ in picks])
        replay = []
        for split, pos, case_repeat, first_split, pair_repeat in picks:
            audio, text, case_id, original, speaker, corrected, score, split_field = fields[(split, int(pos))]
            row = {
                "audio": audio, "text": text, "case_id": case_id, "original_transcript": original,
                "speaker_id": speaker, "has_correction": corrected, "error_score": score, "split": split_field,
            }
            replay.append(FlaggedRow(split, int(pos), row, first_split if case_repeat else None, bool(pair_repeat)))
        return QualityFacts(
            split_sizes=dict(self._sizes),
            complete=counts["complete"],
            consistent=counts["consistent"],
            valid=counts["valid"],
            unique=counts["unique"],
            groups=groups,
            leaked_groups=leaked_groups,
            leaked_cases=leaked_cases,
            events={name: counts[name] for name in ("completeness", "consistency", "validity")}
            | {"uniqueness": counts["case_repeats"] + counts["pair_repeats"]},
            case_repeats=counts["case_repeats"],
            replay=replay,
            leaks=[Leak("group" if kind == 0 else "case_id", key, list(splits)) for kind, key, splits in leaks],
        )

    def _rows_at(self, places: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[Any, ...]]:
        """The quality fields of the rows of ``stt_rows`` at these (split, pos) places."""
        found: dict[tuple[str, int], tuple[Any, ...]] = {}
        for split in SPLITS:
            positions = sorted({pos for at, pos in places if at == split})
            if positions:
                for pos, *fields in self.con.execute(sql.ROWS_AT, {"split": split, "positions": positions}).fetchall():
                    found[(split, int(pos))] = tuple(fields)
        return found

    def metadata(self, dataset_id: str, request: BuildRequest, created_at: datetime, source: str) -> dict[str, Any]:
        """dataset_build.dataset_metadata of ``stt_rows``."""
        per_split = {row[0]: row[1:] for row in self.con.sql(sql.METADATA_SPLITS).fetchall()}
        types = dict(self.con.sql(sql.METADATA_TYPES).fetchall())
        scores = self.con.sql(sql.METADATA_SCORES).fetchnumpy()["error_score"]
        return dataset_metadata_from_figures(
            dataset_id, request, created_at, source,
            split_sizes=dict(self._sizes),
            corrections=sum(int(figures[1]) for figures in per_split.values()),
            groups_per_split={split: int(per_split.get(split, (0, 0, 0))[2]) for split in SPLITS},
            type_counts={str(name): int(n) for name, n in types.items()},
            scores=np.asarray(scores, dtype=np.float64),
        )

    def compact_to(self, target: Path) -> None:
        """The latest row of every case of the loaded parts, every snapshot column, into one Parquet file."""
        source, params = self._source()
        self._run(sql.compacted(source, SNAPSHOT_SCHEMA.names, str(target)), params)

    # -- the benchmark's floor -------------------------------------------------------------------------------

    def floor_copy(self, request: BuildRequest, folder: Path) -> None:
        """DuckDB's bare read, latest row, filter, split and JSON write of the same parts (no checks, no hashes)."""
        source, params = self._source()
        edges = dict(split_edges(request.ratios))
        params |= {"min_error_score": request.min_error_score, "edge_train": edges["train"],
                   "edge_val": edges["val"], "edge_test": edges["test"]}
        self._run(sql.floor_copy(source, str(folder)), params)


def build_from_snapshot(
    paths: Sequence[Path], request: BuildRequest, open_file: OpenFile, *, dataset_id: str, created_at: datetime,
    source: str, settings: EngineSettings | None = None, names: Sequence[str] | None = None,
    thresholds: QualityThresholds | None = None, read_audio: ReadAudio | None = None,
) -> SnapshotBuild:
    """One build over local parts: split files and their Parquet copies streamed to ``open_file`` (not called
    when nothing is selected), then the quality report and the metadata; SnapshotPartError / SnapshotError on
    a bad snapshot.

    When the request reads audio (a duration filter or an augmentation) and ``read_audio`` is given, the
    headers of the selected rows without a known duration are read through it before anything is written:
    their durations are filled in, a duration filter leaves out what is outside it or unusable, and the
    quality report's ``audio`` section counts and names the unusable clips (metadata's ``audio`` has the
    sampling rate). Without those request fields no audio is read: the hot path stays SQL only."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        seconds[name] = now - started
        started = now

    with SnapshotEngine(settings) as engine:
        engine.load_parts(paths, names)
        step("check_parts")
        sizes = engine.select(request)
        step("select")
        audio: dict[str, Any] | None = None
        if read_audio is not None and request.reads_audio and any(sizes.values()):
            checks = list(read_audio(engine.rows_without_duration()))
            excluded = engine.fill_durations(checks, request)
            audio = audio_report(checks, excluded, ISSUE_CAP)
            sizes = engine.count_splits()
            step("read_audio")
        if not any(sizes.values()):
            return SnapshotBuild(sizes, {}, {}, {}, seconds)
        files = engine.write_splits(open_file)
        step("write_splits")
        report = engine.quality_report(thresholds)
        step("quality")
        metadata = engine.metadata(dataset_id, request, created_at, source)
        step("metadata")
    if audio is not None:  # additive: the section and the rate sit beside what every build reports
        report = {**report, "audio": audio}
        metadata = {**metadata, "audio": {"sampling_rate": audio["sampling_rate"],
                                          "sample_rates": audio["sample_rates"]}}
    return SnapshotBuild(sizes, files, report, metadata, seconds)


def compact(
    store: PartStore, now: datetime | None = None, settings: EngineSettings | None = None,
    prefix: str = layout.SNAPSHOT_PARTS,
) -> str | None:
    """Replace the parts under ``prefix`` by one part of the latest row of every case; its name (None with
    fewer than two parts).

    Safe order: the compacted part is written first, then the parts it replaces are deleted, oldest first.
    A reader in between sees a case twice with the same ``updated_at`` and content, which latest-wins makes
    harmless; deleting oldest first keeps that true even where two parts tie on ``updated_at`` (the winning
    part stays until every part it beat is gone). Parts written meanwhile are not touched.
    """
    with tempfile.TemporaryDirectory(prefix="stt-compact-") as tmp:
        paths, names = fetch_parts(store, Path(tmp) / "in", prefix)
        if len(names) < 2:
            return None
        target = Path(tmp) / "compacted.parquet"
        with SnapshotEngine(settings) as engine:
            engine.load_parts(paths, names)
            engine.compact_to(target)
        name = part_name(now or datetime.now(UTC), prefix)
        store.put(name, target.read_bytes())
    for old in names:
        store.delete(old)
    return name


def finished_metadata(build: SnapshotBuild, gcs_path: str, data_files: Mapping[str, str]) -> dict[str, Any]:
    """The metadata.json write_dataset writes, from a snapshot build and where its files went. A split that came
    out empty or far from its ratio is named with the reason in `split_warnings` and in the quality report's
    warnings (shared/domain/split_balance.py)."""
    warnings = metadata_split_warnings(build.metadata)
    return {
        **build.metadata,
        "gcs_path": gcs_path,
        "data_files": dict(data_files),
        "files": {name: dict(entry) for name, entry in build.files.items()},
        "checksum": manifest_checksum(build.files),
        "split_warnings": warnings,
        "quality_report": with_split_warnings(build.quality_report, warnings),
    }


__all__ = [
    "EngineSettings",
    "OpenFile",
    "SnapshotBuild",
    "SnapshotEngine",
    "SnapshotError",
    "SnapshotPartError",
    "build_from_snapshot",
    "compact",
    "finished_metadata",
]
