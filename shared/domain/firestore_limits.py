"""What a Firestore document can hold, checked before a write so a value it refuses is bad input, not an outage.

Firestore refuses a whole write (InvalidArgument, or a ValueError while the client encodes it) for a value it
cannot store; retried, that fails on every delivery. The limits, from Firestore's "Quotas and limits" page
(https://cloud.google.com/firestore/quotas), each checked against the emulator:

- integers are signed 64-bit: -2^63 .. 2^63-1 (the client refuses others while encoding);
- an array cannot hold an array directly (an array of maps holding arrays is fine);
- a field name cannot be empty or match ``__.*__`` (``__name__`` is reserved), at any depth;
- a field path (the map keys from the document down to a field, joined by ``.``; arrays add no name) is at
  most 1,500 bytes, so a single name is too;
- maps and arrays nest at most 20 deep: a top-level field's map or array is depth 1, each map or array in it
  one more;
- a document is at most 1 MiB (1,048,576 bytes) as Firestore sizes it (``storage_size``).

An indexed string longer than 1,500 bytes is kept, its index entry truncated (queries on it grow inconsistent):
so a value meant to be grouped or counted by (a model version) is refused past that, while a transcript is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
MAX_DEPTH = 20
MAX_FIELD_PATH_BYTES = 1500
MAX_INDEXED_VALUE_BYTES = 1500
MAX_DOCUMENT_BYTES = 1_048_576
# What a document's own name costs (Firestore: its path's string sizes + 16); a case's id is at most 1,500 bytes.
DOCUMENT_NAME_BYTES = 1600
_RESERVED_NAME = re.compile(r"__.*__", re.DOTALL)


def field_name_problem(name: object) -> str | None:
    """Why `name` cannot name a Firestore field (its length aside), or None."""
    if not isinstance(name, str):
        return f"field name {name!r} is not text"
    if not name:
        return "a field name is empty"
    if name.startswith("__") and _RESERVED_NAME.fullmatch(name):
        return f"field name {_shown(name)} is reserved (Firestore refuses names like __name__)"
    return None


def field_path_problem(*names: str) -> str | None:
    """Why the field path of `names` (map keys from the document down) is too long for Firestore, or None."""
    if len(".".join(names).encode("utf-8", "surrogatepass")) > MAX_FIELD_PATH_BYTES:
        return (f"{_where(names)}: the field path is over Firestore's {MAX_FIELD_PATH_BYTES}-byte limit "
                "(a field name, with the names of the maps holding it)")
    return None


def unstorable_reason(fields: Mapping[str, Any], reserve_bytes: int = 0) -> str | None:
    """Why Firestore would refuse a document of `fields` (the first problem found, naming where), or None;
    `reserve_bytes` of the document's size are left for fields the caller adds to them.

    Iterative, so a deeply nested value cannot exhaust the interpreter's stack.
    """
    # (value, path of map keys down to it, its depth, whether it sits directly in an array)
    pending: list[tuple[Any, tuple[str, ...], int, bool]] = []
    problem = _names_problem(fields, ())
    if problem:
        return problem
    pending.extend((value, (str(key),), 0, False) for key, value in fields.items())
    while pending:
        value, path, depth, in_array = pending.pop()
        if type(value) is int and not MIN_INTEGER <= value <= MAX_INTEGER:
            return (f"{_where(path)}: integer {_shown(str(value))} is outside Firestore's signed 64-bit range "
                    f"({MIN_INTEGER} to {MAX_INTEGER})")
        if not isinstance(value, dict | list | tuple):
            continue
        if depth + 1 > MAX_DEPTH:
            return f"{_where(path)}: maps and arrays nest more than {MAX_DEPTH} deep (Firestore's limit)"
        if isinstance(value, dict):
            problem = _names_problem(value, path)
            if problem:
                return problem
            pending.extend((item, (*path, str(key)), depth + 1, False) for key, item in value.items())
        elif in_array:
            return f"{_where(path)}: an array directly inside an array (Firestore cannot store one)"
        else:
            pending.extend((item, path, depth + 1, True) for item in value)
    size = DOCUMENT_NAME_BYTES + reserve_bytes + storage_size(fields)
    if size > MAX_DOCUMENT_BYTES:
        return f"the document would be about {size} bytes in Firestore, over its limit of {MAX_DOCUMENT_BYTES}"
    return None


def indexed_value_problem(name: str, value: str | None) -> str | None:
    """Why `value` cannot be a field grouped or counted by (over 1,500 bytes: its index entry is cut), or None."""
    if value is None:
        return None
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_INDEXED_VALUE_BYTES:
        return f"{name} is {size} bytes in UTF-8, over Firestore's {MAX_INDEXED_VALUE_BYTES}-byte indexed value limit"
    return None


def storage_size(value: Any) -> int:
    """A value's size as Firestore counts it for the document limit (strings: UTF-8 bytes + 1; numbers, times:
    8; booleans, null: 1; a map: its names and values; an array: its values). Iterative."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += _string_size(item)
        elif isinstance(item, dict):
            total += sum(_string_size(str(key)) for key in item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, bytes | bytearray):
            total += len(item)
        else:  # numbers, times
            total += 8
    return total


def _names_problem(value: Mapping[Any, Any], path: tuple[str, ...]) -> str | None:
    base = len(".".join(path).encode("utf-8", "surrogatepass")) + 1 if path else 0  # the holders' path and a dot
    for key in value:
        problem = field_name_problem(key)
        if problem:
            return f"{_where(path)}: {problem}" if path else problem
        if base + len(key.encode("utf-8", "surrogatepass")) > MAX_FIELD_PATH_BYTES:
            return field_path_problem(*path, key)
    return None


def _string_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1


def _where(path: tuple[str, ...]) -> str:
    return "field " + _shown(".".join(path))


def _shown(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")
