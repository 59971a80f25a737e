"""Dataset build requests: defaults, ratios, and a reason that names the problem for every bad request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.domain.dataset_quality import QualityThresholds
from shared.domain.dataset_request import (
    MAX_REQUEST_BYTES,
    BuildRequest,
    parse_build_request,
)
from shared.errors import InvalidBuildRequest

FIELDS = {
    "min_duration_s",
    "max_duration_s",
    "augment",
    "augment_dataset_id",
    "quality_thresholds",
    "allow_failed_quality",
    "min_error_score",
    "include_uncorrected",
    "train_ratio",
    "val_ratio",
    "test_ratio",
    "max_samples",
    "balance_error_types",
    "create_version",
    "version_name",
    "parent_version",
}


def encode(payload: Any) -> bytes:
    """JSON-encode a payload as an uploader would."""
    return json.dumps(payload).encode("utf-8")


def reason_of(raw: bytes) -> str:
    """The InvalidBuildRequest reason for ``raw``; fails the test if it parses."""
    with pytest.raises(InvalidBuildRequest) as caught:
        parse_build_request(raw)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def test_empty_object_asks_for_every_default() -> None:
    request = parse_build_request(b"{}")
    assert request == BuildRequest()
    assert request.min_error_score == 0.5
    assert request.include_uncorrected is False
    assert request.ratios == (0.8, 0.1, 0.1)
    assert request.max_samples is None
    assert request.balance_error_types is True
    assert request.create_version is True
    assert request.version_name is None
    assert request.parent_version is None


def test_every_field_is_read() -> None:
    payload = {
        "min_error_score": 0,
        "include_uncorrected": True,
        "train_ratio": 0.7,
        "val_ratio": 0.2,
        "test_ratio": 0.1,
        "max_samples": 500,
        "balance_error_types": False,
        "create_version": False,
        "version_name": "v2.1_rc-1",
        "parent_version": "v2.0",
        "quality_thresholds": {"min_completeness": 0.9, "min_consistency": None, "min_validity": 1.0,
                               "min_overall_score": 0.5},
        "allow_failed_quality": True,
    }
    request = parse_build_request(encode(payload))
    assert request.model_dump() == {**payload, "min_error_score": 0.0}
    assert request.thresholds(QualityThresholds(min_consistency=0.7)) == QualityThresholds(0.9, 0.7, 1.0, 0.5)
    assert request.ratios == (0.7, 0.2, 0.1)
    assert isinstance(request.min_error_score, float)


def test_ratios_may_put_everything_in_one_split() -> None:
    assert parse_build_request(encode({"train_ratio": 1, "val_ratio": 0, "test_ratio": 0})).ratios == (1.0, 0.0, 0.0)


@pytest.mark.parametrize("total_offset", [0.0, 1e-7, -1e-7])
def test_ratio_sum_within_tolerance_is_accepted(total_offset: float) -> None:
    request = parse_build_request(encode({"train_ratio": 0.7 + total_offset, "val_ratio": 0.2, "test_ratio": 0.1}))
    assert request.train_ratio == pytest.approx(0.7)


def test_request_is_frozen() -> None:
    request = BuildRequest()
    with pytest.raises(ValidationError):
        request.max_samples = 3  # type: ignore[misc]


def test_python_callers_get_the_same_checks() -> None:
    with pytest.raises(ValidationError, match="max_sample"):
        BuildRequest(max_sample=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="sum to 1"):
        BuildRequest(train_ratio=0.9)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"max_samples": \xff}', "build request is not UTF-8 text (byte 16 is invalid)"),
        (b"{not json", "build request is not valid JSON: Expecting property name enclosed in double quotes"),
        (b"", "build request is not valid JSON: Expecting value at line 1 column 1"),
        (b'{"min_error_score": NaN}', "build request is not valid JSON: NaN is not allowed"),
        (b'{"min_error_score": Infinity}', "build request is not valid JSON: Infinity is not allowed"),
        (b"[]", "build request must be a JSON object, got a JSON array"),
        (b'"train"', "build request must be a JSON object, got a JSON string"),
        (b"null", "build request must be a JSON object, got a JSON null"),
        (b"3", "build request must be a JSON object, got a JSON number"),
        (b'{"max_samples": 1, "max_samples": 2}', "build request gives field 'max_samples' more than once"),
    ],
)
def test_undecodable_request_is_rejected_with_its_reason(raw: bytes, expected: str) -> None:
    assert reason_of(raw).startswith(expected)


def test_oversized_request_is_rejected_before_reading_it() -> None:
    raw = b"{}" + b" " * (MAX_REQUEST_BYTES - 1)
    assert MAX_REQUEST_BYTES == 64 * 1024
    assert reason_of(raw) == f"build request is {MAX_REQUEST_BYTES + 1} bytes, over the limit of 65536 bytes"
    assert parse_build_request(raw[:MAX_REQUEST_BYTES]) == BuildRequest()


def test_non_bytes_request_is_rejected() -> None:
    with pytest.raises(InvalidBuildRequest, match="build request must be bytes, got str"):
        parse_build_request("{}")  # type: ignore[arg-type]


def test_bytearray_request_is_accepted() -> None:
    assert parse_build_request(bytearray(b'{"max_samples": 5}')).max_samples == 5


def test_typo_is_rejected_naming_the_field() -> None:
    reason = reason_of(encode({"max_sample": 100}))
    assert reason.startswith("max_sample: unknown field (known fields: ")
    assert "max_samples" in reason


def test_ratio_sum_error_says_the_sum() -> None:
    reason = reason_of(encode({"train_ratio": 0.5}))
    assert reason == "request: train_ratio + val_ratio + test_ratio must sum to 1, got 0.7 (0.5 + 0.1 + 0.1)"


def test_ratio_sum_just_outside_tolerance_is_rejected() -> None:
    assert "must sum to 1, got 1.00001" in reason_of(encode({"train_ratio": 0.80001}))


@pytest.mark.parametrize(
    ("payload", "field", "message"),
    [
        ({"min_error_score": 1.5}, "min_error_score", "less than or equal to 1"),
        ({"min_error_score": -0.1}, "min_error_score", "greater than or equal to 0"),
        ({"min_error_score": "0.5"}, "min_error_score", "valid number"),
        ({"train_ratio": 1.2, "val_ratio": 0, "test_ratio": -0.2}, "train_ratio", "less than or equal to 1"),
        ({"val_ratio": -0.1}, "val_ratio", "greater than or equal to 0"),
        ({"test_ratio": True}, "test_ratio", "valid number"),
        ({"max_samples": 0}, "max_samples", "greater than 0"),
        ({"max_samples": -5}, "max_samples", "greater than 0"),
        ({"max_samples": "10"}, "max_samples", "valid integer"),
        ({"max_samples": True}, "max_samples", "valid integer"),
        ({"max_samples": 1.5}, "max_samples", "valid integer"),
        ({"include_uncorrected": 1}, "include_uncorrected", "valid boolean"),
        ({"balance_error_types": "yes"}, "balance_error_types", "valid boolean"),
        ({"create_version": None}, "create_version", "valid boolean"),
        ({"version_name": ""}, "version_name", "1-64 characters of letters, digits"),
        ({"version_name": "a/b"}, "version_name", "1-64 characters of letters, digits"),
        ({"version_name": "v 1"}, "version_name", "1-64 characters of letters, digits"),
        ({"version_name": "x" * 65}, "version_name", "1-64 characters of letters, digits"),
        ({"version_name": ".."}, "version_name", "must not be '.' or '..'"),
        ({"version_name": 3}, "version_name", "valid string"),
        ({"parent_version": "x" * 129}, "parent_version", "1-128 characters of letters, digits"),
        ({"parent_version": "ü"}, "parent_version", "1-128 characters of letters, digits"),
    ],
)
def test_bad_field_is_rejected_naming_it(payload: dict[str, Any], field: str, message: str) -> None:
    reason = reason_of(encode(payload))
    assert reason.startswith(f"{field}: ")
    assert message in reason


def test_overflowing_number_is_not_taken_as_infinity() -> None:
    reason = reason_of(b'{"min_error_score": 1e400}')
    assert reason.startswith("min_error_score: Input should be a finite number")


def test_longest_names_are_accepted() -> None:
    request = parse_build_request(encode({"version_name": "v" * 64, "parent_version": "p" * 128}))
    assert request.version_name == "v" * 64
    assert request.parent_version == "p" * 128


def test_several_problems_are_listed_together() -> None:
    reason = reason_of(encode({"max_samples": 0, "version_name": "a b", "colour": "red"}))
    parts = reason.split("; ")
    assert [p.split(":")[0] for p in parts] == ["max_samples", "version_name", "colour"]


def test_json_schema_describes_every_field_and_forbids_others() -> None:
    schema = json.loads((Path(__file__).parents[2] / "schemas/dataset_request.schema.json").read_text())
    assert set(schema["properties"]) == FIELDS
    assert schema["additionalProperties"] is False
    assert "required" not in schema
    assert schema["properties"]["version_name"]["maxLength"] == 64
    assert schema["properties"]["parent_version"]["maxLength"] == 128


@pytest.mark.parametrize(("body", "named"), [
    (b'{"quality_thresholds": {"min_valid": 0.9}}', "quality_thresholds.min_valid: unknown field (known fields: "
                                                   "min_completeness, min_consistency, min_validity"),
    (b'{"quality_thresholds": {"min_validity": 1.5}}', "quality_thresholds.min_validity"),
    (b'{"quality_thresholds": {"min_validity": "0.9"}}', "quality_thresholds.min_validity"),
    (b'{"quality_thresholds": [0.9]}', "quality_thresholds"),
    (b'{"allow_failed_quality": "yes"}', "allow_failed_quality"),
])
def test_bad_quality_fields_are_refused_by_name(body: bytes, named: str) -> None:
    with pytest.raises(InvalidBuildRequest, match=named.replace("(", r"\(")):
        parse_build_request(body)


def test_thresholds_left_out_are_the_deployments() -> None:
    assert parse_build_request(b"{}").thresholds() == QualityThresholds()
    default = QualityThresholds(0.5, 0.5, 0.5, 0.5)
    assert parse_build_request(b"{}").thresholds(default) == default
    request = parse_build_request(b'{"quality_thresholds": {"min_overall_score": 0.99}}')
    assert request.thresholds(default) == QualityThresholds(0.5, 0.5, 0.5, 0.99)


def test_a_request_naming_a_dataset_to_augment_says_how_and_selects_nothing() -> None:
    request = parse_build_request(encode({"augment_dataset_id": "weekly-17", "augment": [{"type": "gain", "db": -6}],
                                          "version_name": "weekly-gain"}))
    assert request.augment_dataset_id == "weekly-17" and request.augment == [{"type": "gain", "db": -6.0}]
    assert request.model_dump()["augment_dataset_id"] == "weekly-17"
    assert "augment_dataset_id" not in BuildRequest().model_dump()  # datasets built before dump as they did
    with pytest.raises(InvalidBuildRequest, match="augment_dataset_id needs augment"):
        parse_build_request(encode({"augment_dataset_id": "weekly-17"}))
    for selecting in ({"min_error_score": 0.5}, {"max_samples": 10}, {"max_duration_s": 30.0}):
        with pytest.raises(InvalidBuildRequest, match=f"{next(iter(selecting))} select cases"):
            parse_build_request(encode({"augment_dataset_id": "weekly-17", "augment": [{"type": "gain", "db": -6}],
                                        **selecting}))
    for bad in ("../registry", "a/b", ".", "x" * 257):
        with pytest.raises(InvalidBuildRequest, match="augment_dataset_id"):
            parse_build_request(encode({"augment_dataset_id": bad, "augment": [{"type": "gain", "db": -6}]}))
