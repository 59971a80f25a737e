"""The DuckDB build over snapshot parts equals today's build: the same bytes, quality report and metadata.

"Today's build" is shared/domain/dataset_build.build_splits over the cases, encoded as the build service
encodes it (encode_rows), checked by dataset_quality.check_quality and described by dataset_metadata.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.domain import bucket_layout as layout
from shared.domain.case_snapshot import REQUIRED_COLUMNS, cases_to_table
from shared.domain.dataset_build import SPLITS, build_splits, dataset_metadata, select_cases, to_row
from shared.domain.dataset_quality import check_quality
from shared.domain.dataset_request import BuildRequest
from shared.errors import SnapshotPartError
from shared.snapshot.engine import (
    ROW_SCHEMA,
    EngineSettings,
    SnapshotBuild,
    SnapshotEngine,
    SnapshotError,
    build_from_snapshot,
    compact,
    finished_metadata,
)
from shared.snapshot.parts import (
    LocalPartStore,
    fetch_parts,
    part_names,
    table_bytes,
    write_cases,
    write_part,
)
from tests.unit.fake_dataset_bucket import FakeBucket
from tests.unit.reference_build import encode_rows, write_dataset
from tests.unit.snapshot_cases import START, random_cases, requests

CREATED = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
SETTINGS = EngineSettings(memory_limit="256MB", threads=2)


class Captured:
    """open_file for tests: each file's bytes in memory by name, each split file's by split, and how often a
    file was opened."""

    def __init__(self) -> None:
        self.named: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        self.opened = 0

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[io.BytesIO]:
        self.opened += 1
        buffer = io.BytesIO()
        yield buffer
        self.named[name] = buffer.getvalue()
        if name.endswith(".jsonl"):
            self.files[name.removesuffix(".jsonl")] = buffer.getvalue()


def build(paths: Sequence[Path], names: Sequence[str], request: BuildRequest) -> tuple[Captured, SnapshotBuild]:
    captured = Captured()
    result = build_from_snapshot(
        paths, request, captured, dataset_id="ds-1", created_at=CREATED, source="test", settings=SETTINGS,
        names=names,
    )
    return captured, result


def todays_files(cases: Sequence[Mapping[str, Any]], request: BuildRequest) -> dict[str, bytes]:
    splits = build_splits(cases, request)
    return {split: encode_rows(splits[split]) for split in SPLITS}


def snapshot_of(tmp_path: Path, cases: Sequence[Mapping[str, Any]], rows_per_part: int) -> tuple[list[Path], list[str]]:
    store = LocalPartStore(tmp_path / "bucket")
    write_cases(store, cases, rows_per_part=rows_per_part, now=START)
    return fetch_parts(store, tmp_path / "fetched")


def assert_same_build(
    cases: Sequence[Mapping[str, Any]], request: BuildRequest, paths: Sequence[Path], names: Sequence[str]
) -> SnapshotBuild:
    """Bytes of every split, quality report and metadata equal today's, for one request."""
    captured, result = build(paths, names, request)
    expected = build_splits(cases, request)
    if not any(expected[split] for split in SPLITS):
        assert result.total == 0 and captured.opened == 0
        return result
    for split in SPLITS:
        assert captured.files[split] == encode_rows(expected[split]), (split, request)
        assert result.files[f"{split}.jsonl"]["rows"] == len(expected[split])
    assert result.quality_report == check_quality(expected), request
    expected_metadata = dataset_metadata("ds-1", request, expected, CREATED, "test")
    assert orjson.dumps(result.metadata) == orjson.dumps(expected_metadata), request
    return result


# -- equality with today's build ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rows_report_and_metadata_equal_todays_build_on_random_cases(seed: int, tmp_path: Path) -> None:
    cases = random_cases(seed, 500)
    paths, names = snapshot_of(tmp_path, cases, rows_per_part=180)
    assert len(paths) == 3
    built = 0
    for request in requests(seed + 100, 14):
        built += assert_same_build(cases, request, paths, names).total
    assert built > 500  # the requests select something, not only empty datasets


def test_default_request_over_plain_cases_is_byte_identical(tmp_path: Path) -> None:
    cases = [
        {
            "case_id": f"case-{n:04d}",
            "audio_path": f"gs://stt-audio/{n}.wav",
            "original_transcript": f"turn left at light {n}",
            "corrected_transcript": f"turn right at light {n}" if n % 5 else None,
            "error_types": ["substitution"] if n % 3 else ["all_caps", "substitution"],
            "error_score": (n % 100) / 100,
            "speaker_id": f"spk-{n % 17}",
            "model_version": "v1",
            "created_at": START,
            "updated_at": START,
        }
        for n in range(600)
    ]
    paths, names = snapshot_of(tmp_path, cases, rows_per_part=250)
    result = assert_same_build(cases, BuildRequest(), paths, names)
    assert result.total > 0


def test_the_files_entries_are_todays_manifest_and_metadata_json(tmp_path: Path) -> None:
    cases = random_cases(8, 300)
    paths, names = snapshot_of(tmp_path, cases, rows_per_part=100)
    request = BuildRequest(min_error_score=0.0, include_uncorrected=True, balance_error_types=False)
    today = FakeBucket()
    expected = write_dataset("ds-1", request, build_splits(cases, request), "test", today, CREATED)
    ours = FakeBucket()
    captured, result = build(paths, names, request)
    prefix = "finetuning_datasets/ds-1/"
    data_files = {split: ours.put(f"{prefix}{split}.jsonl", captured.files[split]) for split in SPLITS}
    metadata = finished_metadata(result, ours.uri(prefix), data_files)
    assert orjson.dumps(metadata, option=orjson.OPT_INDENT_2) == today.get(prefix + "metadata.json")
    assert metadata == expected


# -- latest row wins ---------------------------------------------------------------------------------------------


def versions_of(cases: Sequence[Mapping[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """An older version of each case: other text, other score, other speaker, an earlier updated_at."""
    older = []
    for case in cases:
        old = dict(case)
        old["corrected_transcript"] = rng.choice([None, "an older correction"])
        old["error_score"] = rng.random()
        old["speaker_id"] = f"old-{rng.randrange(5)}"
        old["error_types"] = ["older"]
        old["updated_at"] = case["updated_at"] - timedelta(hours=1)
        older.append(old)
    return older


def test_the_latest_updated_at_wins_whatever_part_holds_it(tmp_path: Path) -> None:
    rng = random.Random(4)
    cases = random_cases(4, 300)
    older = versions_of(cases, rng)
    store = LocalPartStore(tmp_path / "bucket")
    # The newest versions in the first part, the older ones in later parts, some cases in both halves.
    write_cases(store, cases[:200], now=START)
    write_cases(store, older, rows_per_part=120, now=START + timedelta(days=1))
    write_cases(store, cases[200:], now=START + timedelta(days=2))
    paths, names = fetch_parts(store, tmp_path / "fetched")
    assert len(paths) == 5
    for request in requests(5, 8):
        assert_same_build(cases, request, paths, names)


def test_on_equal_updated_at_the_later_part_wins(tmp_path: Path) -> None:
    cases = random_cases(6, 100)
    rewritten = [{**case, "original_transcript": "rewritten", "corrected_transcript": "again"} for case in cases]
    store = LocalPartStore(tmp_path / "bucket")
    write_cases(store, cases, now=START)
    write_cases(store, rewritten, now=START + timedelta(seconds=1))
    paths, names = fetch_parts(store, tmp_path / "fetched")
    request = BuildRequest(min_error_score=0.0, balance_error_types=False)
    assert_same_build(rewritten, request, paths, names)


# -- parts of older versions, corrupt parts ------------------------------------------------------------------


def test_parts_without_optional_columns_read_as_absent_values(tmp_path: Path) -> None:
    cases = random_cases(9, 400)
    old, new = cases[:250], cases[250:]
    store = LocalPartStore(tmp_path / "bucket")
    required_only = cases_to_table(old).select(list(REQUIRED_COLUMNS))
    store.put(f"{layout.SNAPSHOT_PARTS}part-20260101T000000000000Z-old.parquet", table_bytes(required_only))
    some_optional = cases_to_table(new).drop_columns(["split_bucket", "language", "wer"])
    store.put(f"{layout.SNAPSHOT_PARTS}part-20260102T000000000000Z-mid.parquet", table_bytes(some_optional))
    paths, names = fetch_parts(store, tmp_path / "fetched")
    optional = ("language", "duration_s", "wer", "cer", "normalized_wer", "normalized_cer", "corrected")
    as_read = [{k: v for k, v in case.items() if k not in optional} for case in old]
    as_read += [{k: v for k, v in case.items() if k not in ("language", "wer")} for case in new]
    for request in requests(10, 10):
        assert_same_build(as_read, request, paths, names)


def test_a_hand_made_part_with_null_ids_and_flags_builds_without_them(tmp_path: Path) -> None:
    """Rows without a case_id are not cases; a null has_correction reads as no correction (the writer never
    writes either)."""
    cases = random_cases(17, 60)
    table = cases_to_table(cases)
    case_ids = [None if n % 10 == 0 else value for n, value in enumerate(table.column("case_id").to_pylist())]
    flags = [None if n % 7 == 0 else value for n, value in enumerate(table.column("has_correction").to_pylist())]
    schema = table.schema.set(0, pa.field("case_id", pa.string()))
    table = table.set_column(0, "case_id", pa.array(case_ids, pa.string())).cast(schema)
    index = table.schema.get_field_index("has_correction")
    table = table.set_column(index, "has_correction", pa.array(flags, pa.bool_()))
    store = LocalPartStore(tmp_path / "bucket")
    store.put(f"{layout.SNAPSHOT_PARTS}part-20260101T000000000000Z-hand.parquet", table_bytes(table))
    paths, names = fetch_parts(store, tmp_path / "fetched")
    expected_cases = [
        {**case, "corrected_transcript": None} if n % 7 == 0 else case
        for n, case in enumerate(cases)
        if n % 10 != 0
    ]
    request = BuildRequest(min_error_score=0.0, include_uncorrected=True, balance_error_types=False)
    captured, result = build(paths, names, request)
    expected = build_splits(expected_cases, request)
    assert result.total == len(expected_cases)
    texts = {row["case_id"]: row["text"] for split in SPLITS for row in expected[split]}
    for split in SPLITS:
        for line in captured.files[split].splitlines():
            row = orjson.loads(line)
            assert row["text"] == texts[row["case_id"]]


def test_a_corrupt_part_is_named(tmp_path: Path) -> None:
    store = LocalPartStore(tmp_path / "bucket")
    write_cases(store, random_cases(1, 20), now=START)
    good = store.get(part_names(store)[0])
    assert good is not None
    store.put(f"{layout.SNAPSHOT_PARTS}part-20990101T000000000000Z-garbage.parquet", b"not parquet at all")
    paths, names = fetch_parts(store, tmp_path / "fetched")
    with pytest.raises(SnapshotPartError, match=r"part-20990101T000000000000Z-garbage\.parquet.*not a readable"):
        build(paths, names, BuildRequest())
    store.delete(names[-1])
    store.put(f"{layout.SNAPSHOT_PARTS}part-20990102T000000000000Z-cut.parquet", good[: len(good) // 2])
    paths, names = fetch_parts(store, tmp_path / "fetched2")
    with pytest.raises(SnapshotPartError, match=r"part-20990102T000000000000Z-cut\.parquet"):
        build(paths, names, BuildRequest())


def test_a_part_with_an_incompatible_column_type_is_named(tmp_path: Path) -> None:
    store = LocalPartStore(tmp_path / "bucket")
    write_cases(store, random_cases(1, 20), now=START)
    table = cases_to_table(random_cases(2, 20))
    table = table.set_column(
        table.schema.get_field_index("error_score"), "error_score", pa.array(["0.5"] * 20, pa.string())
    )
    store.put(f"{layout.SNAPSHOT_PARTS}part-20990101T000000000000Z-typed.parquet", table_bytes(table))
    paths, names = fetch_parts(store, tmp_path / "fetched")
    with pytest.raises(SnapshotPartError) as caught:
        build(paths, names, BuildRequest())
    assert caught.value.part.endswith("part-20990101T000000000000Z-typed.parquet")
    assert "column 'error_score' is string, expected double" in str(caught.value)


def test_no_parts_and_no_eligible_cases_build_nothing(tmp_path: Path) -> None:
    captured, result = build([], [], BuildRequest())
    assert result.total == 0 and captured.opened == 0
    paths, names = snapshot_of(tmp_path, [{"case_id": "a", "error_score": 0.1}], rows_per_part=10)
    captured, result = build(paths, names, BuildRequest(min_error_score=0.5))
    assert result.total == 0 and captured.opened == 0


# -- the quality report over any rows --------------------------------------------------------------------------


def random_splits(seed: int, count: int) -> dict[str, list[dict[str, Any]]]:
    """Rows as a build might not make them: any split, repeated case_ids and (audio, text), unsorted."""
    rng = random.Random(seed)
    rows = [to_row(case, rng.choice(SPLITS)) for case in random_cases(seed, count)]
    rows += [dict(rng.choice(rows)) for _ in range(count // 10)]  # repeated case_ids and pairs
    for row in rng.sample(rows, count // 20):
        row["split"] = rng.choice(SPLITS)  # a row sitting in a file of another split
    rng.shuffle(rows)
    splits: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    for row in rows:
        splits[rng.choice(SPLITS) if rng.random() < 0.7 else row["split"]].append(row)
    return splits


def engine_report(splits: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    tables = {split: pa.Table.from_pylist(list(rows), schema=ROW_SCHEMA) for split, rows in splits.items()}
    with SnapshotEngine(SETTINGS) as engine:
        sizes = engine.load_rows(tables)
        assert sizes == {split: len(splits[split]) for split in SPLITS}
        return engine.quality_report()


@pytest.mark.parametrize(("seed", "count"), [(1, 30), (2, 400), (3, 1500), (4, 5)])
def test_quality_report_equals_check_quality_on_random_rows(seed: int, count: int) -> None:
    splits = random_splits(seed, count)
    assert engine_report(splits) == check_quality(splits)


def test_quality_report_of_edge_datasets() -> None:
    empty: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLITS}
    assert engine_report(empty) == check_quality(empty)
    one = {"train": [to_row({"case_id": "a", "audio_path": "a.wav", "original_transcript": "hi"}, "train")],
           "val": [], "test": []}
    assert engine_report(one) == check_quality(one)
    # Every row fails every rule, far past the cap of each category.
    bad_row = to_row({"case_id": "", "audio_path": "", "original_transcript": "", "error_score": 3.0}, "val")
    bad = {"train": [dict(bad_row) for _ in range(60)], "val": [dict(bad_row)], "test": []}
    report = engine_report(bad)
    assert report == check_quality(bad)
    assert any(entry["message"].startswith("... and") for entry in report["quality_metrics"]["issues"])


# -- compaction --------------------------------------------------------------------------------------------------


class RecordingBucket(FakeBucket):
    """A FakeBucket that logs puts and deletes in order."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = []

    def put(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        self.log.append(("put", name))
        return super().put(name, data, content_type)

    def delete(self, name: str) -> None:
        self.log.append(("delete", name))
        super().delete(name)


def test_compaction_keeps_the_build_and_writes_before_it_deletes(tmp_path: Path) -> None:
    rng = random.Random(11)
    cases = random_cases(11, 400)
    bucket = RecordingBucket()
    write_cases(bucket, versions_of(cases, rng), rows_per_part=150, now=START)
    write_cases(bucket, cases, rows_per_part=90, now=START + timedelta(days=1))
    before = part_names(bucket)
    assert len(before) == 8
    bucket.log.clear()
    name = compact(bucket, now=START + timedelta(days=2), settings=SETTINGS)
    assert name is not None and part_names(bucket) == [name]
    assert bucket.log[0] == ("put", name)
    assert bucket.log[1:] == [("delete", old) for old in before]  # oldest first, after the put
    table = pq.read_table(io.BytesIO(bucket.get(name) or b""))
    assert table.num_rows == len(cases)
    paths, names = fetch_parts(bucket, tmp_path / "after")
    for request in requests(12, 6):
        assert_same_build(cases, request, paths, names)


def test_a_reader_between_the_compacted_write_and_the_deletes_sees_the_same_cases(tmp_path: Path) -> None:
    cases = random_cases(13, 200)
    store = LocalPartStore(tmp_path / "bucket")
    write_cases(store, versions_of(cases, random.Random(13)), now=START)
    write_cases(store, cases, rows_per_part=70, now=START + timedelta(days=1))
    paths, names = fetch_parts(store, tmp_path / "fetched")
    compacted = tmp_path / "compacted.parquet"
    with SnapshotEngine(SETTINGS) as engine:  # compaction's first step only: the new part, nothing deleted
        engine.load_parts(paths, names)
        engine.compact_to(compacted)
    store.put(f"{layout.SNAPSHOT_PARTS}part-20261201T000000000000Z-compacted.parquet", compacted.read_bytes())
    paths, names = fetch_parts(store, tmp_path / "both")
    assert len(names) == 5
    for request in requests(13, 6):
        assert_same_build(cases, request, paths, names)


def test_compaction_of_parts_missing_columns_fills_them(tmp_path: Path) -> None:
    cases = random_cases(14, 120)
    store = LocalPartStore(tmp_path / "bucket")
    old = cases_to_table(cases[:60]).select(list(REQUIRED_COLUMNS))
    store.put(f"{layout.SNAPSHOT_PARTS}part-a.parquet", table_bytes(old))
    write_part(store, cases_to_table(cases[60:]), now=START)
    name = compact(store, now=START + timedelta(days=1), settings=SETTINGS)
    assert name is not None
    table = pq.read_table(store.path(name))
    assert table.column("split_bucket").null_count == 0 and table.column("sample_key").null_count == 0
    assert compact(store, settings=SETTINGS) is None  # one part: nothing to do


# -- parts through a bucket-like store ---------------------------------------------------------------------------


def test_fetch_parts_copies_a_buckets_parts_in_name_order(tmp_path: Path) -> None:
    bucket = FakeBucket()
    names = write_cases(bucket, random_cases(15, 50), rows_per_part=20, now=START)
    bucket.put("learning_data/cases/notes.txt", b"not a part")
    paths, fetched = fetch_parts(bucket, tmp_path)
    assert fetched == sorted(names) and [p.read_bytes() for p in paths] == [bucket.get(n) for n in fetched]
    assert [p.name for p in paths] == sorted(p.name for p in paths)


def test_fetch_parts_lists_again_when_a_part_vanishes(tmp_path: Path) -> None:
    class CompactingMidRead(FakeBucket):
        def __init__(self) -> None:
            super().__init__()
            self.reads = 0

        def get(self, name: str, generation: int | None = None) -> bytes | None:
            self.reads += 1
            if self.reads == 2:  # a compaction lands while the first listing is being read
                compact(self, now=START + timedelta(days=1), settings=SETTINGS)
            return super().get(name, generation)

    bucket = CompactingMidRead()
    write_cases(bucket, random_cases(16, 60), rows_per_part=20, now=START)
    paths, names = fetch_parts(bucket, tmp_path)
    assert len(names) == 1 and names == part_names(bucket)
    assert [path.read_bytes() for path in paths] == [bucket.get(names[0])]


def test_engine_settings_from_the_environment() -> None:
    env = {"STT_SNAPSHOT_MEMORY_LIMIT": "512MB", "STT_SNAPSHOT_THREADS": "1", "STT_SNAPSHOT_TEMP_DIR": "/tmp/x"}
    assert EngineSettings.from_env(env) == EngineSettings("512MB", 1, "/tmp/x")
    assert EngineSettings.from_env({}) == EngineSettings()


def test_a_local_store_keeps_names_inside_its_folder(tmp_path: Path) -> None:
    store = LocalPartStore(tmp_path)
    with pytest.raises(ValueError, match="leaves"):
        store.put("../outside.parquet", b"x")
    store.put("learning_data/cases/part-1.parquet", b"x")
    assert store.names("learning_data/") == ["learning_data/cases/part-1.parquet"]
    assert todays_files([], BuildRequest()) == {split: b"" for split in SPLITS}


def test_each_parquet_copy_holds_its_split_files_rows_in_order(tmp_path: Path) -> None:
    cases = random_cases(11, 400)
    paths, names = snapshot_of(tmp_path, cases, rows_per_part=150)
    captured, result = build(paths, names, BuildRequest(min_error_score=0.0, include_uncorrected=True))
    assert result.total > 300
    for split in SPLITS:
        copy = pq.read_table(io.BytesIO(captured.named[f"parquet/{split}.parquet"]))
        assert copy.schema == ROW_SCHEMA
        assert copy.to_pylist() == [orjson.loads(line) for line in captured.files[split].splitlines()], split
        entry = result.files[f"parquet/{split}.parquet"]
        assert entry["rows"] == copy.num_rows == result.split_sizes[split]
        assert entry["sha256"] == hashlib.sha256(captured.named[f"parquet/{split}.parquet"]).hexdigest()


@pytest.mark.parametrize("seed", [21, 22])
def test_balancing_equals_the_reference_for_many_budgets(seed: int, tmp_path: Path) -> None:
    """Water-filling, rarest types and the picks past the quota, on multi-label cases, as the domain rule."""
    rng = random.Random(seed)
    types = ["casing", "deletion", "numerals", "substitution", "truncation", "unknown"]
    cases = random_cases(seed, 400)
    for case in cases:
        drawn = rng.choices(types[:5], weights=[1, 3, 1, 20, 2], k=rng.choice([0, 1, 1, 2, 3]))
        case["error_types"] = sorted(set(drawn))
    paths, names = snapshot_of(tmp_path, cases, rows_per_part=150)
    everything = BuildRequest(min_error_score=0.0, include_uncorrected=True, balance_error_types=False)
    eligible = len(select_cases(cases, everything))
    for max_samples in (None, 1, 2, 5, 17, 60, 200, 1000):
        request = BuildRequest(min_error_score=0.0, include_uncorrected=True, balance_error_types=True,
                               max_samples=max_samples)
        result = assert_same_build(cases, request, paths, names)
        if max_samples is not None:
            assert result.total == min(max_samples, eligible)  # balancing never leaves the budget unspent


def test_parquet_copies_are_cut_in_whole_row_groups_whatever_the_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.snapshot.engine.PARQUET_ROW_GROUP", 7)
    cases = random_cases(31, 200)
    paths, names = snapshot_of(tmp_path, cases, rows_per_part=90)
    request = BuildRequest(min_error_score=0.0, include_uncorrected=True, balance_error_types=False)
    copies = []
    for batch_rows in (5, 13):
        captured = Captured()
        with SnapshotEngine(SETTINGS) as engine:
            engine.load_parts(paths, names)
            engine.select(request)
            files = engine.write_splits(captured, batch_rows=batch_rows)
        copies.append({name: data for name, data in captured.named.items() if name.endswith(".parquet")})
        for split in SPLITS:
            data = captured.named[f"parquet/{split}.parquet"]
            parquet = pq.ParquetFile(io.BytesIO(data))
            sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
            assert all(size == 7 for size in sizes[:-1]) and 0 < sizes[-1] <= 7 if sizes else True, sizes
            assert parquet.read().to_pylist() == [orjson.loads(line) for line in captured.files[split].splitlines()]
            assert files[f"parquet/{split}.parquet"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert copies[0] == copies[1]  # the same rows, the same bytes, however DuckDB cut its batches


def _grown_rows(engine: SnapshotEngine, copies: int, order: str) -> None:
    """Replace stt_rows by ``copies`` numbered copies of each row, stored in ``order`` (an ORDER BY clause)."""
    engine.con.execute(f"""
        CREATE OR REPLACE TEMP TABLE stt_rows AS
        SELECT * REPLACE (case_id || '-' || lpad(CAST(i AS VARCHAR), 6, '0') AS case_id,
                          row_number() OVER (ORDER BY seq, i) AS seq,
                          row_number() OVER (PARTITION BY split ORDER BY seq, i) - 1 AS pos)
        FROM stt_rows, range({copies}) AS copies(i)
        ORDER BY {order}
    """)  # nosec B608
    engine.count_splits()


def test_split_files_keep_dataset_order_over_many_row_groups_and_threads(tmp_path: Path) -> None:
    # 300k rows span several of DuckDB's row groups (122,880 rows), which two threads read in parallel: the
    # split files must still come out in seq order, every row once, without a sort of their own.
    paths, names = snapshot_of(tmp_path, random_cases(5, 300), rows_per_part=300)
    captured = Captured()
    with SnapshotEngine(SETTINGS) as engine:
        engine.load_parts(paths, names)
        engine.select(BuildRequest(min_error_score=0.0, include_uncorrected=True, balance_error_types=False))
        _grown_rows(engine, 1_000, "seq")
        expected = {split: [row[0] for row in engine.con.sql(
            "SELECT case_id FROM stt_rows WHERE split = $split ORDER BY seq", params={"split": split}).fetchall()]
            for split in SPLITS}
        engine.write_splits(captured, parquet=False)
    assert sum(map(len, expected.values())) > 250_000
    for split in SPLITS:
        assert [orjson.loads(line)["case_id"] for line in captured.files[split].splitlines()] == expected[split]


def test_rows_stored_out_of_dataset_order_are_refused_not_dropped(tmp_path: Path) -> None:
    paths, names = snapshot_of(tmp_path, random_cases(6, 120), rows_per_part=120)
    with SnapshotEngine(SETTINGS) as engine:
        engine.load_parts(paths, names)
        engine.select(BuildRequest(min_error_score=0.0, include_uncorrected=True, balance_error_types=False))
        _grown_rows(engine, 1, "seq DESC")  # the test split's rows first
        with pytest.raises(SnapshotError, match="rows of split train"):
            engine.write_splits(Captured(), parquet=False)
