"""What Firestore can store, as shared/domain/firestore_limits.py judges it (the same documents are written to the
emulator in tests/integration/test_unstorable_cases.py, which checks it refuses exactly the ones refused here)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.firestore_limits import (
    MAX_DOCUMENT_BYTES,
    field_path_problem,
    storage_size,
    unstorable_reason,
)


def nested(depth: int, leaf: Any = "x") -> Any:
    """`depth` maps, one inside the other, around `leaf`."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


# Documents at the edge of each limit, and one past it: (fields, what the reason says, or None when storable).
# Shared with the integration test that writes each to the emulator.
LIMIT_CASES: list[Any] = [
    pytest.param({"m": {"n": 2**63 - 1}}, None, id="int64-max"),
    pytest.param({"m": {"n": 2**63}}, "signed 64-bit", id="int64-max+1"),
    pytest.param({"m": {"n": -(2**63)}}, None, id="int64-min"),
    pytest.param({"m": {"n": -(2**63) - 1}}, "signed 64-bit", id="int64-min-1"),
    pytest.param({"m": {"a": [[1]]}}, "array directly inside an array", id="array-in-array"),
    pytest.param({"m": {"a": [{"b": [1]}]}}, None, id="array-in-map-in-array"),
    pytest.param({"m": {"": 1}}, "empty", id="empty-name"),
    pytest.param({"m": {"a": [{"": 1}]}}, "empty", id="empty-name-in-array"),
    pytest.param({"m": {"__name__": 1}}, "reserved", id="__name__"),
    pytest.param({"__x__": 1}, "reserved", id="__x__-top-level"),
    pytest.param({"m": {"a": [{"__name__": 1}]}}, "reserved", id="__name__-in-array"),
    pytest.param({"m": {"__": 1, "___": 2, "a.b": 3, "a`b": 4}}, None, id="names-that-are-fine"),
    pytest.param({"m": nested(20)}, None, id="depth-20"),
    pytest.param({"m": nested(21)}, "nest more than 20", id="depth-21"),
    pytest.param({"m": {"a": [nested(18)]}}, None, id="depth-20-through-an-array"),
    pytest.param({"m": {"a": [nested(19)]}}, "nest more than 20", id="depth-21-through-an-array"),
    pytest.param({"m": {"k" * 1498: 1}}, None, id="path-1500-bytes"),
    pytest.param({"m": {"k" * 1499: 1}}, "1500-byte", id="path-1501-bytes"),
    pytest.param({"a": [{"k" * 1498: 1}]}, None, id="path-1500-bytes-through-an-array"),
    pytest.param({"a": [{"k" * 1499: 1}]}, "1500-byte", id="path-1501-bytes-through-an-array"),
    pytest.param({"m": {"é" * 749: 1}}, None, id="path-1500-utf8-bytes"),
    pytest.param({"m": {"é" * 750: 1}}, "1500-byte", id="path-1502-utf8-bytes"),
    pytest.param({"k" * 1500: 1}, None, id="top-level-name-1500-bytes"),
    pytest.param({"k" * 1501: 1}, "1500-byte", id="top-level-name-1501-bytes"),
    pytest.param({"t": "x" * 1_000_000}, None, id="1-MB-string"),
    pytest.param({"a": [1] * 200_000}, "over its limit", id="200k-integers-1.6-MiB"),
    pytest.param({"t": "x" * 1_100_000}, "over its limit", id="1.1-MB-string"),
]


@pytest.mark.parametrize(("fields", "reason"), LIMIT_CASES)
def test_what_firestore_refuses_is_named(fields: dict[str, Any], reason: str | None) -> None:
    found = unstorable_reason(fields)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_the_reason_says_where() -> None:
    reason = unstorable_reason({"metadata": {"scores": {"big": 2**64}}})
    assert reason is not None and "'metadata.scores.big'" in reason and "18446744073709551616" in reason


def test_a_deep_value_is_judged_without_recursion() -> None:
    assert "nest more than 20" in (unstorable_reason({"m": nested(100_000)}) or "")


def test_the_reserve_counts_against_the_document_size() -> None:
    fields = {"t": "x" * (MAX_DOCUMENT_BYTES - 10_000)}
    assert unstorable_reason(fields) is None
    assert "over its limit" in (unstorable_reason(fields, reserve_bytes=10_000) or "")


def test_storage_size_follows_firestore_rules() -> None:
    # Strings: UTF-8 bytes + 1; numbers 8; booleans and null 1; maps: names + values; arrays: their values.
    assert storage_size("abc") == 4
    assert storage_size({"é": [1, 2.5, True, None]}) == 3 + 8 + 8 + 1 + 1


def test_a_field_path_counts_every_name_and_the_dots() -> None:
    assert field_path_problem("model_versions", "v" * 1485) is None
    assert "1500-byte" in (field_path_problem("model_versions", "v" * 1486) or "")
