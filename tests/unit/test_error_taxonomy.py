"""Each taxonomy rule on a positive and a negative example, and robustness on any text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.error_taxonomy import ERROR_TYPES, derive_error_types


def test_error_types_are_the_documented_names() -> None:
    assert ERROR_TYPES == (
        "all_caps",
        "casing",
        "deletion",
        "empty_output",
        "hallucination",
        "insertion",
        "numerals",
        "punctuation",
        "substitution",
        "truncation",
    )


@pytest.mark.parametrize(
    ("original", "corrected", "expected"),
    [
        # empty_output
        ("", "hello there", ["empty_output"]),
        ("  \n", "hello there", ["empty_output"]),
        ("", "", []),
        ("hello", "", ["insertion"]),
        ("...", "hello", ["deletion", "punctuation"]),
        # all_caps
        ("THIS IS ALL CAPS", "This is all caps", ["all_caps"]),
        ("THIS IS ALL CAPS", "THIS IS ALL CAPS", []),
        ("I went", "I went", []),
        # casing
        ("this is paris", "this is Paris", ["casing"]),
        ("this is Paris", "this is Paris", []),
        # punctuation
        ("hello world", "hello, world.", ["punctuation"]),
        ("wait - what", "wait what", ["punctuation"]),
        ("hello, world.", "hello, world.", []),
        # substitution
        ("the cat sat", "the dog sat", ["substitution"]),
        ("the cat sat", "the cat sat", []),
        # deletion
        ("the sat on the mat", "the cat sat on the mat", ["deletion"]),
        ("the cat sat on", "the cat sat on the mat", ["deletion"]),
        # insertion
        ("the big cat sat on the mat", "the cat sat on the mat", ["insertion"]),
        ("the cat", "the cat", []),
        # hallucination
        ("the cat sat on the mat and then it went home", "the cat sat on the mat", ["hallucination"]),
        ("thank you thank you thank you", "thank you", ["hallucination"]),
        ("no no no", "no", ["hallucination"]),
        ("no no", "no", ["insertion"]),
        ("go go go home", "go home", ["hallucination"]),
        ("go go home", "go home", ["insertion"]),
        ("i see i see i see it", "i see it", ["hallucination"]),
        ("no " * 500, "no", ["hallucination"]),
        ("the cat sat on the mat and then", "the cat sat on the mat", ["insertion"]),
        # numerals
        ("i have twenty five apples", "i have 25 apples", ["numerals"]),
        ("i ate 1 apple", "i ate one apple", ["numerals"]),
        ("i have twenty five apples", "i have twenty six apples", ["substitution"]),
        ("i have 25 apples", "i have 26 apples", ["substitution"]),
        # truncation
        ("the cat sat", "the cat sat on the mat", ["truncation"]),
        ("the cat sat on the", "the cat sat on the mat", ["deletion"]),
        ("a dog sat", "the cat sat on the mat", ["substitution", "truncation"]),
        # combinations, sorted
        ("i have 25 apples", "I have twenty-five apples.", ["casing", "numerals", "punctuation"]),
        ("HELLO WORLD THE", "Hello, world.", ["all_caps", "insertion", "punctuation"]),
    ],
)
def test_rules(original: str, corrected: str, expected: list[str]) -> None:
    assert derive_error_types(original, corrected) == expected


def test_all_caps_replaces_casing() -> None:
    types = derive_error_types("HELLO THERE", "Hello there")
    assert "all_caps" in types
    assert "casing" not in types


def test_output_is_deterministic_sorted_and_known() -> None:
    original, corrected = "THE KAT SAT SAT SAT SAT, 5", "The cat sat on the mat, five!"
    first = derive_error_types(original, corrected)
    assert first == derive_error_types(original, corrected)
    assert first == sorted(set(first))
    assert set(first) <= set(ERROR_TYPES)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_never_crashes_on_arbitrary_text(original: str, corrected: str) -> None:
    types = derive_error_types(original, corrected)
    assert types == sorted(set(types))
    assert set(types) <= set(ERROR_TYPES)
    if original == corrected:
        assert types == []


words = st.sampled_from(["the", "The", "CAT", "cat,", "one", "1", "twenty", "five", "25", "-", "mat.", "no"])


@settings(max_examples=300, deadline=None)
@given(st.lists(words, max_size=12), st.lists(words, max_size=12))
def test_never_crashes_on_word_salad(original: list[str], corrected: list[str]) -> None:
    types = derive_error_types(" ".join(original), " ".join(corrected))
    assert set(types) <= set(ERROR_TYPES)
