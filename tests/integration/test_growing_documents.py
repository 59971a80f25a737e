"""Documents that must not grow without bound (issue #11, item 5), on the Firestore emulator: a case corrected
30 times with a 50 KB transcript (a 1 MiB document holds ~9 such corrections) and a counter that sees many model
versions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from google.cloud import firestore

from shared.adapters.firestore_cases import ARCHIVED_FIELD, HISTORY, FirestoreCaseStore
from shared.adapters.firestore_counters import MODEL_COUNTERS, N_SHARDS, SHARDS
from shared.config import Settings
from shared.domain.cases import case_counters
from shared.domain.statistics import summarize
from shared.services.ingestion import record_correction, record_failure
from stack.local_stack import StackInfo

pytestmark = pytest.mark.emulators

CORRECTIONS = 30
TEXT_BYTES = 50_000


@pytest.fixture(autouse=True)
def emulators(stack: StackInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in stack.env.items():
        if key.endswith("_EMULATOR_HOST"):
            monkeypatch.setenv(key, value)


def _text(n: int) -> str:
    words = f"correction {n} of a long transcript ".split()
    return " ".join(words[i % len(words)] for i in range(TEXT_BYTES // 6))[:TEXT_BYTES]


def _without_tail(case: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (case or {}).items() if k != "tail_at"}


def test_thirty_corrections_of_a_50kb_transcript_are_stored_and_read_back_whole(test_settings: Settings) -> None:
    store = FirestoreCaseStore(test_settings)
    event = {"audio_path": "gs://stt-audio/long/1.wav", "original_transcript": _text(-1).upper(),
             "model_version": "whisper_base_v1"}
    case_id = record_failure(orjson.dumps(event), "f-1", store).case_id
    assert case_id is not None
    for n in range(CORRECTIONS):
        body = {"case_id": case_id, "corrected_transcript": _text(n), "corrected_by": f"reviewer-{n}"}
        outcome = record_correction(orjson.dumps(body), f"c-{n}", store)
        assert outcome.status == "corrected", (n, outcome)

    case = store.get_case(case_id)
    assert case is not None and ARCHIVED_FIELD not in case
    history = case["corrections"]
    assert [entry["corrected_by"] for entry in history] == [f"reviewer-{n}" for n in range(CORRECTIONS)]
    assert [entry["corrected_transcript"] for entry in history] == [_text(n) for n in range(CORRECTIONS)]
    assert [entry["previous_transcript"] for entry in history] == [None] + [_text(n) for n in range(CORRECTIONS - 1)]
    assert [entry["message_id"] for entry in history] == [f"c-{n}" for n in range(CORRECTIONS)]
    assert case["corrected_transcript"] == _text(CORRECTIONS - 1)

    # Most of the history left the case document, which stays far below 1 MiB.
    raw = store.cases.document(case_id).get().to_dict() or {}
    assert 0 < len(raw["corrections"]) < CORRECTIONS and raw[ARCHIVED_FIELD] + len(raw["corrections"]) == CORRECTIONS
    assert len(list(store.cases.document(case_id).collection(HISTORY).stream())) == raw[ARCHIVED_FIELD]

    # Every read of the port gives the whole history.
    assert _without_tail(next(store.get_cases([case_id]))) == _without_tail(case)
    assert [_without_tail(c) for c in store.stream_cases()] == [_without_tail(case)]
    assert [_without_tail(c) for c in store.corrected_cases()] == [_without_tail(case)]
    assert [len(c["corrections"]) for c in store.cases_with_error_type(case["error_types"][0])] == [CORRECTIONS]

    # A redelivery of a correction whose entry moved out of the case is still a duplicate.
    again = {"case_id": case_id, "corrected_transcript": _text(0), "corrected_by": "reviewer-0"}
    assert record_correction(orjson.dumps(again), "c-0", store).status == "duplicate"
    assert len((store.get_case(case_id) or {})["corrections"]) == CORRECTIONS

    # A restore (create_cases with the whole history, as case_restore.py does) stores it and reads it back.
    restored = FirestoreCaseStore(replace(test_settings, collection_prefix=f"{test_settings.collection_prefix}r_"))
    whole = _without_tail(case)
    assert restored.create_cases([(case_id, whole, case_counters(whole))]) == {}
    assert _without_tail(restored.get_case(case_id)) == whole
    assert restored.create_cases([(case_id, whole, case_counters(whole))]) == {case_id: {}}


def test_a_restore_of_a_history_larger_than_a_commit_is_stored_whole(test_settings: Settings) -> None:
    store = FirestoreCaseStore(test_settings)
    history = [{"corrected_by": f"r{n}", "corrected_at": None, "previous_transcript": _text(n - 1) * 2,
                "corrected_transcript": _text(n) * 2, "error_types": [], "message_id": f"m{n}"}
               for n in range(70)]  # ~14 MB of history: more than one commit carries
    case = {"case_id": "huge", "audio_path": "gs://a/huge.wav", "original_transcript": "X", "corrections": history,
            "corrected_transcript": history[-1]["corrected_transcript"], "corrected": True, "error_types": []}
    small = {"case_id": "small", "audio_path": "gs://a/small.wav", "original_transcript": "Y", "corrections": []}
    assert store.create_cases([(c["case_id"], c, case_counters(c)) for c in (case, small)]) == {}
    assert store.get_case("huge") == case and store.get_case("small") == small
    assert summarize(store.counter_shards())["total_cases"] == 2


def test_model_versions_are_counted_outside_the_shards(test_settings: Settings) -> None:
    store = FirestoreCaseStore(test_settings)
    versions = [f"model/{n}" for n in range(40)] + ["v" * 1400]
    for n, version in enumerate(versions):
        event = {"audio_path": f"gs://stt-audio/m/{n}.wav", "original_transcript": "A", "model_version": version}
        assert record_failure(orjson.dumps(event), f"m-{n}", store).status == "stored"
    # An import of 499 cases of one model version: one commit's worth of cases, besides their counters.
    items = []
    for n in range(499):
        case = {"case_id": f"bulk-{n}", "audio_path": f"gs://a/{n}.wav", "original_transcript": "B",
                "model_version": "bulk_v1", "corrections": []}
        items.append((case["case_id"], case, case_counters(case)))
    assert store.create_cases(items) == {}

    client = firestore.Client(project=test_settings.project)
    shards = [s.to_dict() or {} for s in client.collection(test_settings.collection(SHARDS)).stream()]
    assert shards and len(shards) <= N_SHARDS
    assert all("model_versions" not in shard for shard in shards)  # no key per model version in any shard
    per_model = list(client.collection(test_settings.collection(MODEL_COUNTERS)).stream())
    assert len(per_model) <= len(versions) + N_SHARDS  # the import: one document per commit it took

    statistics = summarize(store.counter_shards())
    assert statistics["total_failed_cases"] == len(versions) + 499
    assert statistics["cases_by_model_version"] == {**{version: 1 for version in versions}, "bulk_v1": 499}


def test_statistics_add_counts_kept_in_shards_before_the_per_model_counters(test_settings: Settings) -> None:
    store = FirestoreCaseStore(test_settings)
    store.shards.document("3").set({"total_cases": 2, "model_versions": {"old_v1": 2}})
    event = {"audio_path": "gs://stt-audio/m/x.wav", "original_transcript": "A", "model_version": "old_v1"}
    record_failure(orjson.dumps(event), "m-x", store)
    assert summarize(store.counter_shards())["cases_by_model_version"] == {"old_v1": 3}
