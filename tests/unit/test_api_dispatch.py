"""The api function's dispatch: ops to the seed's methods, and a 4xx that says what is wrong."""

from datetime import UTC, datetime
from typing import Any

import orjson

from shared.api import OPERATIONS, dispatch
from shared.config import Settings
from shared.errors import InvalidEvent, NotFound


class FakeDataManager:
    def get_statistics(self) -> dict[str, Any]:
        return {"total_cases": 3, "at": datetime(2026, 11, 27, tzinfo=UTC), "raw": b"\x00\xff"}

    def get_failed_case(self, case_id: str) -> dict[str, Any] | None:
        return {"case_id": case_id} if case_id == "known" else None

    def store_correction(self, case_id: str, corrected_transcript: str, corrected_by: str | None = None) -> dict:
        raise NotFound(f"no case with case_id {case_id!r}")

    def store_failed_case(self, audio_path: str, original_transcript: str, **fields: Any) -> str:
        raise InvalidEvent("audio_path must be a gs://bucket/object URI")


FAKES = {"DataManager": FakeDataManager()}
SETTINGS = Settings()


def test_an_op_runs_and_its_result_is_json() -> None:
    answer = dispatch({"op": "get_statistics"}, SETTINGS, FAKES)
    assert answer.status == 200
    assert orjson.loads(answer.json()) == {
        "op": "get_statistics",
        "result": {"total_cases": 3, "at": "2026-11-27T00:00:00+00:00", "raw": "AP8="},
    }


def test_unknown_op_names_the_known_ones() -> None:
    answer = dispatch({"op": "drop_everything"}, SETTINGS, FAKES)
    assert answer.status == 400
    assert "unknown op 'drop_everything'" in answer.body["error"]
    assert "get_statistics" in answer.body["error"]


def test_body_must_be_an_object() -> None:
    assert dispatch(["get_statistics"], SETTINGS, FAKES).status == 400
    assert dispatch(None, SETTINGS, FAKES).body["error"].startswith("the body must be a JSON object")


def test_bad_arguments_answer_400_with_the_signature() -> None:
    answer = dispatch({"op": "get_failed_case", "case_id": "x", "case": "y"}, SETTINGS, FAKES)
    assert answer.status == 400
    assert "unexpected keyword argument 'case'" in answer.body["error"]
    assert "get_failed_case(case_id: str)" in answer.body["error"]
    missing = dispatch({"op": "get_failed_case"}, SETTINGS, FAKES)
    assert missing.status == 400 and "case_id" in missing.body["error"]


def test_missing_case_is_404_and_invalid_input_400() -> None:
    assert dispatch({"op": "get_failed_case", "case_id": "nope"}, SETTINGS, FAKES).status == 404
    assert dispatch({"op": "get_failed_case", "case_id": "known"}, SETTINGS, FAKES).body["result"] == {
        "case_id": "known"
    }
    gone = dispatch({"op": "store_correction", "case_id": "x", "corrected_transcript": "y"}, SETTINGS, FAKES)
    assert (gone.status, gone.body["error"]) == (404, "no case with case_id 'x'")
    bad = dispatch({"op": "store_failed_case", "audio_path": "/etc", "original_transcript": "x"}, SETTINGS, FAKES)
    assert (bad.status, bad.body["error"]) == (400, "audio_path must be a gs://bucket/object URI")


def test_every_op_is_a_method_of_its_class() -> None:
    import shared

    for op, class_name in OPERATIONS.items():
        assert callable(getattr(getattr(shared, class_name), op)), f"{class_name}.{op}"


def test_a_bad_since_or_report_rule_is_a_400_that_says_what_is_wrong_never_a_500() -> None:
    from shared.bootstrap import Adapters
    from shared.integrated_system import IntegratedDataManagementSystem
    from shared.metadata_tracker import MetadataTracker
    from tests.unit.test_metrics_service import NOW, FakeStore

    adapters = Adapters(SETTINGS, metrics=FakeStore())
    tracker = MetadataTracker(adapters=adapters, clock=lambda: NOW)
    instances = {"MetadataTracker": tracker, "IntegratedDataManagementSystem": IntegratedDataManagementSystem(
        adapters=adapters, local_copies=False)}
    for op in ("get_performance_trend", "get_learning_progress", "get_inference_stats"):
        answer = dispatch({"op": op, "since": "last tuesday"}, SETTINGS, instances)
        assert answer.status == 400, (op, answer.body)
        assert answer.body["error"] == ("since must be an ISO 8601 time such as 2026-11-27T10:00:00Z or "
                                        "2026-11-27, got 'last tuesday'")
        assert dispatch({"op": op, "since": "2026-11-27"}, SETTINGS, instances).status == 200
    unknown = dispatch({"op": "generate_performance_report", "windw": 3}, SETTINGS, instances)
    assert unknown.status == 400 and "unexpected keyword argument 'windw'" in unknown.body["error"]
    assert "window: 'int' = 5" in unknown.body["error"]  # the signature names the rule's parameters
    typed = dispatch({"op": "generate_performance_report", "window": "3"}, SETTINGS, instances)
    assert typed.status == 400 and "window must be int" in typed.body["error"]
    ruled = dispatch({"op": "generate_performance_report", "window": 3, "threshold": 0.1, "min_history": 2,
                      "regression_metrics": ["wer"]}, SETTINGS, instances)
    assert ruled.status == 200 and ruled.body["result"]["anomaly_rule"]["window"] == 3
