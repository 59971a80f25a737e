"""Bulk imports on fakes: JSONL and Parquet files, rejected lines streamed past a cap, awkward files."""

from __future__ import annotations

import io
import threading
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.services import bulk_import
from shared.services.bulk_import import RejectSink, run_import
from tests.unit.fake_case_store import FullCaseStore
from tests.unit.fake_dataset_bucket import FakeBucket


def event(i: int, **fields: object) -> dict:
    return {"audio_path": f"gs://stt-audio/imp/{i}.wav", "original_transcript": f"THE NUMBER IS {i}", **fields}


def upload(bucket: FakeBucket, name: str, data: bytes) -> int:
    bucket.put(name, data)
    return bucket.generation(name)


def jsonl(rows: list[object]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def rejected_lines(bucket: FakeBucket, base: str) -> list[dict]:
    return [orjson.loads(line) for line in (bucket.get(f"{base}.rejected.jsonl") or b"").splitlines()]


def test_a_parquet_import_is_validated_row_by_row_like_its_jsonl() -> None:
    bucket, store = FakeBucket(), FullCaseStore()
    table = pa.Table.from_pylist([
        event(1, error_score=0.5, speaker_id="s1"),
        {"audio_path": "not a uri", "original_transcript": "x", "error_score": None, "speaker_id": None},
        event(3, error_score=0.9, speaker_id=None),
    ])
    sink = io.BytesIO()
    pq.write_table(table, sink)
    generation = upload(bucket, "imports/history.parquet", sink.getvalue())

    result = run_import("imports/history.parquet", generation, store, bucket)

    assert (result["lines"], result["accepted"], result["rejected"]) == (3, 2, 1)
    assert sorted(case["error_score"] for case in store.cases.values()) == [0.5, 0.9]
    # A null in a Parquet column is a field left out, not an explicit null of a typed field.
    assert all("speaker_id" not in case or case["speaker_id"] == "s1" for case in store.cases.values())
    [reject] = rejected_lines(bucket, "import_results/history")
    assert reject["line"] == 2 and "audio_path" in reject["reason"]
    assert orjson.loads(bucket.get("import_results/history.json") or b"{}")["accepted"] == 2


def test_a_parquet_value_json_has_no_type_for_is_a_rejected_row_not_a_crash() -> None:
    bucket, store = FakeBucket(), FullCaseStore()
    table = pa.table({"audio_path": ["gs://b/a.wav"], "original_transcript": ["x"],
                      "error_score": pa.array([Decimal("1.5")], pa.decimal128(3, 1))})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    result = run_import("imports/odd.parquet", upload(bucket, "imports/odd.parquet", sink.getvalue()), store, bucket)
    assert (result["accepted"], result["rejected"]) == (0, 1)
    assert "error_score" in rejected_lines(bucket, "import_results/odd")[0]["reason"]


def test_rejected_lines_past_the_memory_cap_are_streamed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "REJECTS_IN_MEMORY", 2_000)
    bucket, store = FakeBucket(), FullCaseStore()
    rows: list[object] = [event(i) if i % 3 else {"audio_path": f"gs://b/{i}.wav"} for i in range(300)]
    result = run_import("imports/bad.jsonl", upload(bucket, "imports/bad.jsonl", jsonl(rows)), store, bucket)
    rejects = rejected_lines(bucket, "import_results/bad")
    assert result["rejected"] == len(rejects) == 100
    assert [r["line"] for r in rejects] == [i + 1 for i in range(0, 300, 3)]
    assert result["rejected_lines_uri"] == bucket.uri("import_results/bad.rejected.jsonl")


def test_a_reject_sink_that_is_abandoned_writes_nothing() -> None:
    bucket = FakeBucket()
    sink = RejectSink(bucket, "import_results/x.rejected.jsonl", spill_bytes=10)
    sink.add(1, b"{}", "missing field")  # past the cap: streaming to the object
    sink.add(2, b"{}", "missing field")
    sink.abandon()
    assert bucket.get("import_results/x.rejected.jsonl") is None


def test_an_import_that_fails_midway_leaves_no_rejects_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "REJECTS_IN_MEMORY", 10)

    class Outage(FullCaseStore):
        def create_cases(self, items):  # type: ignore[no-untyped-def]
            raise ConnectionError("Firestore unavailable")

    bucket = FakeBucket()
    rows: list[object] = [{"audio_path": "gs://b/0.wav"}, event(1)]
    with pytest.raises(ConnectionError):
        run_import("imports/f.jsonl", upload(bucket, "imports/f.jsonl", jsonl(rows)), Outage(), bucket)
    assert bucket.get("import_results/f.rejected.jsonl") is None
    assert bucket.get("import_results/f.json") is None


@pytest.mark.parametrize(("data", "expected"), [
    (b"", (0, 0, 0)),
    (jsonl([event(1)]).rstrip(b"\n"), (1, 1, 0)),  # no newline at the end
    (b"\n\n" + jsonl([event(1)]) + b"\n", (4, 1, 0)),  # blank lines are counted, not rejected
    (b'{"audio_path": "gs://b/a.wav", "original_transcript": "' + b"x" * 3_000_000 + b'"}\n' + jsonl([event(2)]),
     (2, 1, 1)),  # one line over the payload limit is rejected, the next one is still read
])
def test_awkward_files_are_read_line_by_line(data: bytes, expected: tuple[int, int, int]) -> None:
    bucket, store = FakeBucket(), FullCaseStore()
    result = run_import("imports/a.jsonl", upload(bucket, "imports/a.jsonl", data), store, bucket)
    assert (result["lines"], result["accepted"], result["rejected"]) == expected


def test_a_single_50_mb_line_is_rejected_with_its_reason_and_kept_whole() -> None:
    """A line past the payload limit is one rejected line, its bytes kept in the rejected-lines object; the
    lines around it are stored and the import ends with its result (no crash, nothing to retry)."""
    huge = b'{"audio_path": "gs://stt-audio/huge.wav", "original_transcript": "' + b"y" * (50 * 1024 * 1024) + b'"}'
    bucket, store = FakeBucket(), FullCaseStore()
    data = jsonl([event(1)]) + huge + b"\n" + jsonl([event(3)]).rstrip(b"\n")
    result = run_import("imports/huge.jsonl", upload(bucket, "imports/huge.jsonl", data), store, bucket)
    assert result["status"] == "imported"
    assert (result["lines"], result["accepted"], result["rejected"]) == (3, 2, 1)
    assert result["rejects"] == [{"line": 2, "reason": result["rejects"][0]["reason"]}]
    assert "over the limit" in result["rejects"][0]["reason"]
    [kept] = rejected_lines(bucket, "import_results/huge")
    assert kept["line"] == 2 and kept["raw"].encode() == huge
    assert sorted(case["import_line"] for case in store.cases.values()) == [1, 3]
    assert store.imports[result["import_id"]]["state"] == "finished"


def mixed_file(n: int) -> list[object]:
    """n lines: events, every 7th a reject, every 11th repeating an earlier event, a blank line now and then."""
    rows: list[object] = []
    for i in range(n):
        if i % 7 == 3:
            rows.append({"audio_path": f"gs://b/{i}.wav"})
        elif i % 11 == 5:
            rows.append(event(i - 5))
        else:
            rows.append(event(i))
    return rows


def with_blanks(data: bytes) -> bytes:
    return data.replace(b'\n{"audio_path": "gs://stt-audio/imp/40.wav"', b'\n\n{"audio_path": "gs://stt-audio/imp/40.wav"')


class DiesAfter(FullCaseStore):
    """A case store whose process dies (SystemExit) at the `calls`-th bulk write."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls_left = calls
        self._countdown = threading.Lock()  # the import's two writer threads call at once

    def create_cases(self, items):  # type: ignore[no-untyped-def]
        with self._countdown:
            self.calls_left -= 1
            killed = self.calls_left == 0
        if killed:
            raise SystemExit("the function instance was killed")
        return super().create_cases(items)


def test_an_import_killed_midway_resumes_at_its_checkpoint_and_ends_exactly_as_a_clean_run() -> None:
    data = with_blanks(jsonl(mixed_file(3_000)))
    clean_bucket, clean_store = FakeBucket(), FullCaseStore()
    clean = run_import("imports/m.jsonl", upload(clean_bucket, "imports/m.jsonl", data), clean_store, clean_bucket,
                       checkpoint_every=400)

    bucket, store = FakeBucket(), DiesAfter(calls=4)
    generation = upload(bucket, "imports/m.jsonl", data)
    with pytest.raises(SystemExit):
        run_import("imports/m.jsonl", generation, store, bucket, checkpoint_every=400)
    [checkpoint] = [r for r in store.imports.values() if r["state"] == "running"]
    assert checkpoint["line"] >= 400 and checkpoint["reject_segments"] and checkpoint["snapshot_parts"]
    store.calls_left = -1  # the redelivery's instance stays up

    resumed = run_import("imports/m.jsonl", generation, store, bucket, checkpoint_every=400)

    counts = ("lines", "accepted", "duplicates", "rejected", "rejects")
    assert {k: resumed[k] for k in counts} == {k: clean[k] for k in counts}
    assert resumed["resumed_after_line"] == checkpoint["line"]
    assert bucket.get("import_results/m.rejected.jsonl") == clean_bucket.get("import_results/m.rejected.jsonl")
    assert bucket.names("import_segments/m.rejected.jsonl/") == []
    assert store.cases.keys() == clean_store.cases.keys()
    assert store.counters == clean_store.counters  # every case counted once
    parts = [pq.read_table(io.BytesIO(bucket.get(name) or b"")) for name in resumed["snapshot_parts"]]
    assert sorted(row for part in parts for row in part.column("case_id").to_pylist()) == sorted(store.cases)


def test_more_reject_segments_than_one_compose_joins_are_joined_in_line_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk_import, "IMPORT_BATCH", 20)  # a checkpoint, so a segment, every 20 lines
    rows: list[object] = [{"audio_path": f"gs://b/{i}.wav"} if i % 2 else event(i) for i in range(1_400)]
    bucket, store = FakeBucket(), FullCaseStore()
    result = run_import("imports/r.jsonl", upload(bucket, "imports/r.jsonl", jsonl(rows)), store, bucket,
                        checkpoint_every=20)
    segments = {name for name in bucket.written() if name.startswith("import_segments/")}
    assert len(segments) > 2 * bulk_import.MAX_COMPOSE
    rejects = rejected_lines(bucket, "import_results/r")
    assert result["rejected"] == len(rejects) == 700
    assert [r["line"] for r in rejects] == list(range(2, 1_401, 2))


def test_a_file_named_parquet_that_is_not_parquet_is_a_rejected_import_not_a_retry() -> None:
    bucket, store = FakeBucket(), FullCaseStore()
    result = run_import("imports/x.parquet", upload(bucket, "imports/x.parquet", b"PAR1 not really"), store, bucket)
    assert result["status"] == "rejected" and "not a readable Parquet file" in result["reason"]
    assert orjson.loads(bucket.get("import_results/x.json") or b"{}")["reason"] == result["reason"]
    assert store.cases == {}
    # A redelivery finds the result: nothing is read or retried again.
    again = run_import("imports/x.parquet", bucket.generation("imports/x.parquet"), store, bucket)
    assert again["status"] == "already imported"


class DiesSavingResult(FullCaseStore):
    """A case store whose process dies as it records the import's result (the rejects already joined)."""

    dies = True

    def save_import(self, import_id, summary):  # type: ignore[no-untyped-def]
        if self.dies:
            self.dies = False
            raise SystemExit("the function instance was killed")
        super().save_import(import_id, summary)


def test_an_import_killed_after_joining_its_rejects_finishes_on_redelivery(monkeypatch: pytest.MonkeyPatch) -> None:
    """The redelivery resumes at the last checkpoint, whose reject segments must still be there to join again."""
    monkeypatch.setattr(bulk_import, "IMPORT_BATCH", 50)
    data = jsonl(mixed_file(600))
    clean_bucket, clean_store = FakeBucket(), FullCaseStore()
    clean = run_import("imports/j.jsonl", upload(clean_bucket, "imports/j.jsonl", data), clean_store, clean_bucket,
                       checkpoint_every=100)

    bucket, store = FakeBucket(), DiesSavingResult()
    generation = upload(bucket, "imports/j.jsonl", data)
    with pytest.raises(SystemExit):
        run_import("imports/j.jsonl", generation, store, bucket, checkpoint_every=100)

    resumed = run_import("imports/j.jsonl", generation, store, bucket, checkpoint_every=100)

    counts = ("lines", "accepted", "duplicates", "rejected", "rejects")
    assert resumed["status"] == "imported" and {k: resumed[k] for k in counts} == {k: clean[k] for k in counts}
    assert bucket.get("import_results/j.rejected.jsonl") == clean_bucket.get("import_results/j.rejected.jsonl")
    assert bucket.names("import_segments/j.rejected.jsonl/") == []
    assert run_import("imports/j.jsonl", generation, store, bucket)["status"] == "already imported"


def test_an_import_killed_after_recording_its_result_has_its_segments_cleaned_by_the_redelivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bulk_import, "IMPORT_BATCH", 50)

    class DiesDeleting(FakeBucket):
        dies = True

        def delete(self, name):  # type: ignore[no-untyped-def]
            if self.dies:
                self.dies = False
                raise SystemExit("the function instance was killed")
            super().delete(name)

    bucket, store = DiesDeleting(), FullCaseStore()
    generation = upload(bucket, "imports/d.jsonl", jsonl(mixed_file(300)))
    with pytest.raises(SystemExit):
        run_import("imports/d.jsonl", generation, store, bucket, checkpoint_every=100)
    assert bucket.names("import_segments/d.rejected.jsonl/")

    again = run_import("imports/d.jsonl", generation, store, bucket, checkpoint_every=100)

    assert again["status"] == "already imported"
    assert again["rejected"] == len(rejected_lines(bucket, "import_results/d"))
    assert bucket.names("import_segments/d.rejected.jsonl/") == []


def refuse_marked(case: dict) -> str | None:
    """As Firestore refuses a write it cannot store (InvalidArgument): here, the cases marked for it."""
    return "value refused by the store" if (case.get("metadata") or {}).get("refuse") else None


@pytest.mark.parametrize("bad", [[2], [1, 2, 3], [1, 7, 8, 20], []])
def test_lines_the_store_refuses_are_rejected_with_their_numbers_and_the_others_stored(bad: list[int]) -> None:
    # Defence in depth: lines that pass validation but Firestore refuses; each write of 499 lines is atomic.
    rows = [event(i, metadata={"refuse": i in bad}) for i in range(1, 21)]
    bucket, store = FakeBucket(), FullCaseStore(refuse=refuse_marked)
    generation = upload(bucket, "imports/odd.jsonl", jsonl(rows))

    result = run_import("imports/odd.jsonl", generation, store, bucket)

    assert (result["lines"], result["accepted"], result["rejected"]) == (20, 20 - len(bad), len(bad))
    assert [r["line"] for r in result["rejects"]] == bad
    assert all(r["reason"] == "Firestore cannot store this case: value refused by the store" for r in result["rejects"])
    assert sorted(case["import_line"] for case in store.cases.values()) == [i for i in range(1, 21) if i not in bad]
    assert store.counters.total_cases == 20 - len(bad)  # every stored case counted once, no refused one
    kept = rejected_lines(bucket, "import_results/odd")
    assert [(r["line"], orjson.loads(r["raw"])) for r in kept] == [(i, rows[i - 1]) for i in bad]
    snapshot = [pq.read_table(io.BytesIO(bucket.get(name) or b"")) for name in result["snapshot_parts"]]
    assert sorted(row for part in snapshot for row in part.column("case_id").to_pylist()) == sorted(store.cases)


def test_an_import_of_good_unstorable_good_stores_two_and_rejects_the_middle_line() -> None:
    bucket, store = FakeBucket(), FullCaseStore()
    rows = [event(1), event(2, metadata={"frames": 2**63}), event(3)]
    result = run_import("imports/g.jsonl", upload(bucket, "imports/g.jsonl", jsonl(rows)), store, bucket)
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert result["rejects"][0]["line"] == 2 and "signed 64-bit" in result["rejects"][0]["reason"]
    assert sorted(case["import_line"] for case in store.cases.values()) == [1, 3]
