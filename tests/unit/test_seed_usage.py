"""The seed document's Usage sections against the Python API's classes on fakes: its keys, its shapes and (as
far as the fakes reach) its calls. The same calls on the emulators are in tests/integration/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.api import dispatch
from shared.bootstrap import Adapters
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.versions import add_version, empty_registry, file_entry, new_version
from shared.version_control import DataVersionControl
from tests.unit.fake_dataset_bucket import FakeBucket

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


def test_compare_versions_has_the_seeds_quality_improvement() -> None:
    control = version_control_over(registry_with(0.88, 0.93))
    comparison = control.compare_versions("v0", "v1")
    assert f"{comparison['quality_comparison']['improvement']:.2f}" == "0.05"
    assert comparison["quality_comparison"]["version2_passed"] is True
