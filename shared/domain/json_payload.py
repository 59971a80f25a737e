"""Bytes that must hold JSON (usually one JSON object), decoded with reasons a person can act on.

Every message arriving from outside (a Pub/Sub body, an uploaded request) goes through the same
steps: a size limit, UTF-8, ``json.loads`` with NaN and Infinity refused unless asked for, a
reason with line and column for bad syntax, "nested too deeply" instead of a crash, and for an
object the JSON type that came instead. Each failure raises the caller's own exception type
(``error(reason)``), and every reason starts with ``what`` (``"payload"``, ``"build request"``).

Also here: the small pieces the validation-error describers share (``validation_message``,
``shown_input``); how the pieces are put together differs per message kind, so that stays with it.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

Payload = bytes | bytearray | memoryview

MAX_SHOWN_INPUT = 80


def json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type (``array``, ``string``, ...); else the Python type's name."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def decode_json(
    data: Payload,
    *,
    what: str,
    max_bytes: int,
    error: Callable[[str], Exception],
    allow_nan: bool = False,
    reject_duplicate_keys: bool = False,
    allow_bom: bool = False,
) -> Any:
    """``data`` decoded as one JSON value, after checking its type, size, encoding and syntax.

    ``allow_nan`` lets ``NaN``/``Infinity`` through (for callers that reject them later, naming
    where); ``reject_duplicate_keys`` refuses an object giving a key twice (json keeps the last);
    ``allow_bom`` drops a leading UTF-8 byte-order mark instead of refusing it as bad JSON.
    """

    def reject_constant(name: str) -> Any:
        raise error(f"{what} is not valid JSON: {name} is not allowed")

    def reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise error(f"{what} gives field '{key}' more than once")
            result[key] = value
        return result

    if not isinstance(data, Payload):
        raise error(f"{what} must be bytes, got {type(data).__name__}")
    size = len(data)
    if size > max_bytes:
        raise error(f"{what} is {size} bytes, over the limit of {max_bytes} bytes")
    raw = bytes(data)
    skipped = 0
    if allow_bom and raw.startswith(codecs.BOM_UTF8):
        skipped = len(codecs.BOM_UTF8)
        raw = raw[skipped:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (byte {exc.start + skipped} is invalid)") from None
    try:
        value = json.loads(
            text,
            parse_constant=None if allow_nan else reject_constant,
            object_pairs_hook=reject_duplicates if reject_duplicate_keys else None,
        )
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise error(f"{what} is not acceptable JSON: nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text):  # the only way a string of valid UTF-8 JSON can hold one
        _refuse_lone_surrogates(value, what, error)
    return value


# A \uD800..\uDFFF escape: half of a pair, or a lone surrogate that is no text at all.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_lone_surrogates(value: Any, what: str, error: Callable[[str], Exception]) -> None:
    """Refuse a string (key or value, at any depth) holding an unpaired surrogate: it cannot be encoded as UTF-8,
    so no store (Firestore, a JSON export) can keep it; refused here, it is quarantined instead of retried."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = ord(item[exc.start])
                raise error(f"{what} holds a lone surrogate \\u{code:04x} in a string: that is not text") from None


def decode_json_object(
    data: Payload, *, what: str, error: Callable[[str], Exception], **options: Any
) -> dict[str, Any]:
    """``data`` decoded as one JSON object: ``decode_json`` with the same options, and a value of any other
    JSON type is refused, named by its type."""
    value = decode_json(data, what=what, error=error, **options)
    if not isinstance(value, dict):
        raise error(f"{what} must be a JSON object, got a JSON {json_kind(value)}")
    return value


# An HTTP request body larger than this is refused unread.
MAX_BODY_BYTES = 1_000_000


def decode_body(raw: bytes, error: Callable[[str], Exception], max_bytes: int = MAX_BODY_BYTES) -> Any:
    """An HTTP request body as JSON whatever its content type (None when empty); `error` says why it is not."""
    if not raw.strip():
        return None
    return decode_json(raw, what="the body", max_bytes=max_bytes, error=error)


def validation_message(item: Mapping[str, Any]) -> str:
    """A pydantic error item's message, without the ``Value error, `` prefix of a validator's ValueError."""
    return str(item["msg"]).removeprefix("Value error, ")


def shown_input(value: Any, limit: int = MAX_SHOWN_INPUT) -> str:
    """``repr(value)``, cut to at most ``limit`` characters (ending in ``...`` when cut)."""
    given = repr(value)
    return given if len(given) <= limit else given[: limit - 3] + "..."
