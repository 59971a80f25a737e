"""Parsing, validation and ids of the training-metrics records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain import export_metric_schemas
from shared.domain.metric_records import (
    MAX_RECORD_BYTES,
    InferenceStatsRecord,
    LearningProgressRecord,
    ModelVersionRecord,
    PerformanceRecord,
    parse_metric_record,
    record_id,
)
from shared.errors import InvalidMetricRecord

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def perf(**overrides: Any) -> dict[str, Any]:
    """A valid performance record with some fields replaced."""
    record: dict[str, Any] = {
        "kind": "performance",
        "model_version": "whisper_base_v1",
        "wer": 0.25,
        "cer": 0.1,
        "error_rate": 0.3,
        "correction_rate": 0.6,
        "inference_time": 0.5,
        "recorded_at": "2026-11-27T09:00:00Z",
    }
    record.update(overrides)
    return {k: v for k, v in record.items() if v is not ...}


def raw(record: dict[str, Any]) -> bytes:
    """Encode like a Python producer would (NaN allowed, as json.dumps does)."""
    return json.dumps(record).encode("utf-8")


def reason_for(payload: bytes) -> str:
    """The rejection reason for a payload that must be refused."""
    with pytest.raises(InvalidMetricRecord) as info:
        parse_metric_record(payload, NOW)
    return info.value.reason


def test_parses_each_kind() -> None:
    performance = parse_metric_record(raw(perf(epoch=3)), NOW)
    assert isinstance(performance, PerformanceRecord)
    assert performance.wer == 0.25
    assert performance.recorded_at == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert performance.model_extra == {"epoch": 3}

    version = parse_metric_record(
        raw({"kind": "model_version", "version_id": "v2", "model_name": "whisper-base",
             "training_data_size": 1200, "training_metadata": {"lr": 1e-5},
             "performance_metrics": {"wer": 0.2}, "dataset_version_id": "ds-7"}),
        NOW,
    )
    assert isinstance(version, ModelVersionRecord)
    assert version.model_version == "v2"
    assert version.dataset_version_id == "ds-7"

    progress = parse_metric_record(
        raw({"kind": "learning_progress", "stage": "epoch-2", "model_version": "v2", "loss": 0.42}), NOW
    )
    assert isinstance(progress, LearningProgressRecord)
    assert progress.model_extra == {"loss": 0.42}

    stats = parse_metric_record(
        raw({"kind": "inference_stats", "model_version": "v2", "requests": 10, "p95_latency_ms": 120.5}), NOW
    )
    assert isinstance(stats, InferenceStatsRecord)
    assert stats.model_extra == {"requests": 10, "p95_latency_ms": 120.5}


def test_wer_above_one_is_accepted_up_to_the_cap() -> None:
    assert parse_metric_record(raw(perf(wer=1.8)), NOW).wer == 1.8  # type: ignore[union-attr]
    assert parse_metric_record(raw(perf(wer=10)), NOW).wer == 10.0  # type: ignore[union-attr]
    assert "above the cap of 10" in reason_for(raw(perf(wer=25)))


def test_offset_timestamps_are_normalised_to_utc() -> None:
    record = parse_metric_record(raw(perf(recorded_at="2026-11-27T11:00:00+02:00")), NOW)
    assert record.recorded_at == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    naive = parse_metric_record(raw(perf(recorded_at="2026-11-27T09:00:00")), NOW)
    assert naive.recorded_at == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (raw(perf(wer=float("nan"))), "wer: NaN and infinite numbers are not accepted"),
        (raw(perf(cer=float("inf"))), "cer: NaN and infinite numbers are not accepted"),
        (raw(perf(wer=-0.1)), "wer: Input should be greater than or equal to 0"),
        (raw(perf(cer=-1)), "cer: Input should be greater than or equal to 0"),
        (raw(perf(wer=10.5)), "wer: 10.5 is above the cap of 10"),
        (raw(perf(model_version=...)), "model_version: required field is missing"),
        (raw(perf(model_version="   ")), "model_version: String should have at least 1 character"),
        (raw(perf(wer=...)), "wer: required field is missing"),
        (raw(perf(wer="0.2")), "wer: Input should be a valid number"),
        (raw(perf(wer=True)), "wer: Input should be a valid number"),
        (raw(perf(error_rate=1.5)), "error_rate: Input should be less than or equal to 1"),
        (raw(perf(inference_time=-0.5)), "inference_time: Input should be greater than or equal to 0"),
        (raw(perf(recorded_at="yesterday")), "recorded_at: Input should be a valid datetime"),
        (raw(perf(record_id="a/b")), "record_id: String should match pattern"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"kind": "performance", ', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got an array"),
        (b'{"wer": 0.1}', 'no "kind"; known kinds: performance, model_version, learning_progress'),
        (b'{"kind": "perf"}', "unknown kind 'perf'; known kinds: performance, model_version"),
        (raw({"kind": "learning_progress", "stage": "e1"}), "model_version: required field is missing"),
        (raw({"kind": "inference_stats", "requests": 3}), "model_version: required field is missing"),
        (raw({"kind": "model_version", "model_name": "w"}), "version_id: required field is missing"),
        (raw({"kind": "model_version", "version_id": "v", "model_name": "w",
              "performance_metrics": {"wer": 40}}), "performance_metrics: wer: 40.0 is above the cap"),
        (raw({"kind": "inference_stats", "model_version": "v", "p95_latency_ms": -3}),
         "p95_latency_ms: counts and latencies must be >= 0"),
        (raw({"kind": "learning_progress", "model_version": "v", "stage": "e1",
              "curve": {"loss": [0.5, float("nan")]}}), "curve.loss[1]: NaN and infinite"),
    ],
)
def test_rejections_say_what_is_wrong(payload: bytes, expected: str) -> None:
    assert expected in reason_for(payload)


def test_rejection_names_the_kind_and_every_bad_field() -> None:
    reason = reason_for(raw(perf(wer=-1, cer=20)))
    assert reason.startswith("invalid performance record: ")
    assert "wer:" in reason
    assert "cer:" in reason


def test_future_timestamp_beyond_five_minutes_is_rejected() -> None:
    just_inside = (NOW + timedelta(minutes=5)).isoformat()
    accepted = parse_metric_record(raw(perf(recorded_at=just_inside)), NOW)
    assert accepted.recorded_at == NOW + timedelta(minutes=5)
    too_far = (NOW + timedelta(minutes=5, seconds=1)).isoformat()
    assert "more than 5 minutes after now" in reason_for(raw(perf(recorded_at=too_far)))


def test_oversized_record_is_rejected_before_decoding() -> None:
    payload = raw(perf(notes="x" * MAX_RECORD_BYTES))
    assert "over the limit of 1000000 bytes" in reason_for(payload)


def test_deeply_nested_json_is_rejected_not_crashing() -> None:
    assert "nested too deeply" in reason_for(b"[" * 100_000)


def test_record_id_is_stable_across_redelivery_and_formatting() -> None:
    first = parse_metric_record(raw(perf()), NOW)
    reordered = {k: perf()[k] for k in reversed(list(perf()))}
    reordered["recorded_at"] = "2026-11-27T10:00:00+01:00"  # the same instant, written differently
    second = parse_metric_record(json.dumps(reordered, indent=2).encode(), NOW)
    assert record_id(first) == record_id(second)
    assert len(record_id(first)) == 64
    assert record_id(parse_metric_record(raw(perf(wer=0.26)), NOW)) != record_id(first)


def test_given_record_id_wins() -> None:
    record = parse_metric_record(raw(perf(record_id="run-42-eval-3")), NOW)
    assert record_id(record) == "run-42-eval-3"


def test_record_id_matches_a_hand_computed_digest() -> None:
    import hashlib

    record = parse_metric_record(
        raw({"kind": "inference_stats", "model_version": "v1", "requests": 2}), NOW
    )
    canonical = '{"kind":"inference_stats","model_version":"v1","recorded_at":null,"requests":2}'
    assert record_id(record) == hashlib.sha256(canonical.encode()).hexdigest()


def test_committed_schema_is_current() -> None:
    committed = export_metric_schemas.SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == export_metric_schemas.render_schema(), (
        "schemas/metric_record.schema.json is stale: run python -m shared.domain.export_metric_schemas"
    )


def test_schema_requires_kind_and_states_the_wer_cap() -> None:
    schema = export_metric_schemas.metric_record_schema()
    performance = schema["$defs"]["PerformanceRecord"]
    assert performance["required"][0] == "kind"
    assert performance["properties"]["wer"]["maximum"] == 10.0
    assert schema["discriminator"]["propertyName"] == "kind"
