"""The ingestion use cases on an in-memory store: outcomes, idempotency, quarantine, imports."""

import contextlib
import json
from collections.abc import Iterator
from typing import BinaryIO

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import ObjectGone
from shared.services.bulk_import import import_failures, run_import
from shared.services.ingestion import record_correction, record_failure
from tests.unit.fake_case_store import FullCaseStore, InMemoryCaseStore

EVENT = {
    "audio_path": "gs://stt-audio/a.wav",
    "original_transcript": "HELLO THERE",
    "corrected_transcript": "Hello there",
}


def test_three_deliveries_store_one_case_and_count_it_once() -> None:
    store = InMemoryCaseStore()
    outcomes = [record_failure(orjson.dumps(EVENT), f"m{i}", store) for i in range(3)]
    assert [o.status for o in outcomes] == ["stored", "duplicate", "duplicate"]
    assert len({o.case_id for o in outcomes}) == 1
    assert store.counters.total_cases == 1
    assert store.counters.corrected_cases == 1


def test_bad_payload_is_quarantined_with_a_reason_and_counted() -> None:
    store = InMemoryCaseStore()
    outcome = record_failure(b'{"audio_path": "gs://stt-audio/../x.wav", "original_transcript": "x"}', "m9", store)
    assert outcome.status == "quarantined"
    assert "'..'" in (outcome.reason or "")
    assert store.rejects["record_failure-m9"]["raw"].startswith(b'{"audio_path"')
    assert store.counters.quarantined == 1
    record_failure(b"not json", "m9", store)  # the same delivery again: kept once
    assert store.counters.quarantined == 1


def test_correction_redelivered_changes_nothing() -> None:
    store = InMemoryCaseStore()
    case_id = record_failure(
        orjson.dumps({**EVENT, "corrected_transcript": None} | {"corrected_transcript": "x"}), "m1", store
    ).case_id
    body = orjson.dumps({"case_id": case_id, "corrected_transcript": "Hello there.", "corrected_by": "ana"})
    assert record_correction(body, "c1", store).status == "corrected"
    assert record_correction(body, "c1", store).status == "duplicate"
    assert len(store.cases[case_id]["corrections"]) == 1
    assert store.cases[case_id]["corrected_transcript"] == "Hello there."


def test_correction_for_an_unknown_case_is_kept_with_the_reason() -> None:
    store = InMemoryCaseStore()
    outcome = record_correction(orjson.dumps({"case_id": "nope", "corrected_transcript": "x"}), "c1", store)
    assert outcome.status == "quarantined"
    assert "no case with case_id 'nope'" in (outcome.reason or "")
    assert store.rejects["record_correction-c1"]["case_id"] == "nope"


def test_import_counts_accepted_duplicates_and_rejected_lines() -> None:
    store = InMemoryCaseStore()
    record_failure(orjson.dumps({**EVENT, "case_id": "old"}), "m0", store)
    lines = [
        orjson.dumps({**EVENT, "case_id": "a"}),
        b"{broken",
        orjson.dumps({**EVENT, "case_id": "old"}),
        b"",
        orjson.dumps({**EVENT, "case_id": "a"}),  # twice in the same file
        orjson.dumps({"audio_path": "gs://stt-audio/b.wav"}),
    ]
    rejected: list[tuple[int, str]] = []
    report = import_failures(lines, "imp1", store, on_reject=lambda n, raw, why: rejected.append((n, why)))
    assert (report.lines, report.accepted, report.duplicates, report.rejected) == (6, 1, 2, 2)
    assert [n for n, _ in rejected] == [2, 6]
    assert "missing required field 'original_transcript'" in rejected[1][1]
    assert report.rejects[0]["line"] == 2
    assert store.cases["a"]["import_id"] == "imp1"
    assert store.counters.total_cases == 2


def _json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()  # stdlib: any integer size, like a sender in another language


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            _json_bytes,
            st.dictionaries(
                st.sampled_from(
                    [
                        "audio_path",
                        "original_transcript",
                        "corrected_transcript",
                        "error_score",
                        "error_types",
                        "case_id",
                        "occurred_at",
                        "schema_version",
                        "x",
                    ]
                ),
                st.one_of(
                    st.none(),
                    st.booleans(),
                    st.integers(),
                    st.floats(allow_nan=False),
                    st.text(max_size=40),
                    st.lists(st.text(max_size=10), max_size=3),
                ),
            ),
        ),
    )
)
def test_any_payload_is_stored_or_quarantined_never_a_crash(payload: bytes) -> None:
    store = InMemoryCaseStore()
    outcome = record_failure(payload, "m", store)
    assert outcome.status in {"stored", "quarantined"}
    assert store.counters.total_cases + store.counters.quarantined == 1


class _GoneBucket:
    def uri(self, name: str) -> str:
        return f"gs://b/{name}"

    def put(self, name: str, data: bytes, content_type: str = "") -> str:
        raise AssertionError("nothing is written for a vanished object")

    def size(self, name: str, generation: int | None = None) -> int | None:
        return None  # as BucketStore.size answers for an absent object

    @contextlib.contextmanager
    def reader(self, name: str, generation: int | None = None) -> Iterator[BinaryIO]:
        raise ObjectGone(name)
        yield  # pragma: no cover - makes this a context manager like the real one


class _Ledger(InMemoryCaseStore):
    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[str, dict[str, object]] = {}

    def save_import(self, import_id: str, summary: dict[str, object]) -> None:
        self.saved[import_id] = summary

    def import_result(self, import_id: str) -> dict[str, object] | None:
        return self.saved.get(import_id)


def test_an_import_whose_object_vanished_is_acknowledged_not_retried() -> None:
    ledger = _Ledger()
    result = run_import("imports/x.jsonl", "7", ledger, _GoneBucket())
    assert result["status"] == "object gone"
    assert ledger.saved == {}


def test_a_producer_case_id_reused_for_another_event_is_quarantined_with_the_reason() -> None:
    store = FullCaseStore()
    first = {"case_id": "utt-1", "audio_path": "gs://stt-audio/1.wav", "original_transcript": "ONE"}
    assert record_failure(orjson.dumps(first), "m1", store).status == "stored"
    assert record_failure(orjson.dumps(first), "m2", store).status == "duplicate"  # a redelivery: nothing kept

    other = {**first, "audio_path": "gs://stt-audio/2.wav", "original_transcript": "TWO"}
    outcome = record_failure(orjson.dumps(other), "m3", store)

    assert outcome.status == "quarantined"
    assert outcome.reason == ("case_id 'utt-1' reused with different content: audio_path, original_transcript "
                              "differ from the stored case")
    assert store.rejects["record_failure-m3"]["raw"] == orjson.dumps(other)
    assert store.cases["utt-1"]["audio_path"] == "gs://stt-audio/1.wav"  # the stored case is untouched


# A valid event Firestore cannot store (an array inside an array): retried, it would fail on every delivery.
UNSTORABLE = {**EVENT, "metadata": {"boxes": [[0, 1], [2, 3]]}}


def test_an_event_firestore_cannot_store_is_quarantined_with_the_reason_not_retried() -> None:
    store = InMemoryCaseStore()
    outcome = record_failure(orjson.dumps(UNSTORABLE), "m-boxes", store)
    assert outcome.status == "quarantined"
    assert "Firestore cannot store this event" in (outcome.reason or "")
    assert "'metadata.boxes'" in (outcome.reason or "")
    assert store.cases == {}
    assert store.rejects["record_failure-m-boxes"]["raw"] == orjson.dumps(UNSTORABLE)
    assert store.counters.quarantined == 1 and store.counters.total_cases == 0


def test_an_event_the_store_refuses_is_quarantined_with_its_reason_not_retried() -> None:
    # Defence in depth: what the validation does not foresee, the store refuses (Firestore's InvalidArgument).
    store = InMemoryCaseStore(refuse=lambda case: "too odd" if case.get("speaker_id") == "odd" else None)
    outcome = record_failure(orjson.dumps({**EVENT, "speaker_id": "odd"}), "m-odd", store)
    assert outcome.status == "quarantined" and outcome.case_id is not None
    assert outcome.reason == "Firestore cannot store this case: too odd"
    kept = store.rejects["record_failure-m-odd"]
    assert (kept["reason"], kept["case_id"], kept["message_id"]) == (outcome.reason, outcome.case_id, "m-odd")
    assert store.cases == {} and store.counters.quarantined == 1
    assert record_failure(orjson.dumps({**EVENT, "speaker_id": "odd"}), "m-odd", store).status == "quarantined"
    assert store.counters.quarantined == 1  # a redelivery keeps nothing new


def test_an_import_rejects_an_unstorable_line_with_its_number_and_stores_the_others() -> None:
    store = FullCaseStore()
    lines = [orjson.dumps(event) for event in (EVENT, UNSTORABLE, {**EVENT, "audio_path": "gs://stt-audio/b.wav"})]
    report = import_failures(lines, "imports/x.jsonl#1", store)
    assert (report.lines, report.accepted, report.rejected) == (3, 2, 1)
    [reject] = report.rejects
    assert reject["line"] == 2 and "an array directly inside an array" in reject["reason"]
    assert {case["import_line"] for case in store.cases.values()} == {1, 3}
    assert store.counters.total_cases == 2
