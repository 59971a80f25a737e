"""The case snapshot (``learning_data/cases/*.parquet``): its Arrow schema and stored cases as its rows.

The snapshot is the analytical store (DESIGN.md, "Two stores"): Parquet parts of stored cases that a build,
an analyst or a BigQuery external table read with a columnar engine. For a ``case_id`` the row with the latest
``updated_at`` wins, so a part may repeat a case an older part holds.

Columns. The contract's required ones (``REQUIRED_COLUMNS``) are in every part this project writes; the
optional ones (``OPTIONAL_COLUMNS``) may be missing from a part written by an older version or by hand, and a
reader fills them (``split_bucket`` and ``sample_key`` it computes, the others are null).

Values are stored as a dataset build reads them (shared/domain/dataset_build.py), so the build over the
snapshot makes the same rows as ``build_splits`` over the same cases: numbers through the build's own
``_number`` (a bool, a non-number or a non-finite value is null), texts through ``str``, a corrected transcript
only when it is a string. Two values are computed once per case, when its row is written, because no SQL
engine has blake2b, and one because it saves a build reading every corrected transcript:

- ``split_bucket``: the point in [0, 1) that places the case's group (speaker, else recording) among the
  cumulative split ratios, by exactly ``assign_split``'s hash; a build compares it with ``split_edges``.
- ``has_correction``: ``dataset_build.has_correction`` (a corrected transcript that is not blank by Python's
  ``str.strip``), what eligibility and the row's ``text`` read.
- ``sample_key``: the first 8 bytes of the build's keyed selection hash of the ``case_id`` as a signed int64
  (the top bit flipped), so ``ORDER BY sample_key, case_id`` is the build's stable sample order in any engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from shared.domain.dataset_build import (
    _SELECTION_PERSON,
    SPLITS,
    _number,
    _split_edges,
    _text,
    _unit_interval,
    group_key,
    has_correction,
)

TIMESTAMP = pa.timestamp("us", tz="UTC")

REQUIRED_FIELDS: tuple[pa.Field, ...] = (
    pa.field("case_id", pa.string(), nullable=False),
    pa.field("audio_path", pa.string()),
    pa.field("original_transcript", pa.string()),
    pa.field("corrected_transcript", pa.string()),
    pa.field("error_types", pa.list_(pa.string())),
    pa.field("error_score", pa.float64()),
    pa.field("speaker_id", pa.string()),
    pa.field("model_version", pa.string()),
    pa.field("created_at", TIMESTAMP),
    pa.field("updated_at", TIMESTAMP),
)
OPTIONAL_FIELDS: tuple[pa.Field, ...] = (
    pa.field("corrected", pa.bool_()),
    pa.field("language", pa.string()),
    pa.field("duration_s", pa.float64()),
    pa.field("wer", pa.float64()),
    pa.field("cer", pa.float64()),
    pa.field("normalized_wer", pa.float64()),
    pa.field("normalized_cer", pa.float64()),
    pa.field("error_types_source", pa.string()),
    pa.field("has_correction", pa.bool_()),
    pa.field("split_bucket", pa.float64()),
    pa.field("sample_key", pa.int64()),
)
SNAPSHOT_SCHEMA = pa.schema(REQUIRED_FIELDS + OPTIONAL_FIELDS)
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.name for f in REQUIRED_FIELDS)
OPTIONAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in OPTIONAL_FIELDS)

_TEXT_COLUMNS = ("audio_path", "original_transcript", "speaker_id", "model_version", "language", "error_types_source")
_NUMBER_COLUMNS = ("error_score", "duration_s", "wer", "cer", "normalized_wer", "normalized_cer")
_SIGN_FLIP = 1 << 63
# Every stored-case field a snapshot row is made of: a reader of the cases for the snapshot reads only these.
SOURCE_FIELDS = ("case_id", "corrected_transcript", "error_types", "created_at", "updated_at", "corrected",
                 *_TEXT_COLUMNS, *_NUMBER_COLUMNS)


def split_bucket(key: str) -> float:
    """The group key's point in [0, 1): the same blake2b value ``assign_split`` places among the ratios."""
    return _unit_interval(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest())


def sample_key(case_id: str) -> int:
    """The build's selection hash of a case_id as an int64 whose signed order is the hash's unsigned order."""
    digest = hashlib.blake2b(case_id.encode("utf-8"), digest_size=8, person=_SELECTION_PERSON).digest()
    return int.from_bytes(digest, "big") - _SIGN_FLIP


def split_edges(ratios: tuple[float, float, float]) -> tuple[tuple[str, float], ...]:
    """Each split with the upper end of its share of [0, 1), in order: a bucket goes to the first edge above it."""
    return _split_edges(ratios)


def split_of_bucket(bucket: float, edges: tuple[tuple[str, float], ...]) -> str:
    """The split a stored ``split_bucket`` falls in (what the SQL's CASE over the edges computes)."""
    for name, edge in edges:
        if bucket < edge:
            return name
    raise ValueError(f"split_bucket {bucket!r} is outside [0, 1)")


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _timestamp(value: Any) -> datetime | None:
    """A stored timestamp in UTC: a datetime (naive means UTC), an ISO string, or None."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def snapshot_row(case: Mapping[str, Any]) -> dict[str, Any]:
    """A stored case as a snapshot row (every column of SNAPSHOT_SCHEMA); ValueError without a case_id."""
    case_id = _text(case.get("case_id"))
    if not case_id:
        raise ValueError("a snapshot row needs a case_id")
    corrected = case.get("corrected_transcript")
    row: dict[str, Any] = {
        "case_id": case_id,
        "corrected_transcript": corrected if isinstance(corrected, str) else None,
        # As to_row reads them: every item as text, in the stored order (the first is the primary type).
        "error_types": [str(name) for name in case.get("error_types") or []],
        "created_at": _timestamp(case.get("created_at")),
        "updated_at": _timestamp(case.get("updated_at")),
        "corrected": case["corrected"] if isinstance(case.get("corrected"), bool) else None,
        "has_correction": has_correction(case),
        "split_bucket": split_bucket(group_key(case)),
        "sample_key": sample_key(case_id),
    }
    for name in _TEXT_COLUMNS:
        row[name] = _optional_text(case.get(name))
    for name in _NUMBER_COLUMNS:
        row[name] = _number(case.get(name))
    return row


def cases_to_table(cases: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Stored cases as a table of SNAPSHOT_SCHEMA, in the given order."""
    columns: dict[str, list[Any]] = {name: [] for name in SNAPSHOT_SCHEMA.names}
    appends = [(name, columns[name].append) for name in SNAPSHOT_SCHEMA.names]
    for case in cases:
        row = snapshot_row(case)
        for name, append in appends:
            append(row[name])
    return pa.Table.from_pydict(columns, schema=SNAPSHOT_SCHEMA)


# -- which part columns a reader accepts -----------------------------------------------------------------------


def _kind(data_type: pa.DataType) -> str:
    """The family of an Arrow type that a reader may cast to the schema's type without losing meaning."""
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type) or pa.types.is_string_view(data_type):
        return "string"
    if pa.types.is_floating(data_type) or pa.types.is_integer(data_type):
        return "number"
    if pa.types.is_boolean(data_type):
        return "bool"
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return f"list<{_kind(data_type.value_type)}>"
    return str(data_type)


def schema_problems(schema: pa.Schema) -> list[str]:
    """What makes a part's schema unreadable as a snapshot part: a required column missing, a known column of
    an incompatible type (a string for a number, a string for a list...); [] when it is readable.

    Columns this schema does not know are ignored; a known one of a castable type (float32 for float64,
    large_string for string, a timestamp of another unit) is accepted.
    """
    problems = [f"missing required column {name!r}" for name in REQUIRED_COLUMNS if name not in schema.names]
    for expected in SNAPSHOT_SCHEMA:
        if expected.name not in schema.names:
            continue
        actual = schema.field(expected.name).type
        if pa.types.is_null(actual):
            continue  # an all-null column written without a type
        want, got = _kind(expected.type), _kind(actual)
        # An integer where a float is stored is fine; a float where an int64 key is stored is not.
        if got != want or (expected.name == "sample_key" and not pa.types.is_integer(actual)):
            problems.append(f"column {expected.name!r} is {actual}, expected {expected.type}")
    return problems


__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SNAPSHOT_SCHEMA",
    "SPLITS",
    "cases_to_table",
    "sample_key",
    "schema_problems",
    "snapshot_row",
    "split_bucket",
    "split_edges",
    "split_of_bucket",
]
