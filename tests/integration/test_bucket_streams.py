"""The bucket adapter's streams on fake-gcs-server, and the case store's tail on the Firestore emulator."""

from __future__ import annotations

import io
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.cloud import storage

from shared.adapters.gcs import READ_CHUNK, BucketStore
from shared.bootstrap import adapters
from shared.config import Settings
from shared.errors import ObjectGone
from shared.services.bulk_import import run_import
from stack.local_stack import StackInfo


@pytest.fixture
def bucket(stack: StackInfo, test_settings: Settings, namespace: str) -> BucketStore:
    settings = replace(test_settings, bucket=f"{namespace}-streams")
    storage.Client(project=settings.project).create_bucket(settings.bucket)
    return BucketStore(settings)


def test_a_streamed_object_lands_whole_on_a_clean_end_and_not_at_all_on_an_error(bucket: BucketStore) -> None:
    big = bytes(range(256)) * (READ_CHUNK // 256 + 1000)  # more than one upload chunk
    with bucket.writer("streams/ok.bin") as stream:
        for start in range(0, len(big), 1_000_000):
            stream.write(big[start:start + 1_000_000])
    assert bucket.get("streams/ok.bin") == big

    with pytest.raises(RuntimeError), bucket.writer("streams/cancelled.bin") as stream:
        stream.write(big)
        raise RuntimeError("the build failed midway")
    assert bucket.get("streams/cancelled.bin") is None


def test_get_upto_fetches_a_small_object_whole_and_cuts_a_larger_one(bucket: BucketStore) -> None:
    data = bytes(range(256)) * 40
    bucket.put("streams/clip.bin", data)
    assert bucket.get_upto("streams/clip.bin", len(data)) == data
    assert bucket.get_upto("streams/clip.bin", 10 * len(data)) == data
    assert bucket.get_upto("streams/clip.bin", 100) == data[:101]  # one byte more than asked: it was cut
    assert bucket.get_upto("streams/none.bin", 100) is None
    bucket.put("streams/empty.bin", b"")
    assert bucket.get_upto("streams/empty.bin", 100) == b""


def test_a_reader_seeks_so_pyarrow_reads_parquet_from_the_bucket(bucket: BucketStore) -> None:
    sink = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(10_000))}), sink, row_group_size=1_000)
    bucket.put("streams/t.parquet", sink.getvalue())
    with bucket.reader("streams/t.parquet") as stream:
        parquet = pq.ParquetFile(stream)
        assert parquet.num_row_groups == 10
        assert parquet.read_row_group(7).column("n").to_pylist() == list(range(7_000, 8_000))
    with pytest.raises(ObjectGone), bucket.reader("streams/missing.parquet"):
        pass


def test_an_append_by_compose_lands_only_on_the_generation_it_was_made_for(bucket: BucketStore) -> None:
    """What the learning_data/ exports rely on: compose under a generation precondition, on fake-gcs-server."""
    assert bucket.generation("streams/log.jsonl") == 0
    bucket.put("streams/a.jsonl", b"a\n")
    bucket.put("streams/b.jsonl", b"b\n")
    first = bucket.compose_if_generation(["streams/a.jsonl"], "streams/log.jsonl", 0, "application/x-ndjson")
    assert first is not None and first == bucket.generation("streams/log.jsonl")
    assert bucket.compose_if_generation(["streams/a.jsonl"], "streams/log.jsonl", 0) is None  # exists already
    second = bucket.compose_if_generation(["streams/log.jsonl", "streams/b.jsonl"], "streams/log.jsonl", first)
    assert second is not None and second != first
    assert bucket.get("streams/log.jsonl") == b"a\nb\n"
    assert bucket.compose_if_generation(["streams/log.jsonl", "streams/b.jsonl"], "streams/log.jsonl", first) is None
    assert bucket.get("streams/log.jsonl") == b"a\nb\n"  # the stale append landed nothing


def test_get_cases_reads_the_cases_asked_for_in_order(stack: StackInfo, test_settings: Settings) -> None:
    from shared.services.ingestion import store_failure_fields

    store = adapters(test_settings).cases
    ids = [store_failure_fields({"audio_path": f"gs://stt-audio/get/{i}.wav", "original_transcript": f"GET {i}"},
                                store) for i in range(7)]
    wanted = [ids[5], "no-such-case", ids[0], ids[3]]
    assert [case["case_id"] for case in store.get_cases(wanted)] == [ids[5], ids[0], ids[3]]


def test_a_parquet_import_through_the_real_adapters(bucket: BucketStore, test_settings: Settings) -> None:
    store = adapters(test_settings).cases
    rows = [{"audio_path": f"gs://stt-audio/pq/{i}.wav", "original_transcript": f"ROW {i}"} for i in range(50)]
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([*rows, {"audio_path": "nope", "original_transcript": "x"}]), sink)
    bucket.put("imports/history.parquet", sink.getvalue())
    generation = bucket.bucket.get_blob("imports/history.parquet").generation  # type: ignore[union-attr]

    result = run_import("imports/history.parquet", generation, store, bucket)

    assert (result["lines"], result["accepted"], result["rejected"]) == (51, 50, 1)
    assert result["rejects"][0]["line"] == 51
    assert store.get_case(_case_id(store, "gs://stt-audio/pq/7.wav"))["original_transcript"] == "ROW 7"


def test_only_single_writes_are_in_the_tail(stack: StackInfo, test_settings: Settings) -> None:
    from shared import DataManager
    from shared.domain.cases import CounterDelta

    manager = DataManager(test_settings)
    single = manager.store_failed_case("gs://stt-audio/tail/1.wav", "ONE")
    bulk = {"case_id": "bulk-1", "audio_path": "gs://stt-audio/tail/2.wav", "original_transcript": "TWO"}
    manager.store.create_cases([("bulk-1", bulk, CounterDelta(total_cases=1))])
    first = {case["case_id"]: case["tail_at"] for case in manager.store.cases_changed_since(None)}
    assert set(first) == {single}

    manager.store_correction(single, "One.")
    later = list(manager.store.cases_changed_since(first[single]))
    assert [case["case_id"] for case in later] == [single] and later[0]["tail_at"] > first[single]


def _case_id(store, audio_path: str) -> str:  # type: ignore[no-untyped-def]
    return next(case["case_id"] for case in store.stream_cases() if case["audio_path"] == audio_path)


def test_a_killed_import_resumes_from_its_firestore_checkpoint_and_joins_its_rejects_on_gcs(
    bucket: BucketStore, test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson

    from shared.adapters.firestore_cases import FirestoreCaseStore
    from shared.services import bulk_import

    monkeypatch.setattr(bulk_import, "IMPORT_BATCH", 25)

    class Dies(FirestoreCaseStore):
        calls_left = 12

        def create_cases(self, items):  # type: ignore[no-untyped-def]
            Dies.calls_left -= 1
            if Dies.calls_left == 0:
                raise SystemExit("killed")
            return super().create_cases(items)

    rows = [{"audio_path": f"gs://stt-audio/ck/{i}.wav", "original_transcript": f"ROW {i}"} if i % 3
            else {"audio_path": "bad"} for i in range(1_500)]
    bucket.put("imports/ck.jsonl", b"".join(orjson.dumps(row) + b"\n" for row in rows))
    generation = bucket.bucket.get_blob("imports/ck.jsonl").generation  # type: ignore[union-attr]
    store = Dies(test_settings, overflow=bucket)
    with pytest.raises(SystemExit):
        run_import("imports/ck.jsonl", generation, store, bucket, checkpoint_every=25)
    Dies.calls_left = -1

    result = run_import("imports/ck.jsonl", generation, store, bucket, checkpoint_every=25)

    assert result["resumed_after_line"] and (result["accepted"], result["rejected"]) == (1_000, 500)
    rejects = [orjson.loads(line) for line in (bucket.get("import_results/ck.rejected.jsonl") or b"").splitlines()]
    assert [r["line"] for r in rejects] == list(range(1, 1_501, 3))
    assert bucket.names("import_segments/ck.rejected.jsonl/") == []
    assert store.import_result(result["import_id"])["accepted"] == 1_000  # type: ignore[index]


HUGE_LINE = b'{"audio_path": "gs://stt-audio/aw/huge.wav", "original_transcript": "' + b"y" * (50 * 1024 * 1024) + b'"}'


def _row(i: int) -> bytes:
    return b'{"audio_path": "gs://stt-audio/aw/%d.wav", "original_transcript": "ROW %d"}' % (i, i)


@pytest.mark.parametrize(("data", "expected", "stored_rows"), [
    pytest.param(b"", (0, 0, 0), set(), id="empty file"),
    pytest.param(_row(1) + b"\n" + _row(2), (2, 2, 0), {1, 2}, id="no trailing newline"),
    pytest.param(_row(1) + b"\n" + HUGE_LINE + b"\n" + _row(3), (3, 2, 1), {1, 3}, id="a 50 MB line"),
])
def test_awkward_files_through_the_real_reader(
    bucket: BucketStore, test_settings: Settings, data: bytes, expected: tuple[int, int, int], stored_rows: set[int]
) -> None:
    """The import's own reader on fake-gcs-server (a buffered stream of 8 MiB reads): the last line without its
    newline is stored, an empty file is a result with nothing in it, a 50 MB line (over the payload limit) is one
    rejected line kept whole in the rejected-lines object, and the import ends with its result either way."""
    import orjson

    store = adapters(test_settings).cases
    bucket.put("imports/aw.jsonl", data)
    generation = bucket.bucket.get_blob("imports/aw.jsonl").generation  # type: ignore[union-attr]

    result = run_import("imports/aw.jsonl", generation, store, bucket)

    assert result["status"] == "imported"
    assert (result["lines"], result["accepted"], result["rejected"]) == expected
    stored = {case["audio_path"] for case in store.stream_cases()}
    assert stored == {f"gs://stt-audio/aw/{i}.wav" for i in stored_rows}
    assert store.import_result(result["import_id"]) is not None
    rejected = bucket.get("import_results/aw.rejected.jsonl")
    if expected[2]:
        [kept] = [orjson.loads(line) for line in (rejected or b"").splitlines()]
        assert kept["line"] == 2 and "over the limit" in kept["reason"] and kept["raw"].encode() == HUGE_LINE
    else:
        assert rejected is None
