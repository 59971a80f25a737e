"""Failure events and corrections as they arrive on Pub/Sub, validated, and their case ids.

Parsing is strict JSON: a number given as a string, a boolean for an integer or a string
for a transcript is a wrong type, not coerced. Unknown fields are kept (the stored case holds
every field as given). ``occurred_at`` without a time zone is read as UTC.

``audio_path`` is a ``gs://bucket/object`` URI, or a path without a scheme (the seed's ``audio/sample.wav``)
resolved against the deployment's audio root (``Settings.audio_root``, ``STT_AUDIO_ROOT``; by default the
deployment's own bucket): the case keeps the resolved URI as ``audio_path`` and the path as given as
``audio_path_given``. A path with another scheme, an absolute one, or one with ``..`` segments is refused.

``error_types`` are names of the derived taxonomy (error_taxonomy.ERROR_TYPES) or a team's own labels
(``accent``, ``background_noise``...): lowercase snake_case, a letter first, at most 40 characters, at most
``MAX_ERROR_TYPES`` per event.

A case id derived from an event is the sha256 (hex) of the canonical JSON (sorted keys, no
spaces, UTF-8) of ``audio_path``, ``original_transcript``, ``model_version`` and ``occurred_at``
(ISO 8601 in UTC, or null). These identify one transcription of one recording by one model at
one time: a replay of the event, even enriched later with a correction or scores, maps to the
same case, while the same audio failing again at another time or under another model does not.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from shared.domain.error_taxonomy import ERROR_TYPES
from shared.domain.firestore_limits import (
    field_name_problem,
    field_path_problem,
    indexed_value_problem,
    unstorable_reason,
)
from shared.domain.json_payload import Payload, decode_json_object, shown_input, validation_message
from shared.errors import InvalidEvent

MAX_PAYLOAD_BYTES = 1_000_000
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1,)
MAX_DOCUMENT_ID_BYTES = 1500

# Bucket names per GCS naming rules: 3-222 chars of lowercase letters, digits, '-', '_', '.'.
_GCS_URI = re.compile(r"gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(?P<object>.+)", re.DOTALL)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)
_CASE_ID_DOC: dict[str, Any] = {"pattern": "^[^/]+$", "description": "a Firestore document id"}
# A case's model_version names a field of the statistics counters (CounterDelta.model_versions): model_versions.<it>.
MODEL_VERSION_COUNTER = "model_versions"
# Room left in a case's document for what the case adds to its event (scores, types, times, ids, import origin).
CASE_FIELDS_RESERVE = 8192

_Model = TypeVar("_Model", bound=BaseModel)

# A team's own error label: lowercase snake_case (so it is a safe counter field name), a letter first.
ERROR_LABEL = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_ERROR_TYPES = 16
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# The pattern only documents the schema; the validators below enforce it with clearer messages.
ErrorTypeName = Annotated[str, Field(json_schema_extra={
    "pattern": f"^{ERROR_LABEL.pattern}$",
    "description": f"a derived type ({', '.join(ERROR_TYPES)}) or a team's own label",
})]
_SCHEMA_VERSION_DOC: dict[str, Any] = {"enum": list(SUPPORTED_SCHEMA_VERSIONS)}



def validate_case_id(case_id: str) -> str:
    """Return ``case_id`` if it is a valid Firestore document id, else raise ValueError."""
    if not case_id:
        raise ValueError("case_id must not be empty")
    if "/" in case_id:
        raise ValueError("case_id must not contain '/'")
    if len(case_id.encode("utf-8")) > MAX_DOCUMENT_ID_BYTES:
        raise ValueError(f"case_id must be at most {MAX_DOCUMENT_ID_BYTES} bytes in UTF-8")
    if case_id in (".", ".."):
        raise ValueError("case_id must not be '.' or '..'")
    if _RESERVED_ID.fullmatch(case_id):
        raise ValueError("case_id must not look like '__name__' (reserved by Firestore)")
    return case_id


def validate_gcs_uri(uri: str) -> str:
    """Return ``uri`` if it is a ``gs://bucket/object`` URI without '..' segments, else raise ValueError."""
    match = _GCS_URI.fullmatch(uri)
    if match is None:
        raise ValueError("audio_path must be a gs://bucket/object URI with a valid bucket name")
    obj = match.group("object")
    if ".." in obj.split("/"):
        raise ValueError("audio_path must not contain '..' path segments")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in obj):
        raise ValueError("audio_path must not contain control characters")
    if len(obj.encode("utf-8")) > 1024:
        raise ValueError("audio_path object name must be at most 1024 bytes in UTF-8")
    return uri


def _check_schema_version(version: int) -> int:
    """Reject schema versions this code does not know."""
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise ValueError(f"unknown schema_version {version}; supported: {supported}")
    return version


def resolve_audio_path(value: str, audio_root: str | None) -> str:
    """A ``gs://`` audio_path as it is; a path without a scheme under ``audio_root``; ValueError otherwise."""
    if value.startswith("gs://"):
        return validate_gcs_uri(value)
    if _SCHEME.match(value):
        raise ValueError("audio_path must be a gs://bucket/object URI or a path without a scheme")
    if value.startswith("/"):
        raise ValueError("audio_path without a scheme must be relative (it is resolved against the audio root)")
    if ".." in value.split("/"):
        raise ValueError("audio_path must not contain '..' path segments")
    if not audio_root:
        raise ValueError("audio_path without a scheme needs an audio root (STT_AUDIO_ROOT) to resolve against")
    return validate_gcs_uri(audio_root.rstrip("/") + "/" + value)


def _check_error_types(names: list[str] | None) -> list[str] | None:
    """Error types are the taxonomy's names or a team's labels of a safe form, a bounded number of them."""
    if names is None:
        return None
    if len(names) > MAX_ERROR_TYPES:
        raise ValueError(f"at most {MAX_ERROR_TYPES} error types, not {len(names)}")
    odd = sorted({n for n in names if n not in ERROR_TYPES and not ERROR_LABEL.fullmatch(n)})
    if odd:
        raise ValueError(
            f"error type(s) {odd} are neither derived types ({', '.join(ERROR_TYPES)}) nor labels of the form "
            "lowercase_snake_case (a letter first, at most 40 characters)"
        )
    return names


class _Message(BaseModel):
    """What every message shares: extra fields are kept, its schema version, case id and error types checked."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = Field(default=1, json_schema_extra=_SCHEMA_VERSION_DOC)

    _schema_version = field_validator("schema_version")(_check_schema_version)
    _error_types = field_validator("error_types", check_fields=False)(_check_error_types)

    @field_validator("case_id", check_fields=False)
    @classmethod
    def _case_id(cls, value: str | None) -> str | None:
        """A given case_id is a valid Firestore document id."""
        return None if value is None else validate_case_id(value)


class FailureEvent(_Message):
    """A transcription failure reported by the transcription service."""

    audio_path: str = Field(
        description="gs://bucket/object URI of the audio, or a relative path resolved against the deployment's "
        "audio root; without '..' segments",
    )
    original_transcript: str = Field(description="the model's transcript; may be empty")
    case_id: str | None = Field(default=None, json_schema_extra=_CASE_ID_DOC)
    corrected_transcript: str | None = None
    error_types: list[ErrorTypeName] | None = None
    error_score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    model_version: str | None = None
    inference_time: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    model_confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    speaker_id: str | None = None
    duration_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    language: str | None = Field(default=None, pattern=_LANGUAGE.pattern)
    occurred_at: datetime | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("audio_path")
    @classmethod
    def _audio_path(cls, value: str, info: ValidationInfo) -> str:
        """audio_path is a safe gs:// URI, or a relative path resolved against the audio root (the parse's
        context), noted in that context so the case keeps it as given."""
        context = info.context if isinstance(info.context, dict) else {}
        resolved = resolve_audio_path(value, context.get("audio_root"))
        if resolved != value:
            context["audio_path_given"] = value
        return resolved

    @model_validator(mode="after")
    def _keep_given_audio_path(self, info: ValidationInfo) -> FailureEvent:
        """The case keeps a resolved path as given, in ``audio_path_given``."""
        given = info.context.pop("audio_path_given", None) if isinstance(info.context, dict) else None
        if given is not None and self.__pydantic_extra__ is not None:
            self.__pydantic_extra__["audio_path_given"] = given
        return self

    @field_validator("model_version")
    @classmethod
    def _model_version(cls, value: str | None) -> str | None:
        """A model_version can name its statistics counter in Firestore and be grouped by."""
        if not value:  # counted as "(unknown)"
            return value
        problem = indexed_value_problem("model_version", value)
        if problem:
            raise ValueError(problem)
        problem = field_name_problem(value) or field_path_problem(MODEL_VERSION_COUNTER, value)
        if problem:
            raise ValueError(f"model_version names a statistics counter field in Firestore: {problem}")
        return value

    @field_validator("speaker_id")
    @classmethod
    def _speaker_id(cls, value: str | None) -> str | None:
        """A speaker_id is grouped by (splits, statistics): at most Firestore's indexed value size."""
        problem = indexed_value_problem("speaker_id", value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _storable(self) -> FailureEvent:
        """Firestore can store the case made of this event (see shared/domain/firestore_limits.py)."""
        problem = unstorable_reason(self.model_dump(exclude_unset=True), reserve_bytes=CASE_FIELDS_RESERVE)
        if problem:
            raise ValueError(f"Firestore cannot store this event: {problem}")
        return self

    @field_validator("occurred_at")
    @classmethod
    def _occurred_at(cls, value: datetime | None) -> datetime | None:
        """Naive timestamps are UTC; all are kept in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Correction(_Message):
    """A reviewer's corrected transcript for a stored case."""

    case_id: str = Field(json_schema_extra=_CASE_ID_DOC)
    corrected_transcript: str
    corrected_by: str | None = None
    error_types: list[ErrorTypeName] | None = None


def _describe(error: ValidationError) -> str:
    """A person-readable summary of a pydantic validation error."""
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"])
        message = validation_message(item)
        if not field:
            parts.append(f"payload: {message}")
            continue
        if item["type"] == "missing":
            parts.append(f"missing required field '{field}'")
            continue
        parts.append(f"field '{field}': {message} (got {shown_input(item.get('input'))})")
    return "; ".join(parts)


def _parse(model: type[_Model], raw: Payload, audio_root: str | None = None) -> _Model:
    """Validate ``raw`` as strict JSON into ``model``, raising InvalidEvent."""
    decode_json_object(raw, what="payload", max_bytes=MAX_PAYLOAD_BYTES, error=InvalidEvent)
    # Validated from the JSON itself: strict JSON mode still reads an ISO 8601 string as a datetime.
    try:
        return model.model_validate_json(bytes(raw), strict=True, context={"audio_root": audio_root})
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None


def parse_failure_event(raw: Payload, audio_root: str | None = None) -> FailureEvent:
    """Parse a Pub/Sub message body into a FailureEvent or raise InvalidEvent; a relative audio_path is
    resolved against ``audio_root`` (refused without one)."""
    return _parse(FailureEvent, raw, audio_root)


def parse_correction(raw: Payload) -> Correction:
    """Parse a Pub/Sub message body into a Correction or raise InvalidEvent."""
    return _parse(Correction, raw)


def derive_case_id(event: FailureEvent) -> str:
    """The event's case id: the given one, else a sha256 of its identifying fields."""
    if event.case_id is not None:
        return event.case_id
    identity = {
        "audio_path": event.audio_path,
        "original_transcript": event.original_transcript,
        "model_version": event.model_version,
        "occurred_at": None if event.occurred_at is None else event.occurred_at.isoformat(),
    }
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
