"""Progress of long work on fakes: what an import and a build note while they run, and the api's status ops."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared import bootstrap
from shared.api import dispatch
from shared.config import Settings
from shared.services import bulk_import, work_progress
from shared.services.bulk_import import run_import
from shared.services.dataset_builds import run_build_request
from shared.services.work_progress import ProgressNotes
from tests.unit.fake_case_store import FullCaseStore
from tests.unit.fake_dataset_bucket import FakeBucket, FakeCases, FakeLedger, FakeQuarantine
from tests.unit.fake_progress import InMemoryProgressBoard
from tests.unit.test_dataset_build_service import make_cases

SETTINGS = Settings(project="demo-progress")


def jsonl(count: int, bad_every: int = 0) -> bytes:
    lines = []
    for i in range(count):
        if bad_every and i % bad_every == 0:
            lines.append(b'{"audio_path": "nope"}')
        else:
            lines.append(orjson.dumps({"audio_path": f"gs://stt-audio/p/{i}.wav", "original_transcript": f"LINE {i}"}))
    return b"\n".join(lines) + b"\n"


def test_a_running_import_notes_its_lines_done_and_counts_as_it_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_import, "IMPORT_BATCH", 100)
    monkeypatch.setattr(work_progress, "NOTE_EVERY_S", 0.0)  # every settled chunk is noted
    bucket, store, board = FakeBucket(), FullCaseStore(), InMemoryProgressBoard()
    bucket.put("imports/day1.jsonl", jsonl(1_000, bad_every=10))
    generation = bucket.generation("imports/day1.jsonl")

    result = run_import("imports/day1.jsonl", generation, store, bucket, progress=board)

    notes = [fields for kind, _, fields in board.notes if kind == "import"]
    assert notes[0]["state"] == "running" and notes[0]["lines_done"] == 0
    done = [n["lines_done"] for n in notes[1:-1]]
    assert done == sorted(done) and len(done) >= 5, done  # it moved forward, chunk by chunk
    size = len(bucket.get("imports/day1.jsonl") or b"")
    assert notes[-1] == {"state": "finished", "lines_done": 1_000, "lines_read": 1_000,
                         "accepted": 900, "duplicates": 0, "rejected": 100, "bytes_read": size, "bytes_total": size}
    assert result["accepted"] == 900

    status = work_progress.import_status("day1.jsonl", None, board, store, bucket)
    assert (status["state"], status["lines_done"], status["accepted"], status["rejected"]) == ("finished", 1_000,
                                                                                                900, 100)
    assert "rejects" not in status["result"] and status["result"]["lines"] == 1_000


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_a_running_import_notes_the_bytes_read_of_the_objects_size(monkeypatch: pytest.MonkeyPatch,
                                                                   ending: bytes) -> None:
    monkeypatch.setattr(bulk_import, "IMPORT_BATCH", 100)
    monkeypatch.setattr(work_progress, "NOTE_EVERY_S", 0.0)
    bucket, store, board = FakeBucket(), FullCaseStore(), InMemoryProgressBoard()
    data = jsonl(1_000).replace(b"\n", ending).removesuffix(ending)  # the last line without its end
    bucket.put("imports/day2.jsonl", data)

    run_import("imports/day2.jsonl", bucket.generation("imports/day2.jsonl"), store, bucket, progress=board)

    notes = [fields for kind, _, fields in board.notes if kind == "import"]
    assert all(note["bytes_total"] == len(data) for note in notes)
    read = [note["bytes_read"] for note in notes if "bytes_read" in note]
    assert read == sorted(read) and 0 < read[0] < len(data) and read[-1] == len(data), read
    status = work_progress.import_status("day2.jsonl", None, board, store, bucket)
    assert (status["bytes_read"], status["bytes_total"], status["accepted"]) == (len(data), len(data), 1_000)


def test_a_parquet_import_notes_its_size_but_no_offset() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [orjson.loads(line) for line in jsonl(20).splitlines()]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    bucket, store, board = FakeBucket(), FullCaseStore(), InMemoryProgressBoard()
    bucket.put("imports/rows.parquet", sink.getvalue().to_pybytes())

    run_import("imports/rows.parquet", bucket.generation("imports/rows.parquet"), store, bucket, progress=board)

    notes = [fields for kind, _, fields in board.notes if kind == "import"]
    assert notes[-1]["state"] == "finished" and notes[-1]["bytes_total"] == bucket.size("imports/rows.parquet")
    assert not any("bytes_read" in note for note in notes)


def test_progress_that_cannot_be_written_never_fails_the_import() -> None:
    bucket, store, board = FakeBucket(), FullCaseStore(), InMemoryProgressBoard()
    board.failing = RuntimeError("firestore is down")
    bucket.put("imports/x.jsonl", jsonl(50))

    result = run_import("imports/x.jsonl", bucket.generation("imports/x.jsonl"), store, bucket, progress=board)

    assert result["status"] == "imported" and result["accepted"] == 50


def test_notes_now_and_then_are_spaced_by_the_clock() -> None:
    board, now = InMemoryProgressBoard(), [0.0]
    notes = ProgressNotes(board, "import", "i1", every_s=1.0, clock=lambda: now[0])
    for step in range(10):
        now[0] = step * 0.25
        notes.now_and_then(lines_done=step)
    assert [fields["lines_done"] for _, _, fields in board.notes] == [0, 4, 8]


def test_an_import_not_yet_started_is_queued_and_an_unknown_one_is_not_found() -> None:
    bucket, store, board = FakeBucket(), FullCaseStore(), InMemoryProgressBoard()
    bucket.put("imports/later.jsonl", jsonl(3))
    assert work_progress.import_status("imports/later.jsonl", None, board, store, bucket)["state"] == "queued"
    with pytest.raises(KeyError, match=r"no import imports/none\.jsonl"):
        work_progress.import_status("none.jsonl", None, board, store, bucket)


def build_world(request: dict[str, Any]) -> tuple[FakeBucket, InMemoryProgressBoard, str]:
    bucket, board = FakeBucket(), InMemoryProgressBoard()
    bucket.put("dataset-requests/weekly.json", orjson.dumps(request))
    generation = str(bucket.generation("dataset-requests/weekly.json"))
    run_build_request("dataset-requests/weekly.json", generation, ledger=FakeLedger(), cases=FakeCases(make_cases()),
                      bucket=bucket, quarantine=FakeQuarantine(), progress=board)
    return bucket, board, generation


def test_a_build_notes_each_stage_and_its_end() -> None:
    bucket, board, generation = build_world({"min_error_score": 0.5, "version_name": "weekly"})

    stages = [fields.get("stage") for kind, _, fields in board.notes if kind == "build"]
    assert stages == ["reading the request", "syncing the case snapshot", "writing the dataset",
                      "registering the version", "done"]
    status = work_progress.build_status("weekly", None, board, bucket)
    assert status["state"] == "built" and status["stage"] == "done"
    assert status["result"]["version_id"] == status["version_id"]
    assert status["generation"] == generation


def test_a_rejected_build_says_why_and_a_request_not_yet_served_is_queued() -> None:
    bucket, board, _ = build_world({"min_error_score": 0.5, "max_sample": 3})
    status = work_progress.build_status("dataset-requests/weekly.json", None, board, bucket)
    assert status["state"] == "rejected" and "max_sample" in status["reason"]

    bucket.put("dataset-requests/weekly.json", b"{}")  # a new version of the request: not served yet
    again = work_progress.build_status("weekly.json", None, board, bucket)
    assert again["state"] == "queued" and "result" not in again


def test_the_api_answers_status_ops_and_recent_work() -> None:
    bucket, board, generation = build_world({"min_error_score": 0.5})
    fakes = bootstrap.Adapters(SETTINGS, cases=FullCaseStore(), bucket=bucket, progress=board)
    from shared.progress import WorkProgress

    instances = {"WorkProgress": WorkProgress(adapters=fakes)}
    answer = dispatch({"op": "build_status", "name": "weekly", "generation": int(generation)}, SETTINGS, instances)
    assert answer.status == 200 and answer.body["result"]["state"] == "built"
    recent = dispatch({"op": "recent_work", "limit": 5}, SETTINGS, instances)
    assert [b["state"] for b in recent.body["result"]["builds"]] == ["built"]
    assert recent.body["result"]["imports"] == []
    assert dispatch({"op": "recent_work", "limit": 0}, SETTINGS, instances).status == 400
    assert dispatch({"op": "import_status", "name": "a.csv"}, SETTINGS, instances).status == 400
    assert dispatch({"op": "import_status", "name": "gone.jsonl"}, SETTINGS, instances).status == 404
