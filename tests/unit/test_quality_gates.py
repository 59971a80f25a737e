"""Quality gates that gate (issue #14): thresholds from a request, an instance or the deployment; a build whose
check fails is built and reported but versioned only when its request allows it (flagged)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.bootstrap import Adapters
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.dataset_quality import QualityThresholds
from shared.domain.dataset_request import BuildRequest
from shared.errors import BadInput, QualityGateFailed
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.integrated_system import IntegratedDataManagementSystem
from shared.services.dataset_builds import build_dataset
from shared.services.version_registry import read_registry
from shared.version_control import DataVersionControl
from tests.unit.fake_dataset_bucket import FakeBucket, FakeCases
from tests.unit.test_dataset_build_service import T0, make_cases

SETTINGS = Settings()


def cases_with_one_odd_audio() -> list[dict[str, Any]]:
    """40 good cases, one of which has no audio extension: consistency 39/40 = 0.975 (passes the defaults)."""
    cases = make_cases()
    cases[0] = {**cases[0], "audio_path": "gs://stt-audio/000.txt"}
    return cases


def build(bucket: FakeBucket, dataset_id: str, thresholds: QualityThresholds | None = None,
          **request: Any) -> dict[str, Any]:
    return build_dataset(BuildRequest(version_name=dataset_id, **request), dataset_id, "test",
                         FakeCases(cases_with_one_odd_audio()), bucket, T0, thresholds=thresholds)


def test_a_build_that_fails_its_thresholds_is_built_and_reported_but_not_versioned() -> None:
    bucket = FakeBucket()
    info = build(bucket, "strict", quality_thresholds={"min_consistency": 1.0})
    assert info["total_samples"] == 40 and info["quality_passed"] is False and "version_id" not in info
    gate = info["quality_gate"]
    assert gate["version"] == "refused" and gate["thresholds"]["min_consistency"] == 1.0
    assert "consistency 0.9750 is below the minimum 1.0000" in gate["message"]
    assert "allow_failed_quality" in gate["message"]
    assert bucket.get(layout.REGISTRY) is None
    metadata = orjson.loads(bucket.get(layout.dataset_prefix("strict") + layout.DATASET_METADATA) or b"")
    assert metadata["quality_report"]["passed"] is False  # the dataset is there, its report says why


def test_allow_failed_quality_registers_the_version_flagged() -> None:
    bucket = FakeBucket()
    info = build(bucket, "allowed", quality_thresholds={"min_consistency": 1.0}, allow_failed_quality=True)
    assert info["quality_gate"]["version"] == "registered_flagged"
    entry = read_registry(bucket)["versions"][info["version_id"]]
    assert entry["quality_failed"] is True and entry["quality_report"]["passed"] is False
    card = (bucket.get(layout.dataset_prefix("allowed") + "README.md") or b"").decode()
    assert "registered although its quality check failed" in card


def test_the_deployment_default_applies_and_a_request_overrides_it() -> None:
    bucket = FakeBucket()
    strict = QualityThresholds(min_consistency=1.0)
    assert build(bucket, "by-default", strict)["quality_gate"]["version"] == "refused"
    relaxed = build(bucket, "by-request", strict, quality_thresholds={"min_consistency": 0.9})
    assert relaxed["quality_gate"]["version"] == "registered" and "version_id" in relaxed
    assert build(bucket, "seed-defaults")["quality_gate"]["passed"] is True


def test_settings_carry_the_default_thresholds_from_the_environment() -> None:
    settings = Settings.from_env({"STT_MIN_CONSISTENCY": "1", "STT_MIN_OVERALL_SCORE": "0.5"})
    assert settings.quality_thresholds() == QualityThresholds(min_consistency=1.0, min_overall_score=0.5)
    assert Settings().quality_thresholds() == QualityThresholds()
    with pytest.raises(BadInput, match="min_validity must be a number in"):
        Settings(min_validity=1.5)


def built_world(thresholds: dict[str, float] | None = None) -> tuple[FakeBucket, Adapters]:
    bucket = FakeBucket()
    build(bucket, "ds", create_version=False)
    return bucket, Adapters(SETTINGS, bucket=bucket, cases=FakeCases(cases_with_one_odd_audio()))


def test_the_instances_quality_thresholds_gate_checks_validations_and_versions() -> None:
    bucket, adapters = built_world()
    control = DataVersionControl(adapters=adapters)
    pipeline = FinetuningDatasetPipeline(adapters=adapters, local_copies=False)
    assert control.quality_thresholds == QualityThresholds().as_dict()
    assert control.check_quality("ds")["passed"] and pipeline.validate_dataset("ds")["is_valid"]

    control.quality_thresholds = {"min_completeness": 0.9, "min_consistency": 1.0, "min_validity": 0.9,
                                  "min_overall_score": 0.85}  # the seed's troubleshooting form
    report = control.check_quality("ds")
    assert report["passed"] is False and report["thresholds"]["min_consistency"] == 1.0
    with pytest.raises(QualityGateFailed, match=r"consistency 0\.9750 is below the minimum 1\.0000"):
        control.create_version("ds", "strict")
    assert read_registry(bucket)["versions"] == {}
    version_id = control.create_version("ds", "strict", allow_failed_quality=True)
    assert control.get_version(version_id).quality_failed is True  # type: ignore[union-attr]

    control.quality_thresholds["min_consistency"] = 0.5  # a changed key counts on the next call
    assert control.check_quality("ds")["passed"] is True

    pipeline.quality_thresholds = {"min_consistency": 1.0}  # a key left out keeps the deployment's value
    validation = pipeline.validate_dataset("ds")
    assert validation["is_valid"] is False
    assert any("consistency 0.9750 is below" in issue for issue in validation["issues"])


def test_bad_thresholds_are_refused_when_assigned() -> None:
    control = DataVersionControl(settings=SETTINGS)
    for bad, message in [({"min_valid": 0.9}, "unknown quality threshold min_valid"),
                         ({"min_validity": 2}, "min_validity must be a number in"),
                         ([0.9], "must be a dict")]:
        with pytest.raises(BadInput, match=message):
            control.quality_thresholds = bad


def test_the_integrated_systems_pipeline_and_version_control_share_one_setting() -> None:
    _, adapters = built_world()
    system = IntegratedDataManagementSystem(adapters=adapters, local_copies=False)
    system.version_control.quality_thresholds = {"min_consistency": 1.0}
    assert system.finetuning_pipeline.quality_thresholds == {"min_consistency": 1.0}
    assert system.finetuning_pipeline.validate_dataset("ds")["is_valid"] is False
    info = system.prepare_finetuning_dataset(version_name="gated", balance_error_types=False)
    assert info["quality_gate"]["version"] == "refused" and "version_id" not in info
    info = system.prepare_finetuning_dataset(version_name="gated", balance_error_types=False,
                                             allow_failed_quality=True)
    assert info["quality_gate"]["version"] == "registered_flagged"
