"""JSON for what orjson does not know in stored data: timestamps as ISO text, bytes as base64."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

import orjson


def json_default(value: Any) -> Any:
    """orjson `default=`: datetimes and dates (Firestore timestamps included), bytes, pydantic models."""
    if isinstance(value, date):  # datetime is a date
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps_json(value: Any, *, indent: bool = False) -> bytes:
    """JSON bytes of stored data for an export: sorted keys, timestamps as ISO text."""
    option = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(value, default=json_default, option=option)
