"""sync_all_from_gcs on fakes: each part (the cases, each metric export) restored when it was exported and
reported absent when not; refused only when nothing at all was exported (the wipe-and-restore of both parts on
the emulators is in tests/integration)."""

from __future__ import annotations

import orjson
import pytest

from shared import IntegratedDataManagementSystem
from shared.api import dispatch
from shared.bootstrap import Adapters
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.errors import NotFound
from tests.unit.fake_case_store import FullCaseStore
from tests.unit.fake_dataset_bucket import FakeBucket
from tests.unit.test_case_exports import World
from tests.unit.test_metrics_service import FakeStore

SETTINGS = Settings()
STATS = {"record_id": "r1", "kind": "inference_stats", "model_version": "v1", "requests": 3,
         "recorded_at": "2026-11-30T12:00:00+00:00"}


def system_over(bucket: FakeBucket) -> tuple[IntegratedDataManagementSystem, FullCaseStore, FakeStore]:
    cases, metrics = FullCaseStore(), FakeStore()
    adapters = Adapters(SETTINGS, cases=cases, metrics=metrics, bucket=bucket)
    return IntegratedDataManagementSystem(adapters=adapters, local_copies=False), cases, metrics


def test_metrics_are_restored_when_the_cases_were_never_exported() -> None:
    bucket = FakeBucket()
    bucket.put(layout.INFERENCE_STATS, orjson.dumps(STATS) + b"\n")
    system, cases, metrics = system_over(bucket)

    result = system.sync_all_from_gcs()

    assert result["learning_data"] == {"source": bucket.uri(layout.FAILED_CASES), "status": "absent"}
    assert result["metadata"]["inference_stats"] | {"source": None} == {
        "source": None, "status": "restored", "records": 1, "restored": 1, "already_stored": 0}
    assert result["metadata"]["performance"]["status"] == "absent"
    assert bucket.uri(layout.FAILED_CASES) in result["absent"]
    assert bucket.uri(layout.INFERENCE_STATS) not in result["absent"]
    assert "r1" in metrics.docs["inference_stats"] and cases.cases == {}


def test_cases_are_restored_when_no_metric_was_exported() -> None:
    world = World(6)
    world.export()
    system, cases, _ = system_over(world.bucket)

    result = system.sync_all_from_gcs()

    assert result["learning_data"]["status"] == "restored" and result["learning_data"]["restored"] == 6
    assert set(cases.cases) == set(world.store.cases)
    assert {r["status"] for r in result["metadata"].values()} == {"absent"}
    assert len(result["absent"]) == len(result["metadata"])


def test_nothing_exported_is_refused_saying_to_export_first() -> None:
    system, _, _ = system_over(FakeBucket())
    with pytest.raises(NotFound, match=r"nothing to restore: .*; run sync_all_to_gcs first"):
        system.sync_all_from_gcs()
    answer = dispatch({"op": "sync_all_from_gcs"}, SETTINGS, {"IntegratedDataManagementSystem": system})
    assert answer.status == 404 and "run sync_all_to_gcs first" in answer.body["error"]
