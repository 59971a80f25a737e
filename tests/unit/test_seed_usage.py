"""The seed document's Usage sections against the Python API's classes on fakes: its keys, its shapes and (as
far as the fakes reach) its calls. The same calls on the emulators are in tests/integration/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from shared.api import dispatch
from shared.bootstrap import Adapters
from shared.config import Settings
from shared.data_manager import DataManager
from shared.domain import bucket_layout as layout
from shared.domain.metric_records import UNVERSIONED
from shared.domain.versions import add_version, empty_registry, file_entry, new_version
from shared.errors import BadInput, InvalidMetricRecord
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.integrated_system import IntegratedDataManagementSystem
from shared.metadata_tracker import MetadataTracker
from shared.version_control import DataVersionControl
from tests.unit.fake_dataset_bucket import FakeBucket
from tests.unit.test_metrics_service import NOW, FakeStore

SETTINGS = Settings()
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def registry_with(*scores: float) -> dict[str, Any]:
    """A registry of one version per score, each the child of the one before."""
    registry, parent = empty_registry(), None
    for n, score in enumerate(scores):
        files = {f"{split}.jsonl": file_entry(f"{n}-{split}".encode(), 3) for split in ("train", "val", "test")}
        report = {"passed": score >= 0.9, "quality_metrics": {"overall_score": score, "metrics": {}}}
        entry = new_version(f"v{n}", f"ds{n}", f"gs://b/finetuning_datasets/ds{n}/", files, {"n": n}, report,
                            parent, T0 + timedelta(days=n))
        registry, _ = add_version(registry, entry, T0 + timedelta(days=n))
        parent = f"v{n}"
    return registry


def version_control_over(registry: dict[str, Any]) -> DataVersionControl:
    bucket = FakeBucket()
    bucket.put(layout.REGISTRY, orjson.dumps(registry), "application/json")
    return DataVersionControl(adapters=Adapters(SETTINGS, bucket=bucket))


def test_versions_read_as_the_seed_reads_them_and_answer_the_same_json_through_the_api() -> None:
    registry = registry_with(0.88, 0.93)
    control = version_control_over(registry)
    versions = control.list_versions(min_quality_score=0.9)
    assert [f"{v.version_id}: {v.checksum}" for v in versions] == [f"v1: {registry['versions']['v1']['checksum']}"]
    assert control.get_version("v0").parent_version is None  # type: ignore[union-attr]
    answer = dispatch({"op": "list_versions"}, SETTINGS, {"DataVersionControl": control})
    assert answer.status == 200
    plain = [registry["versions"]["v1"], registry["versions"]["v0"]]
    assert answer.json() == orjson.dumps({"op": "list_versions", "result": plain})


def test_a_min_quality_score_outside_0_to_1_is_a_400_naming_the_range() -> None:
    control = version_control_over(registry_with(0.88, 0.93))
    answer = dispatch({"op": "list_versions", "min_quality_score": 90}, SETTINGS, {"DataVersionControl": control})
    assert answer.status == 400
    assert "min_quality_score must be between 0 and 1" in answer.body["error"]


def test_compare_versions_has_the_seeds_quality_improvement() -> None:
    control = version_control_over(registry_with(0.88, 0.93))
    comparison = control.compare_versions("v0", "v1")
    assert f"{comparison['quality_comparison']['improvement']:.2f}" == "0.05"
    assert comparison["quality_comparison"]["version2_passed"] is True


# -- metrics: the seed's record_performance(wer=..., ...) and a training run's trend point -------------------


def tracker_and_system() -> tuple[MetadataTracker, IntegratedDataManagementSystem, FakeStore]:
    store = FakeStore()
    adapters = Adapters(SETTINGS, metrics=store)
    tracker = MetadataTracker(adapters=adapters, clock=lambda: NOW)
    return tracker, IntegratedDataManagementSystem(adapters=adapters), store


def test_record_performance_without_a_version_takes_the_current_one_else_unversioned() -> None:
    tracker, _, store = tracker_and_system()
    assert tracker.current_model_version() is None
    tracker.record_performance(wer=0.12, cer=0.06, error_rate=0.15, correction_rate=0.85, inference_time=0.5,
                               recorded_at=NOW - timedelta(hours=3))
    tracker.record_model_version("whisper_base_v1", "whisper-base", recorded_at=NOW - timedelta(hours=2))
    tracker.record_model_version("whisper_base_v0", "whisper-base", recorded_at=NOW - timedelta(days=9))
    assert tracker.current_model_version() == "whisper_base_v1"  # the latest registration, not the last call
    tracker.record_performance(wer=0.10, cer=0.05, recorded_at=NOW - timedelta(hours=1))
    tracker.record_performance(wer=0.30, cer=0.2, model_version="whisper_base_v0", recorded_at=NOW)
    trend = tracker.get_performance_trend("wer")
    assert [(p["model_version"], p["value"]) for p in trend["points"]] == [
        (UNVERSIONED, 0.12), ("whisper_base_v1", 0.10), ("whisper_base_v0", 0.30)]
    # The point without error_rate is skipped by that metric's trend, not given a made-up value.
    error_rate = tracker.get_performance_trend("error_rate")
    assert error_rate["count"] == 1 and error_rate["skipped"] == 2
    assert [d["error_rate"] for d in store.docs["performance"].values()].count(None) == 2
    tracker.record_learning_progress("finetune", epoch=1, loss=0.7)
    tracker.record_inference_stats(requests=3)
    assert {d["model_version"] for k in ("learning_progress", "inference_stats") for d in store.docs[k].values()} \
        == {"whisper_base_v1"}


def test_a_training_run_leaves_a_trend_point_and_keeps_the_registration() -> None:
    tracker, system, store = tracker_and_system()
    ids = system.record_training_performance(model_version="whisper_base_v1", wer=0.12, cer=0.06,
                                             training_metadata={"epochs": 10})
    trend = tracker.get_performance_trend("wer", model_version="whisper_base_v1")
    assert trend["count"] == 1 and trend["last"] == 0.12
    point = store.docs["performance"][ids["performance"]]
    assert point["source"] == "training" and point["cer"] == 0.06 and point["inference_time"] is None
    first = store.docs["model_version"][ids["model_version"]]
    assert first["model_name"] == "whisper_base_v1"  # never registered: named after itself, not "unknown"
    assert first["training_metadata"] == {"epochs": 10}

    tracker.record_model_version("whisper_base_v2", "whisper-base", 1000, {"epochs": 10, "batch_size": 16},
                                 {"wer": 0.2}, "ds-7", recorded_at=NOW - timedelta(hours=1))
    later = system.record_training_performance("whisper_base_v2", 0.11, 0.05, {"epochs": 12, "inference_time": 0.4})
    registration = store.docs["model_version"][later["model_version"]]
    assert (registration["model_name"], registration["training_data_size"], registration["dataset_version_id"]) \
        == ("whisper-base", 1000, "ds-7")
    assert registration["training_metadata"] == {"epochs": 12, "batch_size": 16, "inference_time": 0.4}
    assert registration["performance_metrics"] == {"wer": 0.11, "cer": 0.05}
    assert store.docs["performance"][later["performance"]]["inference_time"] == 0.4
    assert tracker.get_model_lineage("whisper_base_v2")["dataset_version_id"] == "ds-7"
    assert tracker.get_performance_trend("wer")["count"] == 2


def test_a_bad_training_figure_stores_neither_record() -> None:
    _, system, store = tracker_and_system()
    with pytest.raises(InvalidMetricRecord, match="error_rate"):
        system.record_training_performance("v1", 0.1, 0.05, {"error_rate": 1.5})
    assert store.docs == {}


# -- constructors: the seed's parameters, with the meaning shared/facade_setup.py gives them ---------------


def test_the_seeds_constructors_build_one_deployment_and_create_nothing_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STT_BUCKET", "from-the-environment")
    data_manager = DataManager(local_storage_dir="data/failed_cases", use_gcs=True,
                               gcs_bucket_name="stt-project-datasets")
    assert data_manager.settings.bucket == data_manager.gcs_bucket_name == "stt-project-datasets"
    assert data_manager.local_storage_dir == Path("data/failed_cases") and data_manager.use_gcs is True
    assert not {"bucket", "cases"} & set(vars(data_manager.adapters))  # no client is made before it is used

    tracker = MetadataTracker(data_manager=data_manager)
    pipeline = FinetuningDatasetPipeline(data_manager=data_manager, output_dir="data/finetuning")
    control = DataVersionControl(data_manager=data_manager, base_dir="data/versions")
    assert tracker.adapters is pipeline.adapters is control.adapters is data_manager.adapters
    assert pipeline.data_manager is data_manager and pipeline.output_dir == Path("data/finetuning")
    assert control.local_storage_dir == control.base_dir == Path("data/versions")
    assert tracker.local_storage_dir == Path("data/metadata")

    # The seed's other forms: settings from the environment, the bucket picked by gcs_bucket_name or not.
    assert MetadataTracker(local_storage_dir="data/metadata", use_gcs=True).settings.bucket == "from-the-environment"
    assert DataVersionControl(local_storage_dir="data/versions", use_gcs=True).local_storage_dir == Path(
        "data/versions")
    alone = FinetuningDatasetPipeline(output_dir="out")
    assert alone.data_manager.adapters is alone.adapters  # made on first use, on the same deployment

    system = IntegratedDataManagementSystem(base_dir="data/production", use_gcs=True,
                                            gcs_bucket_name="gs://stt-project-datasets/")
    assert system.settings.bucket == "stt-project-datasets"
    parts = (system.data_manager, system.metadata_tracker, system.finetuning_pipeline, system.version_control)
    assert all(part.adapters is system.adapters for part in parts)
    assert system.metadata_tracker.data_manager is system.data_manager
    assert system.finetuning_pipeline.output_dir == Path("data/production/finetuning")
    assert system.version_control.local_storage_dir == Path("data/production/versions")
    assert system.data_manager.local_storage_dir == Path("data/production/failed_cases")
    assert list(tmp_path.iterdir()) == []


def test_gcs_bucket_name_overrides_only_the_bucket() -> None:
    settings = Settings(project="demo-x", collection_prefix="p_")
    manager = DataManager(gcs_bucket_name="other-bucket", settings=settings)
    assert manager.settings == Settings(project="demo-x", collection_prefix="p_", bucket="other-bucket")
    assert DataManager(gcs_bucket_name=settings.bucket, settings=settings).settings == settings


@pytest.mark.parametrize("name", ["", "gs://b/object", "Upper", "a", "gs://"])
def test_a_bucket_name_that_is_none_is_refused(name: str) -> None:
    with pytest.raises(BadInput, match="is not a bucket name"):
        DataManager(gcs_bucket_name=name, settings=SETTINGS)


@pytest.mark.parametrize("make", [
    lambda: DataManager(local_storage_dir="data/failed_cases", use_gcs=False),
    lambda: MetadataTracker(local_storage_dir="data/metadata", use_gcs=False),
    lambda: FinetuningDatasetPipeline(output_dir="data/finetuning", use_gcs=False),
    lambda: DataVersionControl(use_gcs=False),
    lambda: IntegratedDataManagementSystem(use_gcs=False),
])
def test_use_gcs_false_is_refused_saying_why_and_what_to_do(make: Any) -> None:
    with pytest.raises(BadInput, match=r"use_gcs=False\) is not supported") as refused:
        make()
    assert "source of truth" in str(refused.value) and "make up" in str(refused.value)


def test_settings_and_adapters_still_work_and_conflicts_are_refused() -> None:
    adapters = Adapters(SETTINGS, metrics=FakeStore())
    assert DataManager(SETTINGS).settings == SETTINGS  # the old positional form
    assert FinetuningDatasetPipeline(SETTINGS).settings == SETTINGS
    assert IntegratedDataManagementSystem(SETTINGS).base_dir == Path("data")
    assert MetadataTracker(adapters=adapters).adapters is adapters
    assert DataVersionControl(settings=SETTINGS).data_manager is None
    manager = DataManager(adapters=adapters)
    conflicts = [
        (lambda: DataManager(SETTINGS, settings=SETTINGS), "settings given twice"),
        (lambda: MetadataTracker(data_manager=manager, settings=SETTINGS), "data_manager or settings/adapters"),
        (lambda: MetadataTracker(data_manager=manager, gcs_bucket_name="elsewhere"), "differs from the bucket"),
        (lambda: DataVersionControl(adapters=adapters, gcs_bucket_name="elsewhere"), "differs from the bucket"),
        (lambda: DataVersionControl(settings=Settings(project="demo-y"), adapters=adapters), "different deploy"),
        (lambda: DataVersionControl("a", base_dir="b"), "give one of them"),
        (lambda: MetadataTracker(data_manager="dm"), "data_manager must be a DataManager"),  # type: ignore[arg-type]
    ]
    for make, message in conflicts:
        with pytest.raises(BadInput, match=message):
            make()
    assert DataVersionControl("a", base_dir="a").base_dir == Path("a")
    assert MetadataTracker(data_manager=manager, gcs_bucket_name=SETTINGS.bucket).adapters is adapters


# -- the integrated system's build takes every parameter of the pipeline's (and of a build request) -------------


def test_prepare_finetuning_dataset_takes_every_parameter_of_prepare_dataset() -> None:
    import inspect

    from tests.unit.fake_dataset_bucket import FakeCases
    from tests.unit.test_dataset_build_service import make_cases

    pipeline = set(inspect.signature(FinetuningDatasetPipeline.prepare_dataset).parameters)
    integrated = set(inspect.signature(IntegratedDataManagementSystem.prepare_finetuning_dataset).parameters)
    assert pipeline - integrated == set()
    cases = [{**case, "duration_s": 1.0 + n % 4} for n, case in enumerate(make_cases())]  # 1, 2, 3, 4 s
    system = IntegratedDataManagementSystem(adapters=Adapters(SETTINGS, bucket=FakeBucket(), cases=FakeCases(cases)),
                                            local_copies=False)
    info = system.prepare_finetuning_dataset(max_duration_s=2.5, balance_error_types=False, create_version=False)
    assert info["total_samples"] == 20  # of 40: the 3 s and 4 s ones are left out
