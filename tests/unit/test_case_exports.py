"""learning_data/ exports as change logs: appends of the changed cases, rewrites when an append would not do."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from shared.domain import bucket_layout as layout
from shared.domain.statistics import summarize
from shared.errors import BadInput, NotFound
from shared.services.case_exports import MAX_SEGMENTS, export_cases
from shared.services.case_restore import restore_cases
from shared.services.case_snapshot import sync_snapshot
from shared.services.ingestion import correct_by_id, store_failure_fields
from shared.snapshot.engine import compact
from tests.unit.fake_case_store import FullCaseStore
from tests.unit.fake_dataset_bucket import FakeBucket, SimulatedCrash

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def event(i: int) -> dict[str, Any]:
    return {"audio_path": f"gs://stt-audio/e/{i}.wav", "original_transcript": f"THE NUMBER IS {i}",
            "error_score": 0.5, "speaker_id": f"spk-{i % 5}"}


class World:
    def __init__(self, cases: int = 40) -> None:
        self.store, self.bucket = FullCaseStore(), FakeBucket()
        self.ids = [store_failure_fields(event(i), self.store) for i in range(cases)]
        self.at = NOW
        self.next_event = cases

    def export(self) -> dict[str, Any]:
        """What the scheduled run does: sync the snapshot's tail, then export."""
        self.at += timedelta(minutes=30)
        sync_snapshot(self.store, self.bucket, self.at)
        return export_cases(self.store, self.bucket, self.at)

    def change(self, corrections: int = 0, new: int = 0) -> list[str]:
        changed = []
        for case_id in self.ids[:corrections]:
            history = len(self.store.cases[case_id].get("corrections") or [])
            correct_by_id(case_id, f"The number is {case_id[:6]}, take {history + 1}.", "ana", None, self.store)
            changed.append(case_id)
        for _ in range(new):
            changed.append(store_failure_fields(event(self.next_event), self.store))
            self.ids.append(changed[-1])
            self.next_event += 1
        return changed

    def lines(self, name: str) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in (self.bucket.get(name) or b"").splitlines()]

    def metadata(self) -> dict[str, Any]:
        return dict(orjson.loads(self.bucket.get(layout.LEARNING_METADATA) or b"{}"))


def as_read(world: World) -> tuple[dict[str, Any], dict[tuple[str, int], dict[str, Any]]]:
    """The exports as a reader takes them: the last line of each case, one line per (case_id, correction_number)."""
    cases = {line["case_id"]: line for line in world.lines(layout.FAILED_CASES)}
    corrections = {(row["case_id"], row["correction_number"]): row for row in world.lines(layout.CORRECTIONS)}
    return cases, corrections


def assert_exports_are_the_store(world: World) -> None:
    cases, corrections = as_read(world)
    expected = {case_id: orjson.loads(orjson.dumps(case, default=str)) for case_id, case in world.store.cases.items()}
    assert set(cases) == set(expected)
    for case_id, case in cases.items():
        assert case.get("corrected_transcript") == expected[case_id].get("corrected_transcript")
        history = expected[case_id].get("corrections") or []
        assert [corrections[(case_id, n)]["corrected_transcript"] for n in range(1, len(history) + 1)] == [
            entry["corrected_transcript"] for entry in history]
    assert len(corrections) == sum(len(case.get("corrections") or []) for case in world.store.cases.values())
    metadata = world.metadata()
    for name in (layout.FAILED_CASES, layout.CORRECTIONS):
        data = world.bucket.get(name) or b""
        entry = metadata["files"][name]
        assert (entry["bytes"], entry["rows"], entry["generation"]) == (
            len(data), data.count(b"\n"), world.bucket.generation(name))
        for segment in entry["segments"]:  # every appended range checks out on its own
            piece = data[segment["offset"]:segment["offset"] + segment["bytes"]]
            assert hashlib.sha256(piece).hexdigest() == segment["sha256"]
            assert piece.count(b"\n") == segment["rows"]
        assert sum(segment["bytes"] for segment in entry["segments"]) == len(data)
    assert world.bucket.names(layout.EXPORT_SEGMENTS) == []  # nothing staged is left behind


def test_an_export_appends_only_the_cases_changed_since_the_last_one() -> None:
    world = World(40)
    first = world.export()
    assert (first["mode"], first["cases"], first["lines"]) == ("rewrite", 40, 40)
    changed = world.change(corrections=3, new=2)
    writes = len(world.bucket.writes)

    second = world.export()

    assert (second["mode"], second["cases"], second["corrections"], second["lines"]) == ("append", 5, 3, 45)
    assert [line["case_id"] for line in world.lines(layout.FAILED_CASES)[40:]] == sorted(changed)
    staged = [name for name in world.bucket.written(writes) if name.startswith(layout.EXPORT_SEGMENTS)]
    assert len(staged) == 2  # one segment per file: the other 35 cases were not read or written again
    assert_exports_are_the_store(world)
    assert len(world.metadata()["files"][layout.FAILED_CASES]["segments"]) == 2


def test_a_case_corrected_twice_leaves_its_history_once_per_correction_number() -> None:
    world = World(30)
    world.export()
    world.change(corrections=1)
    world.export()
    world.change(corrections=1)
    assert world.export()["mode"] == "append"
    rows = [row for row in world.lines(layout.CORRECTIONS) if row["case_id"] == world.ids[0]]
    assert [row["correction_number"] for row in rows] == [1, 1, 2]  # the history comes again with the case
    assert rows[0] == rows[1]
    assert_exports_are_the_store(world)


def exports_written(world: World, since: int) -> list[str]:
    """What the export wrote (the snapshot's sync writes its watermark on every run)."""
    return [name for name in world.bucket.written(since)
            if name in (layout.FAILED_CASES, layout.CORRECTIONS, layout.LEARNING_METADATA)
            or name.startswith(layout.EXPORT_SEGMENTS)]


def test_nothing_new_writes_nothing_and_new_statistics_alone_write_only_the_metadata() -> None:
    world = World(10)
    world.export()
    writes = len(world.bucket.writes)
    assert world.export()["skipped"] == "nothing changed since"
    assert exports_written(world, writes) == []
    world.store.quarantine("record_failure-m1", b"{bad", "not JSON", "record_failure")
    result = world.export()
    assert (result["mode"], result["cases"]) == ("none", 0)
    assert exports_written(world, writes) == [layout.LEARNING_METADATA]
    assert world.metadata()["statistics"]["quarantined_events"] == 1


def test_a_compacted_snapshot_rewrites_the_export_whole() -> None:
    world = World(20)
    world.export()
    world.change(corrections=2)
    world.export()
    compact(world.bucket, NOW + timedelta(days=1))
    world.change(new=1)
    result = world.export()
    assert (result["mode"], result["why"], result["lines"]) == ("rewrite", "the snapshot was compacted", 21)
    assert_exports_are_the_store(world)


def test_lines_that_would_outnumber_cases_two_to_one_rewrite_the_export() -> None:
    world = World(10)
    world.export()
    modes = []
    for _ in range(6):
        world.change(corrections=4)
        modes.append(world.export()["mode"])
    assert modes == ["append", "append", "rewrite", "append", "append", "rewrite"]  # 10 + 4 + 4 > 2 x 10 ...
    assert_exports_are_the_store(world)


def test_most_cases_changed_rewrite_the_export() -> None:
    world = World(10)
    world.export()
    world.change(corrections=6)
    assert world.export()["why"] == "6 changed cases of 10"
    assert_exports_are_the_store(world)


def test_after_max_segments_appends_the_export_is_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.services.case_exports.MAX_SEGMENTS", 3)
    world = World(100)
    world.export()
    modes = []
    for _ in range(3):
        world.change(new=1)
        modes.append(world.export()["mode"])
    assert modes == ["append", "append", "rewrite"]
    assert MAX_SEGMENTS == 100  # the module's own value is untouched outside this test


def test_an_export_that_died_between_its_append_and_its_metadata_is_repaired_by_the_next() -> None:
    world = World(20)
    world.export()
    world.change(corrections=2)
    world.bucket.crash_before_write(layout.LEARNING_METADATA)
    with pytest.raises(SimulatedCrash):
        world.export()
    assert len(world.lines(layout.FAILED_CASES)) == 22  # appended, but the metadata still says 20 lines
    world.change(new=1)
    result = world.export()
    assert (result["mode"], result["why"]) == ("rewrite", "a file is not at the generation the last export recorded")
    assert result["lines"] == 21
    assert_exports_are_the_store(world)


def test_a_file_replaced_by_hand_is_rewritten_not_appended_to() -> None:
    world = World(20)
    world.export()
    world.bucket.put(layout.FAILED_CASES, b'{"case_id": "not-from-here"}\n')
    world.change(new=1)
    assert world.export()["mode"] == "rewrite"
    assert_exports_are_the_store(world)


# -- restore: the cases back from the export ------------------------------------------------------------------


def comparable(case: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in case.items() if key != "tail_at"}


def test_a_wiped_store_gets_its_cases_corrections_and_statistics_back_from_the_change_log() -> None:
    world = World(25)
    world.export()
    world.change(corrections=3, new=2)
    world.export()
    world.change(corrections=1)  # the first case corrected a second time: three lines of it in the log
    world.export()
    assert len(world.lines(layout.FAILED_CASES)) > len(world.store.cases)
    empty = FullCaseStore()

    result = restore_cases(empty, world.bucket)

    assert (result["cases"], result["restored"], result["already_stored"]) == (27, 27, 0)
    assert {case_id: comparable(case) for case_id, case in empty.cases.items()} == {
        case_id: comparable(case) for case_id, case in world.store.cases.items()}
    assert isinstance(empty.cases[world.ids[0]]["corrections"][1]["corrected_at"], datetime)
    assert summarize(empty.counter_shards()) == summarize(world.store.counter_shards())
    again = restore_cases(empty, world.bucket)
    assert (again["restored"], again["already_stored"]) == (0, 27)
    assert summarize(empty.counter_shards()) == summarize(world.store.counter_shards())  # counted once


def test_a_restore_into_a_live_store_adds_only_what_it_lacks() -> None:
    world = World(12)
    world.export()
    partial = FullCaseStore()
    for case_id in world.ids[:5]:
        partial.cases[case_id] = dict(world.store.cases[case_id])
    assert restore_cases(partial, world.bucket)["restored"] == 7
    assert set(partial.cases) == set(world.store.cases)


def test_a_restore_names_what_is_wrong_with_the_export() -> None:
    with pytest.raises(NotFound, match="nothing to restore"):
        restore_cases(FullCaseStore(), FakeBucket())
    bucket = FakeBucket()
    bucket.put(layout.FAILED_CASES, b'{"case_id": "a"}\n{not json\n')
    with pytest.raises(BadInput, match="line 2 is not JSON"):
        restore_cases(FullCaseStore(), bucket)
    bucket.put(layout.FAILED_CASES, b'{"case_id": "a"}\n[1]\n')
    with pytest.raises(BadInput, match="line 2 is not a case"):
        restore_cases(FullCaseStore(), bucket)
