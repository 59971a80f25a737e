"""A dataset build request (``dataset-requests/<name>.json``): its parameters, validated.

The parameters are ``prepare_dataset``'s plus versioning. Parsing is strict JSON, as for
failure events: a number given as a string or a boolean for an integer is a wrong type, an unknown field
(a typo such as ``max_sample``) is rejected by name, and an empty object asks for every default.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from shared.domain.audio_clips import MAX_AUDIO_SECONDS
from shared.domain.audio_transforms import Transform, parse_transforms
from shared.domain.dataset_quality import THRESHOLD_NAMES, QualityThresholds
from shared.domain.json_payload import Payload, decode_json_object, shown_input, validation_message
from shared.errors import InvalidBuildRequest

MAX_REQUEST_BYTES = 64 * 1024
# Far above any dataset one build writes (the snapshot engine is measured at 1M rows), far below what breaks
# JSON or an int64: a request asking more is a mistake, refused before anything is written.
MAX_SAMPLES = 1_000_000_000
RATIO_TOLERANCE = 1e-6
MAX_VERSION_NAME = 64
MAX_PARENT_VERSION = 128
MAX_DATASET_ID = 256

# Version names end up in object names and registry keys: a small, path-safe alphabet.
_VERSION_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_VERSION_PATTERN = "^[A-Za-z0-9._-]+$"
_AUDIO_FIELDS = ("min_duration_s", "max_duration_s", "augment", "augment_dataset_id")  # dumped only when given
# What selects and splits cases: meaningless for a request that augments a finished dataset as it is.
_SELECTION_FIELDS = ("min_error_score", "include_uncorrected", "train_ratio", "val_ratio", "test_ratio",
                     "max_samples", "balance_error_types", "min_duration_s", "max_duration_s")


def _ratio(default: float, description: str) -> Any:
    """A share of the selected cases: a finite number in [0, 1]."""
    return Field(default=default, ge=0, le=1, allow_inf_nan=False, description=description)


def _check_version(value: str | None, limit: int) -> str | None:
    """Reject a version name outside the path-safe alphabet or too long (None passes)."""
    if value is None:
        return None
    if not _VERSION_CHARS.fullmatch(value) or len(value) > limit:
        raise ValueError(f"must be 1-{limit} characters of letters, digits, '.', '_' or '-'")
    if value in (".", ".."):
        raise ValueError("must not be '.' or '..'")
    return value


def _threshold(description: str) -> Any:
    """One quality threshold of a request: a fraction in [0, 1], or absent (the deployment's default)."""
    return Field(default=None, ge=0, le=1, allow_inf_nan=False, description=description)


class RequestThresholds(BaseModel):
    """A build's quality thresholds (the seed's four); one left out is the deployment's default."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    min_completeness: float | None = _threshold("minimum share of rows with audio, text and case_id")
    min_consistency: float | None = _threshold("minimum share of rows passing the consistency rules")
    min_validity: float | None = _threshold("minimum share of rows passing the validity rules")
    min_overall_score: float | None = _threshold("minimum mean of the five quality metrics")


class BuildRequest(BaseModel):
    """What a dataset build selects and how it splits it; every field has a default."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    min_error_score: float = Field(
        default=0.5,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="keep cases whose error_score is at least this; a case without a score only when this is 0",
    )
    include_uncorrected: bool = Field(
        default=False, description="also keep cases without a corrected transcript (their text is the original)"
    )
    train_ratio: float = _ratio(0.8, "share of groups in train")
    val_ratio: float = _ratio(0.1, "share of groups in val")
    test_ratio: float = _ratio(0.1, "share of groups in test")
    max_samples: int | None = Field(
        default=None, gt=0, le=MAX_SAMPLES, description="at most this many rows over all splits"
    )
    balance_error_types: bool = Field(
        default=True, description="take as many cases of each primary error type as of the rarest one"
    )
    create_version: bool = Field(default=True, description="register the dataset as a data version")
    version_name: str | None = Field(
        default=None,
        json_schema_extra={"pattern": _VERSION_PATTERN, "minLength": 1, "maxLength": MAX_VERSION_NAME},
    )
    parent_version: str | None = Field(
        default=None,
        json_schema_extra={"pattern": _VERSION_PATTERN, "minLength": 1, "maxLength": MAX_PARENT_VERSION},
    )

    quality_thresholds: RequestThresholds | None = Field(
        default=None, description="the build's quality thresholds; each one left out is the deployment's default"
    )
    allow_failed_quality: bool = Field(
        default=False,
        description="register the version even when the quality check fails (the entry is then flagged "
        "quality_failed); by default a failed dataset is built and reported but not versioned",
    )

    min_duration_s: float | None = Field(
        default=None, ge=0, le=MAX_AUDIO_SECONDS, allow_inf_nan=False,
        description="keep rows whose audio lasts at least this many seconds (a row without duration_s: its "
        "clip's header is read; an unreadable clip is left out)",
    )
    max_duration_s: float | None = Field(
        default=None, gt=0, le=MAX_AUDIO_SECONDS, allow_inf_nan=False,
        description="keep rows whose audio lasts at most this many seconds (30 for Whisper's window); "
        "augmented rows past it are not written",
    )
    augment: list[Any] | None = Field(
        default=None,
        description="transforms applied to each train row's audio, each giving one more train row in an "
        'augmented dataset of its own, e.g. [{"type": "speed", "factor": 0.9}, {"type": "noise", "snr_db": 20}, '
        '{"type": "gain", "db": -6}] (docs/datasets.md)',
        json_schema_extra={"minItems": 1, "items": {"type": "object", "required": ["type"]}},
    )

    augment_dataset_id: str | None = Field(
        default=None,
        description="augment this finished dataset instead of selecting cases: the build writes its augmented "
        "copy by `augment` (train rows only) as a dataset and version of its own, whose parent is the source "
        "dataset's newest version (or parent_version); the api's augment_dataset op uploads such requests",
        json_schema_extra={"pattern": _VERSION_PATTERN, "minLength": 1, "maxLength": MAX_DATASET_ID},
    )

    @field_validator("augment")
    @classmethod
    def _augment(cls, value: list[Any] | None) -> list[Any] | None:
        """Each transform known and in range (audio_transforms' rules); kept as its spec, numbers as floats."""
        if value is None:
            return None
        return [transform.spec() for transform in parse_transforms(value, "augment")]

    @field_validator("version_name")
    @classmethod
    def _version_name(cls, value: str | None) -> str | None:
        """version_name is path-safe."""
        return _check_version(value, MAX_VERSION_NAME)

    @field_validator("parent_version")
    @classmethod
    def _parent_version(cls, value: str | None) -> str | None:
        """parent_version is path-safe."""
        return _check_version(value, MAX_PARENT_VERSION)

    @field_validator("augment_dataset_id")
    @classmethod
    def _augment_dataset_id(cls, value: str | None) -> str | None:
        """A dataset id is one name under finetuning_datasets/: path-safe."""
        return _check_version(value, MAX_DATASET_ID)

    @model_validator(mode="after")
    def _augments_a_dataset(self) -> BuildRequest:
        """A request naming a dataset to augment says how (augment) and selects nothing."""
        if self.augment_dataset_id is None:
            return self
        if not self.augment:
            raise ValueError("augment_dataset_id needs augment: the transforms to apply to its train rows")
        selecting = [name for name in _SELECTION_FIELDS if name in self.model_fields_set]
        if selecting:
            raise ValueError(f"augment_dataset_id augments a finished dataset as it is: {', '.join(selecting)} "
                             "select cases and do not apply (leave them out)")
        return self

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> BuildRequest:
        """The three shares cover every group exactly once."""
        total = math.fsum(self.ratios)
        if abs(total - 1) > RATIO_TOLERANCE:
            raise ValueError(
                f"train_ratio + val_ratio + test_ratio must sum to 1, got {total:.6g} "
                f"({self.train_ratio:g} + {self.val_ratio:g} + {self.test_ratio:g})"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The audio fields only when given: a request without them dumps (into metadata.json, the card, the
        registry) as before they existed, so datasets built before are described the same way."""
        dumped: dict[str, Any] = handler(self)
        return {key: value for key, value in dumped.items() if key not in _AUDIO_FIELDS or value is not None}

    @model_validator(mode="after")
    def _duration_range(self) -> BuildRequest:
        """A range that can hold a clip."""
        low, high = self.min_duration_s, self.max_duration_s
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_duration_s ({low:g}) must not exceed max_duration_s ({high:g})")
        return self

    @property
    def transforms(self) -> tuple[Transform, ...]:
        """The augmentation's transforms, parsed (empty when the request augments nothing)."""
        return parse_transforms(self.augment, "augment") if self.augment else ()

    @property
    def filters_duration(self) -> bool:
        return self.min_duration_s is not None or self.max_duration_s is not None

    @property
    def reads_audio(self) -> bool:
        """Whether the build reads the rows' audio: only a duration filter or an augmentation needs it."""
        return self.filters_duration or bool(self.augment)

    def thresholds(self, default: QualityThresholds | None = None) -> QualityThresholds:
        """The thresholds this build applies: the request's, each one left out taken from `default` (the
        deployment's; else the seed's defaults)."""
        base = (default or QualityThresholds()).as_dict()
        given = self.quality_thresholds.model_dump(exclude_none=True) if self.quality_thresholds else {}
        return QualityThresholds(**{name: given.get(name, base[name]) for name in THRESHOLD_NAMES})

    @property
    def ratios(self) -> tuple[float, float, float]:
        """The (train, val, test) shares."""
        return (self.train_ratio, self.val_ratio, self.test_ratio)


def _describe(error: ValidationError) -> str:
    """A person-readable summary of a validation error: ``field: message; ...``."""
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(p) for p in item["loc"]) or "request"
        if item["type"] == "extra_forbidden":
            model = RequestThresholds if item["loc"][:1] == ("quality_thresholds",) else BuildRequest
            known = ", ".join(model.model_fields)
            parts.append(f"{field}: unknown field (known fields: {known})")
            continue
        message = validation_message(item)
        # A model-level error's input is the whole request, and augment's message names the transform and its
        # value: either already says what was given.
        if field == "request" or (field == "augment" and item["type"] == "value_error"):
            parts.append(f"{field}: {message}")
        else:
            parts.append(f"{field}: {message} (got {shown_input(item.get('input'))})")
    return "; ".join(parts)


def parse_build_request(data: Payload) -> BuildRequest:
    """Parse an uploaded build request or raise InvalidBuildRequest saying what is wrong."""
    value = decode_json_object(
        data, what="build request", max_bytes=MAX_REQUEST_BYTES, error=InvalidBuildRequest, reject_duplicate_keys=True
    )
    try:
        return BuildRequest.model_validate(value)
    except ValidationError as exc:
        raise InvalidBuildRequest(_describe(exc)) from None
