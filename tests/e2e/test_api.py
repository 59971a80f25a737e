"""The `api` HTTP function of the stack, called as `curl -d '{...}' $STT_API_URL` would."""

from pathlib import Path

import pytest
import requests

from shared import DataManager
from stack.local_stack import StackInfo

pytestmark = pytest.mark.emulators


def test_api_serves_the_seed_operations(stack: StackInfo, namespace: str) -> None:
    url = stack.env["STT_API_URL"]
    case_id = DataManager(stack.settings).store_failed_case(
        f"gs://stt-audio/{namespace}.wav", "HELLO WORLD", corrected_transcript="Hello world"
    )
    answer = requests.post(url, json={"op": "get_failed_case", "case_id": case_id}, timeout=30)
    assert answer.status_code == 200
    case = answer.json()["result"]
    assert case["error_types"] == ["all_caps"] and case["created_at"].endswith("+00:00")

    stats = requests.post(url, json={"op": "get_statistics"}, timeout=30).json()["result"]
    assert stats["total_cases"] >= 1 and "error_type_distribution" in stats

    trend = requests.post(url, json={"op": "get_performance_trend", "metric": "wer"}, timeout=30)
    assert trend.status_code == 200 and "improvement_percent" in trend.json()["result"]

    unknown = requests.post(url, json={"op": "nope"}, timeout=30)
    assert unknown.status_code == 400 and "unknown op 'nope'" in unknown.json()["error"]
    assert requests.post(url, json={"op": "get_failed_case", "case_id": "missing"}, timeout=30).status_code == 404
    assert requests.get(url, timeout=30).status_code == 405


def test_api_serves_datasets_and_versions(stack: StackInfo, namespace: str, tmp_path: Path) -> None:
    from shared import FinetuningDatasetPipeline

    manager = DataManager(stack.settings)
    for i in range(12):
        manager.store_failed_case(f"gs://stt-audio/{namespace}/{i}.wav", f"ITEM {i} IS HERE", f"Item {i} is here.",
                                  error_score=0.95, speaker_id=f"{namespace}-{i % 4}")
    pipeline = FinetuningDatasetPipeline(stack.settings, output_dir=tmp_path)  # its local copies go there
    first = pipeline.prepare_dataset(min_error_score=0.95, create_version=True, version_name=f"{namespace}-a")
    second = pipeline.prepare_dataset(min_error_score=0.95, create_version=True, version_name=f"{namespace}-b",
                                      parent_version=first["version_id"])
    url = stack.env["STT_API_URL"]

    def call(body: dict) -> requests.Response:
        return requests.post(url, json=body, timeout=60)

    listed = call({"op": "list_versions", "parent_version": first["version_id"]}).json()["result"]
    assert [v["version_id"] for v in listed] == [second["version_id"]]
    compared = call({"op": "compare_versions", "version_id1": first["version_id"], "version_id2": second["version_id"]})
    assert compared.status_code == 200
    assert "descendant" in compared.json()["result"]["lineage_relation"]
    valid = call({"op": "validate_dataset", "dataset_id": second["dataset_id"]}).json()["result"]
    assert valid["is_valid"], valid["issues"]
    rolled = call({"op": "rollback_to_version", "version_id": first["version_id"]}).json()["result"]
    assert rolled["current_version"] == first["version_id"]

    assert call({"op": "get_version", "version_id": "v_nope"}).status_code == 404
    assert call({"op": "rollback_to_version", "version_id": "v_nope"}).status_code == 404
    bad = call({"op": "compare_versions", "version_id1": first["version_id"]})
    assert bad.status_code == 400 and "version_id2" in bad.json()["error"]
