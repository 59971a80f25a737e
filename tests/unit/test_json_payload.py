"""Decoding bytes that must hold one JSON object, with a reason for each refusal."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shared.domain.json_payload import (
    decode_json,
    decode_json_object,
    json_kind,
    shown_input,
    validation_message,
)

BOM = b"\xef\xbb\xbf"


class Refused(ValueError):
    """The caller's own exception type."""


def decode(data: Any, **options: Any) -> dict[str, Any]:
    """``data`` as an object, refused as a ``thing`` of at most 100 bytes."""
    return decode_json_object(data, what="thing", max_bytes=100, error=Refused, **options)


def reason_of(data: Any, **options: Any) -> str:
    """The reason ``data`` is refused."""
    with pytest.raises(Refused) as info:
        decode(data, **options)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("{}", "thing must be bytes, got str"),
        (b"{}" + b" " * 99, "thing is 101 bytes, over the limit of 100 bytes"),
        (b'{"a": "\xff"}', "thing is not UTF-8 text (byte 7 is invalid)"),
        (b"{not json", "thing is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b"", "thing is not valid JSON: Expecting value at line 1 column 1"),
        (b'{"a": NaN}', "thing is not valid JSON: NaN is not allowed"),
        (b'{"a": -Infinity}', "thing is not valid JSON: -Infinity is not allowed"),
        (b"[1]", "thing must be a JSON object, got a JSON array"),
        (b'"x"', "thing must be a JSON object, got a JSON string"),
        (b"1.5", "thing must be a JSON object, got a JSON number"),
        (b"false", "thing must be a JSON object, got a JSON boolean"),
        (b"null", "thing must be a JSON object, got a JSON null"),
        (BOM + b"{}", "thing is not valid JSON: Unexpected UTF-8 BOM"),
    ],
)
def test_each_refusal_says_why(data: Any, expected: str) -> None:
    assert reason_of(data).startswith(expected)


def test_too_deep_nesting_is_refused_not_crashing() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    with pytest.raises(Refused, match=r"^thing is not acceptable JSON: nested too deeply$"):
        decode_json_object(deep, what="thing", max_bytes=len(deep), error=Refused)


def test_exactly_the_limit_is_accepted_and_bytes_like_inputs_too() -> None:
    exact = b'{"a": 1}' + b" " * 92
    assert decode(exact) == {"a": 1}
    assert decode(bytearray(b'{"a": [1, {"b": null}]}')) == {"a": [1, {"b": None}]}
    assert decode(memoryview(b'{"a": "\xc3\xa9"}')) == {"a": "é"}


def test_duplicate_keys_are_kept_last_unless_refused() -> None:
    twice = b'{"a": 1, "a": 2}'
    assert decode(twice) == {"a": 2}
    assert reason_of(twice, reject_duplicate_keys=True) == "thing gives field 'a' more than once"
    nested = b'{"a": {"b": 1, "b": 2}}'
    assert reason_of(nested, reject_duplicate_keys=True) == "thing gives field 'b' more than once"
    assert decode(b'{"a": 1, "b": 1}', reject_duplicate_keys=True) == {"a": 1, "b": 1}


def test_byte_order_mark_is_dropped_when_allowed() -> None:
    assert decode(BOM + b'{"a": 1}', allow_bom=True) == {"a": 1}
    assert decode(b'{"a": 1}', allow_bom=True) == {"a": 1}
    # The BOM still counts towards the size, and a bad byte is placed in the bytes as given.
    assert reason_of(BOM + b"{}" + b" " * 96, allow_bom=True).startswith("thing is 101 bytes")
    assert reason_of(BOM + b'{"a": "\xff"}', allow_bom=True) == "thing is not UTF-8 text (byte 10 is invalid)"


def test_nan_and_infinity_pass_when_allowed() -> None:
    value = decode(b'{"a": NaN, "b": Infinity}', allow_nan=True)
    assert math.isnan(value["a"])
    assert value["b"] == math.inf


def test_decode_json_takes_any_json_value() -> None:
    assert decode_json(b"[1, 2]", what="thing", max_bytes=10, error=Refused) == [1, 2]
    with pytest.raises(Refused, match=r"^thing is 11 bytes, over the limit of 10 bytes$"):
        decode_json(b"[1, 2, 3,4]", what="thing", max_bytes=10, error=Refused)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({}, "object"),
        ([], "array"),
        ("", "string"),
        (True, "boolean"),
        (None, "null"),
        (0, "number"),
        (0.5, "number"),
        ((1,), "tuple"),
    ],
)
def test_json_kind(value: Any, kind: str) -> None:
    assert json_kind(value) == kind


def test_validation_error_pieces() -> None:
    assert validation_message({"msg": "Value error, must be 1-64 characters"}) == "must be 1-64 characters"
    assert validation_message({"msg": "Input should be a valid number"}) == "Input should be a valid number"
    assert shown_input("x" * 10) == repr("x" * 10)
    long = shown_input("x" * 200)
    assert len(long) == 80
    assert long.endswith("...")


@pytest.mark.parametrize("raw", [
    b'{"extra": {"note": "bad \\ud800 here"}}',
    b'{"list": ["\\udfff"]}',
    b'{"\\ud834": "a lone high surrogate as a key"}',
])
def test_a_lone_surrogate_anywhere_is_refused_as_no_text(raw: bytes) -> None:
    with pytest.raises(Refused, match="lone surrogate"):
        decode_json(raw, what="thing", max_bytes=1_000, error=Refused)


def test_a_surrogate_pair_is_the_character_it_encodes() -> None:
    assert decode_json(b'{"t": "\\ud83d\\ude00"}', what="thing", max_bytes=100, error=Refused) == {"t": "\U0001f600"}
