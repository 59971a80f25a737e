"""The four record kinds published on `training-metrics`, their validation and their ids.

A record is a UTF-8 JSON object whose ``"kind"`` is one of ``performance``,
``model_version``, ``learning_progress`` or ``inference_stats``.

Rules, beyond "the field has the right type":

* No number anywhere in a record may be NaN or infinite (Python's ``json`` happily emits
  them; they would poison every mean and trend downstream).
* ``wer`` and ``cer`` are fractions, not percentages, and must lie in ``[0, WER_CAP]``
  with ``WER_CAP = 10``. WER = (S + D + I) / N exceeds 1 when the hypothesis inserts
  words, so values above 1 are legitimate; ten errors per reference word is far beyond
  any real model and almost always a percentage sent by mistake (``25`` meaning 25 %),
  so such values are rejected rather than silently skewing the history.
* ``error_rate`` and ``correction_rate`` are shares in ``[0, 1]``; ``inference_time``
  (seconds) is ``>= 0``. Booleans and numeric strings are not numbers here.
* A performance record needs ``wer`` and ``cer``; ``error_rate``, ``correction_rate`` and
  ``inference_time`` may be left out (or null) when they were not measured: a training
  run's evaluation knows its WER and CER, not a serving latency. The trend of a metric
  skips the records without it (counted in ``skipped``); nothing is filled in.
* Every kind names its model version (``model_version``; ``version_id`` for the
  ``model_version`` kind); missing or blank is rejected. (The Python API fills in a
  missing one before validation: ``UNVERSIONED`` or the current model version, see
  ``MetadataTracker.record_performance``.)
* ``recorded_at`` is optional; a timestamp without a zone is taken as UTC and every
  timestamp is normalised to UTC. One more than ``MAX_CLOCK_SKEW`` (5 minutes) after the
  receiver's ``now`` is rejected: the producer's clock is wrong and the point would sort
  after every genuine one.
* Fields not named by the contract are kept, not rejected: a training job that adds
  context (``epoch``, ``split``, ...) must not have its metrics quarantined. For
  ``inference_stats`` those extra numbers are counts and latencies, so they must be
  ``>= 0``.
* A whole record is at most ``MAX_RECORD_BYTES`` (1 MB).

Idempotency: ``record_id`` returns the producer's ``record_id`` when given, else the
sha256 of the record's canonical JSON, so a redelivered record is stored once. Two
identical measurements that should both count need distinct ``recorded_at`` values or
explicit ``record_id`` values.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.domain.json_payload import decode_json, json_kind, validation_message
from shared.errors import InvalidMetricRecord

MAX_RECORD_BYTES = 1_000_000
WER_CAP = 10.0
MAX_CLOCK_SKEW = timedelta(minutes=5)
# The model version the Python API records under when none is given and no model version is registered yet.
UNVERSIONED = "unversioned"



def _check_error_rate_cap(value: float) -> float:
    """Reject WER/CER values above the plausibility cap."""
    if value > WER_CAP:
        raise ValueError(
            f"{value} is above the cap of {WER_CAP:g}; WER/CER are fractions (0.25, not 25) "
            "and only insertions push them past 1"
        )
    return value


NonNegative = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Share = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
ErrorRate = Annotated[
    NonNegative,
    AfterValidator(_check_error_rate_cap),
    # The cap is enforced by the validator (for its clearer message); the schema still states it.
    Field(json_schema_extra={"maximum": WER_CAP}),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
# Firestore document ids forbid "/" and cap the length; the id is used as one.
GivenRecordId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256, pattern=r"^[^/]+$")
]


def _first_non_finite(value: Any) -> str | None:
    """Path of the first NaN/infinite number inside a JSON-like value, or None."""
    # Iterative so a deeply nested payload cannot blow the interpreter stack.
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path or "(value)"
        if isinstance(item, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(item))
    return None


def _require_kind(schema: dict[str, Any]) -> None:
    """Publish `kind` as required: Python callers may omit it, messages may not."""
    schema["required"] = ["kind", *[name for name in schema.get("required", []) if name != "kind"]]


class _RecordBase(BaseModel):
    """Fields and rules every metric record shares."""

    model_config = ConfigDict(extra="allow", frozen=True, json_schema_extra=_require_kind)

    recorded_at: datetime | None = None
    record_id: GivenRecordId | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_non_finite(cls, data: Any) -> Any:
        """Refuse NaN and infinities anywhere, naming where they are."""
        path = _first_non_finite(data)
        if path is not None:
            raise ValueError(f"{path}: NaN and infinite numbers are not accepted")
        return data

    @field_validator("recorded_at")
    @classmethod
    def _not_in_future(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        """Normalise to UTC and refuse timestamps beyond the allowed clock skew."""
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        context = info.context if isinstance(info.context, dict) else {}
        now = context.get("now") or datetime.now(UTC)
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
        if value > now + MAX_CLOCK_SKEW:
            raise ValueError(
                f"{value.isoformat()} is more than {int(MAX_CLOCK_SKEW.total_seconds() // 60)} "
                f"minutes after now ({now.astimezone(UTC).isoformat()}); check the producer's clock"
            )
        return value


class PerformanceRecord(_RecordBase):
    """One evaluation of a model version."""

    kind: Literal["performance"] = "performance"
    model_version: Name
    wer: ErrorRate
    cer: ErrorRate
    error_rate: Share | None = None
    correction_rate: Share | None = None
    inference_time: NonNegative | None = None


class ModelVersionRecord(_RecordBase):
    """A registered model version and the dataset it was trained on."""

    kind: Literal["model_version"] = "model_version"
    version_id: Name
    model_name: Name
    training_data_size: Annotated[int, Field(strict=True, ge=0)] | None = None
    training_metadata: dict[str, Any] = Field(default_factory=dict)
    performance_metrics: dict[str, Any] = Field(default_factory=dict)
    dataset_version_id: Name | None = None

    @field_validator("performance_metrics")
    @classmethod
    def _plausible_wer(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Hold `wer`/`cer` inside performance_metrics to the same rules as a performance record."""
        for name in ("wer", "cer"):
            if name in value:
                figure = value[name]
                if isinstance(figure, bool) or not isinstance(figure, int | float) or figure < 0:
                    raise ValueError(f"{name} must be a non-negative number, got {figure!r}")
                try:
                    _check_error_rate_cap(float(figure))
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return value

    @property
    def model_version(self) -> str:
        """The version id, under the name the other kinds use."""
        return self.version_id


class LearningProgressRecord(_RecordBase):
    """A training stage's progress; the figures are free-form extra fields."""

    kind: Literal["learning_progress"] = "learning_progress"
    stage: Name
    model_version: Name


class InferenceStatsRecord(_RecordBase):
    """Serving counts and latencies of a model version, as extra fields."""

    kind: Literal["inference_stats"] = "inference_stats"
    model_version: Name

    @model_validator(mode="after")
    def _non_negative_figures(self) -> InferenceStatsRecord:
        """Counts and latencies cannot be negative."""
        for name, value in (self.model_extra or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{name}: counts and latencies must be >= 0, got {value}")
        return self


MetricRecord = Annotated[
    PerformanceRecord | ModelVersionRecord | LearningProgressRecord | InferenceStatsRecord,
    Field(discriminator="kind"),
]
METRIC_RECORD_ADAPTER: TypeAdapter[MetricRecord] = TypeAdapter(MetricRecord)
KNOWN_KINDS: tuple[str, ...] = ("performance", "model_version", "learning_progress", "inference_stats")


def _describe(error: Any) -> str:
    """One validation error as `field: what is wrong`."""
    # loc[0] is the union tag (the kind), already stated once in the message prefix.
    loc = ".".join(str(part) for part in error["loc"][1:])
    message = validation_message(error)
    if error["type"] == "missing":
        message = "required field is missing"
    return f"{loc}: {message}" if loc else message


def validate_metric_record(data: Any, now: datetime) -> MetricRecord:
    """Validate an already-decoded record, raising InvalidMetricRecord with a readable reason."""
    known = ", ".join(KNOWN_KINDS)
    if not isinstance(data, dict):
        kind = json_kind(data)
        got = "null" if kind == "null" else f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
        raise InvalidMetricRecord(f"a metric record must be a JSON object, got {got}")
    if "kind" not in data:
        raise InvalidMetricRecord(f'the record has no "kind"; known kinds: {known}')
    kind = data["kind"]
    if kind not in KNOWN_KINDS:
        raise InvalidMetricRecord(f"unknown kind {kind!r}; known kinds: {known}")
    try:
        return METRIC_RECORD_ADAPTER.validate_python(data, context={"now": now})
    except ValidationError as exc:
        details = "; ".join(_describe(error) for error in exc.errors())
        raise InvalidMetricRecord(f"invalid {kind} record: {details}") from None


def parse_metric_record(raw: bytes, now: datetime) -> MetricRecord:
    """Decode and validate one record from a Pub/Sub message body."""
    data = decode_json(
        raw,
        what="the record",
        max_bytes=MAX_RECORD_BYTES,
        error=InvalidMetricRecord,
        # NaN/Infinity decode here so validation can refuse them naming the field they are in.
        allow_nan=True,
        # A leading byte-order mark is harmless, so it is dropped rather than refused.
        allow_bom=True,
    )
    return validate_metric_record(data, now)


def canonical_json(record: MetricRecord) -> str:
    """The record's content (without any given record_id) as canonical JSON."""
    content = record.model_dump(mode="json", exclude={"record_id"})
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_id(record: MetricRecord) -> str:
    """Deterministic id: the given record_id, else sha256 of the canonical content."""
    if record.record_id:
        return record.record_id
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()
