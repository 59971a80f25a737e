"""DataManager and the Firestore adapter on the real emulator, each test under its own collection prefix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from google.cloud import storage

from shared import DataManager
from shared.adapters.firestore_cases import FirestoreCaseStore
from shared.config import Settings
from shared.domain.cases import CounterDelta
from shared.errors import InvalidEvent
from stack.local_stack import StackInfo

pytestmark = pytest.mark.emulators


@pytest.fixture
def manager(stack: StackInfo, test_settings: Settings) -> DataManager:
    return DataManager(test_settings)


def test_store_and_read_back_with_derived_fields(manager: DataManager) -> None:
    case_id = manager.store_failed_case(
        "gs://stt-audio/2026/utt-1.wav",
        "THIS IS ALL CAPS",
        corrected_transcript="This is all caps",
        error_score=0.8,
        metadata={"confidence": 0.85},
        model_version="whisper_base_v1",
        speaker_id="spk-17",
    )
    case = manager.get_failed_case(case_id)
    assert case is not None
    assert case["metadata"] == {"confidence": 0.85}
    assert case["error_types"] == ["all_caps"]
    assert case["wer"] == 1.0 and case["normalized_wer"] == 0.0
    assert case["created_at"] is not None and case["corrections"] == []
    assert (
        manager.store_failed_case(
            "gs://stt-audio/2026/utt-1.wav",
            "THIS IS ALL CAPS",
            corrected_transcript="This is all caps",
            error_score=0.8,
            metadata={"confidence": 0.85},
            model_version="whisper_base_v1",
            speaker_id="spk-17",
        )
        == case_id
    )
    assert manager.get_statistics()["total_cases"] == 1


def test_invalid_case_is_refused_with_the_reason(manager: DataManager) -> None:
    with pytest.raises(InvalidEvent, match="error_score"):
        manager.store_failed_case("gs://stt-audio/a.wav", "x", error_score=1.5)
    assert manager.get_statistics()["total_cases"] == 0


def test_corrections_history_statistics_and_queries(manager: DataManager) -> None:
    first = manager.store_failed_case(
        "gs://stt-audio/a.wav", "turn left at the night", error_score=0.4, model_version="v1"
    )
    second = manager.store_failed_case(
        "gs://stt-audio/b.wav",
        "PLEASE CALL STELLA",
        error_score=0.6,
        model_version="v2",
        corrected_transcript="Please call Stella",
    )
    case = manager.store_correction(first, "Turn left at the light.", corrected_by="ana")
    case = manager.store_correction(first, "turn left at the light", corrected_by="ben")
    assert [c["corrected_by"] for c in case["corrections"]] == ["ana", "ben"]
    assert case["corrections"][1]["previous_transcript"] == "Turn left at the light."
    assert case["error_types"] == ["substitution"]
    assert manager.get_statistics() == {
        "total_failed_cases": 2,
        "total_cases": 2,
        "corrected_cases": 2,
        "correction_rate": 1.0,
        "error_type_distribution": {"all_caps": 1, "substitution": 1},
        "average_error_score": pytest.approx(0.5),
        "cases_by_model_version": {"v1": 1, "v2": 1},
        "quarantined_events": 0,
    }
    assert [c["case_id"] for c in manager.get_failed_cases_by_error_type("all_caps")] == [second]
    assert {c["case_id"] for c in manager.get_corrected_cases()} == {first, second}
    with pytest.raises(KeyError, match="no case"):
        manager.store_correction("missing", "x")


def test_export_to_dataframe_is_typed(manager: DataManager) -> None:
    manager.store_failed_case("gs://stt-audio/a.wav", "hello", corrected_transcript="Hello.", duration_s=1.5)
    manager.store_failed_case("gs://stt-audio/b.wav", "bye")
    frame = manager.export_to_dataframe()
    assert len(frame) == 2
    assert frame["wer"].dtype == "Float64"
    assert frame["corrected"].dtype == "boolean"
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert frame["audio_path"].dtype == "string"
    assert frame.set_index("audio_path").loc["gs://stt-audio/b.wav", "wer"] is pd.NA


def test_batch_create_reports_existing_and_counts_only_new(stack: StackInfo, test_settings: Settings) -> None:
    store = FirestoreCaseStore(test_settings)
    one = CounterDelta(total_cases=1)
    assert store.create_cases([("a", {"x": 1}, one), ("b", {"x": 2}, one)]) == {}
    assert store.create_cases([("b", {"x": 3}, one), ("c", {"x": 4}, one)]) == {"b": {}}
    assert store.get_case("b") == {"x": 2}
    assert DataManager(test_settings).get_statistics()["total_cases"] == 3


def test_oversize_reject_is_kept_whole_in_the_bucket(stack: StackInfo, test_settings: Settings) -> None:
    from shared.bootstrap import adapters

    store = adapters(test_settings).cases
    raw = b"x" * 2_000_000
    assert store.quarantine("big-1", raw, "payload is too large", source="test")
    kept = store.quarantined()[0]
    assert kept["raw_truncated"] is True and kept["size_bytes"] == 2_000_000
    assert store.overflow is not None
    name = kept["raw_uri"].removeprefix(f"gs://{test_settings.bucket}/")
    assert store.overflow.get(name) == raw
    assert not store.quarantine("big-1", raw, "again", source="test")


def test_the_seeds_constructor_and_keys(
    stack: StackInfo, test_settings: Settings, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's DataManager usage (a gs:// audio path until scheme-less paths resolve): gcs_bucket_name picks
    the bucket its exports go to, the local directory is only recorded, and the seed's keys are there."""
    monkeypatch.chdir(tmp_path)
    bucket = storage.Client(project=test_settings.project).create_bucket(f"{namespace}-seed")
    data_manager = DataManager(local_storage_dir="data/failed_cases", use_gcs=True, gcs_bucket_name=bucket.name,
                               settings=test_settings)
    case_id = data_manager.store_failed_case(
        audio_path="gs://stt-audio/sample.wav",
        original_transcript="THIS IS ALL CAPS",
        corrected_transcript="This is proper text",
        error_types=["all_caps"],
        error_score=0.8,
        metadata={"confidence": 0.85},
    )
    data_manager.store_failed_case(audio_path="gs://stt-audio/other.wav", original_transcript="uncorrected")
    stats = data_manager.get_statistics()
    assert f"Total cases: {stats['total_failed_cases']}" == "Total cases: 2"
    assert f"Correction rate: {stats['correction_rate']:.2%}" == "Correction rate: 50.00%"
    assert data_manager.get_failed_case(case_id)["metadata"] == {"confidence": 0.85}  # type: ignore[index]
    assert data_manager.sync_to_gcs()["cases"] == 2
    assert bucket.blob("learning_data/failed_cases.jsonl").exists()
    assert data_manager.local_storage_dir == Path("data/failed_cases") and list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="source of truth"):
        DataManager(local_storage_dir="data/failed_cases", use_gcs=False)


def test_the_seeds_relative_audio_path_and_a_teams_own_label(manager: DataManager) -> None:
    """The seed's `store_failed_case(audio_path="audio/sample.wav", ..., error_types=["accent"])` as written."""
    case_id = manager.store_failed_case(
        audio_path="audio/sample.wav", original_transcript="the whether is nice today",
        corrected_transcript="the weather is nice today", error_types=["accent", "substitution"],
        error_score=0.2,
    )
    case = manager.get_failed_case(case_id)
    assert case is not None
    bucket = manager.adapters.settings.bucket
    assert (case["audio_path"], case["audio_path_given"]) == (f"gs://{bucket}/audio/sample.wav", "audio/sample.wav")
    assert case["error_types"] == ["accent", "substitution"]
    assert manager.get_statistics()["error_type_distribution"]["accent"] == 1


def test_the_firestore_database_is_a_setting(stack: StackInfo, test_settings: Settings, namespace: str) -> None:
    """CONTRACT: every name, the `(default)` database too, is a default a setting can change."""
    from dataclasses import replace

    from google.cloud import firestore

    elsewhere = replace(test_settings, firestore_database=f"{namespace}-db")
    assert Settings.from_env(elsewhere.to_env()).firestore_database == f"{namespace}-db"
    case_id = DataManager(elsewhere).store_failed_case("gs://stt-audio/db.wav", "HELLO")
    cases = test_settings.collection("failed_cases")
    named = firestore.Client(project=test_settings.project, database=f"{namespace}-db")
    assert named.collection(cases).document(case_id).get().exists
    assert not firestore.Client(project=test_settings.project).collection(cases).document(case_id).get().exists
    assert DataManager(elsewhere).get_statistics()["total_cases"] == 1
    assert DataManager(test_settings).get_statistics()["total_cases"] == 0
