"""Failure event and correction parsing, case ids and the committed JSON Schemas."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.export_schemas import SCHEMAS, export_schemas, render_schema
from shared.domain.failure_event import (
    MAX_PAYLOAD_BYTES,
    Correction,
    FailureEvent,
    derive_case_id,
    parse_correction,
    parse_failure_event,
)
from shared.errors import InvalidEvent

REPO_ROOT = Path(__file__).resolve().parents[2]

CONTRACT_EXAMPLE: dict[str, Any] = {
    "audio_path": "gs://stt-audio/2026/11/27/utt-0001.wav",
    "original_transcript": "THIS IS ALL CAPS",
    "corrected_transcript": "This is all caps",
    "error_types": ["all_caps"],
    "error_score": 0.8,
    "model_version": "whisper_base_v1",
    "inference_time": 0.5,
    "model_confidence": 0.85,
    "speaker_id": "spk-17",
    "duration_s": 3.2,
    "language": "en",
    "occurred_at": "2026-11-27T10:00:00Z",
    "metadata": {"confidence": 0.85},
}
MINIMAL: dict[str, Any] = {"audio_path": "gs://stt-audio/a.wav", "original_transcript": "hello"}


def encode(payload: Any) -> bytes:
    """JSON-encode a payload as a publisher would."""
    return json.dumps(payload).encode("utf-8")


def with_fields(**fields: Any) -> bytes:
    """The minimal event with some fields replaced."""
    return encode({**MINIMAL, **fields})


def reason_of(raw: bytes) -> str:
    """The InvalidEvent reason for ``raw``; fails the test if it parses."""
    with pytest.raises(InvalidEvent) as caught:
        parse_failure_event(raw)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def test_contract_example_parses_with_every_field() -> None:
    event = parse_failure_event(encode(CONTRACT_EXAMPLE))
    assert event.audio_path == "gs://stt-audio/2026/11/27/utt-0001.wav"
    assert event.original_transcript == "THIS IS ALL CAPS"
    assert event.corrected_transcript == "This is all caps"
    assert event.error_types == ["all_caps"]
    assert event.error_score == 0.8
    assert event.model_version == "whisper_base_v1"
    assert event.inference_time == 0.5
    assert event.model_confidence == 0.85
    assert event.speaker_id == "spk-17"
    assert event.duration_s == 3.2
    assert event.language == "en"
    assert event.occurred_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert event.metadata == {"confidence": 0.85}
    assert event.schema_version == 1
    assert event.case_id is None


def test_minimal_event_and_empty_transcript_are_accepted() -> None:
    event = parse_failure_event(with_fields(original_transcript=""))
    assert event.original_transcript == ""
    assert event.corrected_transcript is None
    assert event.error_types is None


def test_unknown_fields_are_kept() -> None:
    event = parse_failure_event(with_fields(channel="phone", extra={"a": [1, 2]}))
    dumped = event.model_dump(mode="json")
    assert dumped["channel"] == "phone"
    assert dumped["extra"] == {"a": [1, 2]}


def test_integer_is_accepted_for_a_float_field() -> None:
    assert parse_failure_event(with_fields(error_score=1)).error_score == 1.0


def test_naive_and_offset_timestamps_are_kept_in_utc() -> None:
    naive = parse_failure_event(with_fields(occurred_at="2026-11-27T10:00:00"))
    offset = parse_failure_event(with_fields(occurred_at="2026-11-27T11:00:00+01:00"))
    assert naive.occurred_at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    assert offset.occurred_at is not None and offset.occurred_at.utcoffset() is not None
    assert offset.occurred_at.isoformat() == "2026-11-27T10:00:00+00:00"


def test_bytearray_payload_is_accepted() -> None:
    assert parse_failure_event(bytearray(with_fields())).audio_path == MINIMAL["audio_path"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "payload is 1000001 bytes, over the limit of 1000000 bytes"),
        (b'{"audio_path": "\xff"}', "payload is not UTF-8 text (byte 16 is invalid)"),
        (b"{not json", "payload is not valid JSON: Expecting property name enclosed in double quotes"),
        (b"", "payload is not valid JSON: Expecting value at line 1 column 1"),
        (b'{"error_score": NaN}', "payload is not valid JSON: NaN is not allowed"),
        (b'{"error_score": Infinity}', "payload is not valid JSON: Infinity is not allowed"),
        (b"[1, 2]", "payload must be a JSON object, got a JSON array"),
        (b'"text"', "payload must be a JSON object, got a JSON string"),
        (b"42", "payload must be a JSON object, got a JSON number"),
        (b"null", "payload must be a JSON object, got a JSON null"),
        (b"true", "payload must be a JSON object, got a JSON boolean"),
        (b"[" * 5000 + b"]" * 5000, "payload is not acceptable JSON: nested too deeply"),
    ],
)
def test_undecodable_payloads_are_rejected_with_reason(raw: bytes, expected: str) -> None:
    assert reason_of(raw).startswith(expected)


def test_non_bytes_payload_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="payload must be bytes, got str"):
        parse_failure_event("{}")  # type: ignore[arg-type]


def test_payload_of_exactly_the_limit_is_not_rejected_for_size() -> None:
    padding = MAX_PAYLOAD_BYTES - len(with_fields(pad=""))
    raw = with_fields(pad="a" * padding)
    assert len(raw) == MAX_PAYLOAD_BYTES
    assert parse_failure_event(raw).model_dump()["pad"] == "a" * padding


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, "missing required field 'audio_path'; missing required field 'original_transcript'"),
        ({"audio_path": "gs://b-1/a.wav"}, "missing required field 'original_transcript'"),
        ({"original_transcript": "x"}, "missing required field 'audio_path'"),
    ],
)
def test_missing_required_fields_are_named(payload: dict[str, Any], expected: str) -> None:
    assert reason_of(encode(payload)) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"original_transcript": 5}, "field 'original_transcript': Input should be a valid string (got 5)"),
        ({"audio_path": None}, "field 'audio_path': Input should be a valid string (got None)"),
        ({"error_score": "0.5"}, "field 'error_score': Input should be a valid number (got '0.5')"),
        ({"inference_time": True}, "field 'inference_time': Input should be a valid number (got True)"),
        ({"schema_version": True}, "field 'schema_version': Input should be a valid integer (got True)"),
        ({"schema_version": "1"}, "field 'schema_version': Input should be a valid integer (got '1')"),
        ({"error_types": "all_caps"}, "field 'error_types': Input should be a valid array (got 'all_caps')"),
        ({"error_types": [3]}, "field 'error_types.0': Input should be a valid string (got 3)"),
        ({"metadata": [1]}, "field 'metadata': Input should be an object (got [1])"),
        ({"occurred_at": 1700000000}, "field 'occurred_at': Input should be a valid datetime"),
        ({"occurred_at": "yesterday"}, "field 'occurred_at': Input should be a valid datetime"),
        ({"speaker_id": 17}, "field 'speaker_id': Input should be a valid string (got 17)"),
        ({"case_id": 17}, "field 'case_id': Input should be a valid string (got 17)"),
    ],
)
def test_wrong_types_are_rejected_not_coerced(fields: dict[str, Any], expected: str) -> None:
    assert reason_of(with_fields(**fields)).startswith(expected)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"error_score": 1.5}, "field 'error_score': Input should be less than or equal to 1 (got 1.5)"),
        ({"error_score": -0.1}, "field 'error_score': Input should be greater than or equal to 0 (got -0.1)"),
        ({"model_confidence": 2}, "field 'model_confidence': Input should be less than or equal to 1 (got 2)"),
        ({"inference_time": -1}, "field 'inference_time': Input should be greater than or equal to 0 (got -1)"),
        ({"duration_s": -3.2}, "field 'duration_s': Input should be greater than or equal to 0 (got -3.2)"),
        ({"language": "english!"}, "field 'language': String should match pattern"),
    ],
)
def test_out_of_range_values_are_rejected(fields: dict[str, Any], expected: str) -> None:
    assert reason_of(with_fields(**fields)).startswith(expected)


def test_overflowing_number_is_rejected_as_not_finite() -> None:
    raw = b'{"audio_path": "gs://stt-audio/a.wav", "original_transcript": "", "inference_time": 1e400}'
    assert reason_of(raw) == "field 'inference_time': Input should be a finite number (got inf)"


def test_boundaries_of_ranges_are_accepted() -> None:
    event = parse_failure_event(
        with_fields(error_score=0, model_confidence=1, inference_time=0, duration_s=0, language="en-US")
    )
    assert (event.error_score, event.model_confidence, event.inference_time, event.duration_s) == (0, 1, 0, 0)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/local/a.wav", "without a scheme must be relative"),
        ("file:///local/a.wav", "must be a gs://bucket/object URI or a path without a scheme"),
        ("audio/../../secret.wav", "must not contain '..' path segments"),
        ("audio/sample.wav", "needs an audio root (STT_AUDIO_ROOT)"),
        ("https://storage.googleapis.com/b/a.wav", "must be a gs://bucket/object URI"),
        ("gs://bucket-only", "must be a gs://bucket/object URI"),
        ("gs://bucket/", "must be a gs://bucket/object URI"),
        ("gs://Upper/a.wav", "must be a gs://bucket/object URI"),
        ("gs://ab/a.wav", "must be a gs://bucket/object URI"),
        ("gs://bucket/../secret.wav", "must not contain '..' path segments"),
        ("gs://bucket/a/../../b.wav", "must not contain '..' path segments"),
        ("gs://bucket/a/..", "must not contain '..' path segments"),
        ("gs://bucket/a\nb.wav", "must not contain control characters"),
        ("gs://bucket/" + "a" * 1025, "object name must be at most 1024 bytes"),
    ],
)
def test_bad_audio_paths_are_rejected(path: str, expected: str) -> None:
    reason = reason_of(with_fields(audio_path=path))
    assert reason.startswith("field 'audio_path': audio_path ")
    assert expected in reason


def test_dots_inside_names_are_not_parent_segments() -> None:
    event = parse_failure_event(with_fields(audio_path="gs://my.bucket/a..b/..c/utt.wav"))
    assert event.audio_path == "gs://my.bucket/a..b/..c/utt.wav"


def test_unknown_error_type_is_rejected_with_the_known_names() -> None:
    reason = reason_of(with_fields(error_types=["all_caps", "ALL_CAPS_ERROR"]))
    assert reason.startswith("field 'error_types': error type(s) ['ALL_CAPS_ERROR'] are neither derived types "
                             "(all_caps, casing,")


@pytest.mark.parametrize("version", [0, 2, 99])
def test_unknown_schema_version_is_rejected(version: int) -> None:
    reason = reason_of(with_fields(schema_version=version))
    assert reason == f"field 'schema_version': unknown schema_version {version}; supported: 1 (got {version})"


def test_known_schema_version_is_accepted() -> None:
    assert parse_failure_event(with_fields(schema_version=1)).schema_version == 1


def test_every_problem_is_reported_at_once() -> None:
    reason = reason_of(encode({"audio_path": "s3://x/y", "error_score": 3}))
    assert reason.split("; ")[0].startswith("field 'audio_path'")
    assert "missing required field 'original_transcript'" in reason
    assert "field 'error_score': Input should be less than or equal to 1 (got 3)" in reason


@pytest.mark.parametrize(
    ("case_id", "expected"),
    [
        ("", "case_id must not be empty"),
        ("a/b", "case_id must not contain '/'"),
        (".", "case_id must not be '.' or '..'"),
        ("..", "case_id must not be '.' or '..'"),
        ("__id__", "case_id must not look like '__name__'"),
        ("é" * 751, "case_id must be at most 1500 bytes in UTF-8"),
    ],
)
def test_invalid_given_case_id_is_rejected(case_id: str, expected: str) -> None:
    assert reason_of(with_fields(case_id=case_id)).startswith(f"field 'case_id': {expected}")
    with pytest.raises(InvalidEvent, match=re.escape(f"field 'case_id': {expected}")):
        parse_correction(encode({"case_id": case_id, "corrected_transcript": "x"}))


@pytest.mark.parametrize("case_id", ["case-1", "__id", "a.b", "é" * 750, "x" * 1500])
def test_valid_given_case_id_wins(case_id: str) -> None:
    event = parse_failure_event(with_fields(case_id=case_id))
    assert derive_case_id(event) == case_id


def test_derived_case_id_is_the_documented_sha256() -> None:
    event = parse_failure_event(encode(CONTRACT_EXAMPLE))
    # sha256 of the canonical JSON spelled out by hand, so a change of recipe fails here.
    canonical = (
        '{"audio_path":"gs://stt-audio/2026/11/27/utt-0001.wav","model_version":"whisper_base_v1",'
        '"occurred_at":"2026-11-27T10:00:00+00:00","original_transcript":"THIS IS ALL CAPS"}'
    )
    assert derive_case_id(event) == hashlib.sha256(canonical.encode()).hexdigest()
    assert len(derive_case_id(event)) == 64


def test_replayed_or_enriched_event_maps_to_the_same_case() -> None:
    first = derive_case_id(parse_failure_event(encode(CONTRACT_EXAMPLE)))
    replay = derive_case_id(parse_failure_event(encode(dict(reversed(CONTRACT_EXAMPLE.items())))))
    enriched = derive_case_id(
        parse_failure_event(encode({**CONTRACT_EXAMPLE, "error_score": 0.1, "metadata": {"x": 1}}))
    )
    same_instant = derive_case_id(
        parse_failure_event(encode({**CONTRACT_EXAMPLE, "occurred_at": "2026-11-27T11:00:00+01:00"}))
    )
    assert first == replay == enriched == same_instant


@pytest.mark.parametrize(
    "change",
    [
        {"audio_path": "gs://stt-audio/2026/11/27/utt-0002.wav"},
        {"original_transcript": "THIS IS ALL CAPS!"},
        {"model_version": "whisper_base_v2"},
        {"model_version": None},
        {"occurred_at": "2026-11-27T10:00:01Z"},
        {"occurred_at": None},
    ],
)
def test_identifying_fields_change_the_case(change: dict[str, Any]) -> None:
    base = derive_case_id(parse_failure_event(encode(CONTRACT_EXAMPLE)))
    assert derive_case_id(parse_failure_event(encode({**CONTRACT_EXAMPLE, **change}))) != base


def test_correction_parses_and_rejects() -> None:
    correction = parse_correction(
        encode({"case_id": "c1", "corrected_transcript": "hi", "corrected_by": "ann", "error_types": ["casing"]})
    )
    assert correction == Correction(case_id="c1", corrected_transcript="hi", corrected_by="ann", error_types=["casing"])
    with pytest.raises(InvalidEvent, match=r"^missing required field 'case_id'; missing required field"):
        parse_correction(b"{}")
    with pytest.raises(InvalidEvent, match="payload must be a JSON object, got a JSON array"):
        parse_correction(b"[]")
    with pytest.raises(InvalidEvent, match=r"error type\(s\) \['Typo!'\] are neither"):
        parse_correction(encode({"case_id": "c1", "corrected_transcript": "hi", "error_types": ["Typo!"]}))
    with pytest.raises(InvalidEvent, match="unknown schema_version 3"):
        parse_correction(encode({"case_id": "c1", "corrected_transcript": "hi", "schema_version": 3}))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_parse_or_raise_invalid_event(raw: bytes) -> None:
    try:
        result = parse_failure_event(raw)
    except InvalidEvent as exc:
        assert exc.reason
    else:
        assert isinstance(result, FailureEvent)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from([*FailureEvent.model_fields, "other"]) | st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=8), st.booleans())
def test_arbitrary_json_objects_parse_or_raise_invalid_event(payload: dict[str, Any], add_required: bool) -> None:
    if add_required:
        payload = {**MINIMAL, **payload}
    try:
        event = parse_failure_event(encode(payload))
    except InvalidEvent as exc:
        assert exc.reason
    else:
        assert isinstance(event, FailureEvent)
        assert len(derive_case_id(event)) > 0


def test_committed_schemas_match_the_models() -> None:
    for name, model in SCHEMAS.items():
        committed = (REPO_ROOT / "schemas" / name).read_text(encoding="utf-8")
        assert committed == render_schema(model), f"schemas/{name} is stale: run python -m shared.domain.export_schemas"


def test_export_writes_every_schema(tmp_path: Path) -> None:
    written = export_schemas(tmp_path)
    assert sorted(p.name for p in written) == sorted(SCHEMAS)
    schema = json.loads((tmp_path / "failure_event.schema.json").read_text(encoding="utf-8"))
    assert schema["required"] == ["audio_path", "original_transcript"]
    assert schema["additionalProperties"] is True
    correction = json.loads((tmp_path / "correction.schema.json").read_text(encoding="utf-8"))
    assert correction["required"] == ["case_id", "corrected_transcript"]


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"level": value}
    return value


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"metadata": {"frames": 2**63}}, "field 'metadata.frames': integer '9223372036854775808' is outside"),
        ({"metadata": {"frames": -(2**63) - 1}}, "signed 64-bit range"),
        ({"metadata": {"boxes": [[0, 1], [2, 3]]}}, "field 'metadata.boxes': an array directly inside an array"),
        ({"metadata": {"": 1}}, "field 'metadata': a field name is empty"),
        ({"metadata": {"__name__": "x"}}, "field name '__name__' is reserved"),
        ({"__name__": "x"}, "field name '__name__' is reserved"),
        ({"metadata": nested(25)}, "nest more than 20 deep"),
        ({"metadata": {"a": [{"b": [[1]]}]}}, "an array directly inside an array"),
        ({"metadata": {"k" * 2000: 1}}, "field path is over Firestore's 1500-byte limit"),
        ({"metadata": {"ids": [1] * 200_000}}, "over its limit of 1048576"),  # 600 kB of JSON, 1.6 MB stored
    ],
)
def test_an_event_firestore_cannot_store_is_refused_naming_what_and_where(
    fields: dict[str, Any], expected: str
) -> None:
    reason = reason_of(with_fields(**fields))
    assert reason.startswith("payload: Firestore cannot store this event: ")
    assert expected in reason


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"model_version": "v" * 2000},
         "field 'model_version': model_version is 2000 bytes in UTF-8, over Firestore's 1500-byte indexed value limit"),
        ({"model_version": "v" * 1486}, "field 'model_version': model_version names a statistics counter field"),
        ({"model_version": "__base__"}, "field name '__base__' is reserved"),
        ({"speaker_id": "s" * 1501}, "field 'speaker_id': speaker_id is 1501 bytes in UTF-8"),
    ],
)
def test_a_label_firestore_cannot_index_or_count_by_is_refused(fields: dict[str, Any], expected: str) -> None:
    assert expected in reason_of(with_fields(**fields))


def test_values_at_firestore_s_limits_are_accepted() -> None:
    event = parse_failure_event(with_fields(
        metadata={"frames": 2**63 - 1, "low": -(2**63), "deep": nested(19), "boxes": [{"xy": [0, 1]}], "__": 1},
        model_version="v" * 1485, speaker_id="s" * 1500, original_transcript="word " * 150_000,
    ))
    assert event.metadata is not None and event.metadata["frames"] == 2**63 - 1


def test_a_path_without_a_scheme_is_resolved_against_the_audio_root_and_kept_as_given() -> None:
    event = parse_failure_event(with_fields(audio_path="audio/sample.wav"), audio_root="gs://stt-audio/")
    assert event.audio_path == "gs://stt-audio/audio/sample.wav"
    assert event.model_dump()["audio_path_given"] == "audio/sample.wav"
    same = parse_failure_event(with_fields(audio_path="gs://stt-audio/audio/sample.wav"), audio_root="gs://x/")
    assert derive_case_id(event) == derive_case_id(same)  # one recording, however it was named
    assert "audio_path_given" not in same.model_dump()
    with pytest.raises(InvalidEvent, match=r"must not contain '\.\.'"):
        parse_failure_event(with_fields(audio_path="a/../../b.wav"), audio_root="gs://stt-audio/")


def test_error_types_are_the_taxonomy_or_a_teams_labels_of_a_safe_form() -> None:
    event = parse_failure_event(with_fields(error_types=["accent", "background_noise", "substitution"]))
    assert event.error_types == ["accent", "background_noise", "substitution"]
    for bad in (["Accent"], ["background noise"], ["9lives"], ["a" * 41], ["__name__"]):
        with pytest.raises(InvalidEvent, match="lowercase_snake_case"):
            parse_failure_event(with_fields(error_types=bad))
    with pytest.raises(InvalidEvent, match="at most 16 error types"):
        parse_failure_event(with_fields(error_types=[f"label_{i}" for i in range(17)]))
