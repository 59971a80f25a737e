"""The `api` HTTP function of the stack, called as `curl -d '{...}' $STT_API_URL` would."""

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
