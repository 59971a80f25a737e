"""DataManager.sync_to_gcs: the cases and their corrections exported to learning_data/ (the seed's layout)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import orjson
from google.cloud import storage

from shared import DataManager
from shared.config import Settings
from stack.local_stack import StackInfo


def test_cases_and_corrections_are_exported_with_checksums(
    stack: StackInfo, test_settings: Settings, namespace: str
) -> None:
    settings = replace(test_settings, bucket=f"{namespace}-export")
    bucket = storage.Client(project=settings.project).create_bucket(settings.bucket)
    manager = DataManager(settings)
    ids = [manager.store_failed_case(f"gs://stt-audio/{namespace}/{i}.wav", f"CASE {i}", error_score=0.5)
           for i in range(3)]
    manager.store_correction(ids[0], "Case 0", corrected_by="ana")
    manager.store_correction(ids[0], "Case zero.", corrected_by="ben")

    summary = manager.sync_to_gcs()

    assert (summary["cases"], summary["corrections"]) == (3, 2)
    cases = [orjson.loads(line) for line in bucket.blob("learning_data/failed_cases.jsonl").download_as_bytes()
             .splitlines()]
    assert sorted(c["case_id"] for c in cases) == sorted(ids)
    corrected = next(c for c in cases if c["case_id"] == ids[0])
    assert corrected["corrected_transcript"] == "Case zero." and corrected["created_at"].endswith("+00:00")
    rows = [orjson.loads(line) for line in bucket.blob("learning_data/corrections.jsonl").download_as_bytes()
            .splitlines()]
    assert [(r["case_id"], r["corrected_by"], r["previous_transcript"]) for r in rows] == [
        (ids[0], "ana", None), (ids[0], "ben", "Case 0")
    ]
    metadata = orjson.loads(bucket.blob("learning_data/metadata.json").download_as_bytes())
    assert metadata["statistics"]["total_cases"] == 3 and metadata["statistics"]["corrected_cases"] == 1
    for name in ("learning_data/failed_cases.jsonl", "learning_data/corrections.jsonl"):
        data = bucket.blob(name).download_as_bytes()
        [segment] = metadata["files"][name]["segments"]
        assert (segment["offset"], segment["bytes"]) == (0, len(data))
        assert segment["sha256"] == hashlib.sha256(data).hexdigest()

    # Another sync appends the case that changed, and only it.
    manager.store_correction(ids[1], "Case one.", corrected_by="ana")
    again = manager.sync_to_gcs()
    assert (again["mode"], again["cases"], again["corrections"], again["lines"]) == ("append", 1, 1, 4)
    lines = bucket.blob("learning_data/failed_cases.jsonl").download_as_bytes().splitlines()
    assert orjson.loads(lines[-1])["corrected_transcript"] == "Case one."
    metadata = orjson.loads(bucket.blob("learning_data/metadata.json").download_as_bytes())
    for name in ("learning_data/failed_cases.jsonl", "learning_data/corrections.jsonl"):
        data = bucket.blob(name).download_as_bytes()
        for segment in metadata["files"][name]["segments"]:
            piece = data[segment["offset"]:segment["offset"] + segment["bytes"]]
            assert hashlib.sha256(piece).hexdigest() == segment["sha256"]
    assert manager.sync_to_gcs()["skipped"] == "nothing changed since"


def test_sync_all_from_gcs_gives_a_wiped_firestore_its_cases_and_statistics_back(
    stack: StackInfo, test_settings: Settings, namespace: str
) -> None:
    from google.cloud import firestore

    from shared import IntegratedDataManagementSystem
    from shared.adapters.firestore_counters import MODEL_COUNTERS, SHARDS

    settings = replace(test_settings, bucket=f"{namespace}-restore")
    storage.Client(project=settings.project).create_bucket(settings.bucket)
    system = IntegratedDataManagementSystem(settings=settings)
    manager = system.data_manager
    ids = [manager.store_failed_case(f"gs://stt-audio/{namespace}/r{i}.wav", f"CASE {i}", error_score=i / 10,
                                     model_version=f"v{i % 2}") for i in range(6)]
    manager.store_correction(ids[0], "Case 0", corrected_by="ana")
    system.sync_all_to_gcs()
    manager.store_correction(ids[0], "Case zero.", corrected_by="ben")
    manager.store_correction(ids[4], "Case four.", corrected_by="ana")
    assert system.sync_all_to_gcs()["learning_data"]["mode"] == "append"
    before = (manager.get_statistics(), {case_id: manager.get_failed_case(case_id) for case_id in ids})

    client = firestore.Client(project=settings.project)
    for name in ("failed_cases", SHARDS, MODEL_COUNTERS):
        client.recursive_delete(client.collection(settings.collection(name)))
    assert manager.get_statistics()["total_cases"] == 0

    restored = system.sync_all_from_gcs()["learning_data"]

    assert (restored["cases"], restored["restored"]) == (6, 6)
    after = (manager.get_statistics(), {case_id: manager.get_failed_case(case_id) for case_id in ids})
    assert after[0] == before[0]
    for case_id in ids:
        assert {k: v for k, v in (after[1][case_id] or {}).items() if k != "tail_at"} == {
            k: v for k, v in (before[1][case_id] or {}).items() if k != "tail_at"}
    assert [c["corrected_by"] for c in (after[1][ids[0]] or {})["corrections"]] == ["ana", "ben"]
    assert system.sync_all_from_gcs()["learning_data"]["restored"] == 0
