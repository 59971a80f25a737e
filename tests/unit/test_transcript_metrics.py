"""WER/CER, raw and normalized, including the empty-text cases."""

from __future__ import annotations

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.transcript_metrics import TranscriptScores, normalize_english, score_transcript

PAIRS = [
    ("the cat sat on the mat", "the cat sit on mat"),
    ("This is all caps", "THIS IS ALL CAPS"),
    ("Hello, world.", "hello world"),
    ("I have twenty-five apples.", "i have 25 apples"),
    ("one two three four", "one two three four five six"),
]


@pytest.mark.parametrize(("reference", "hypothesis"), PAIRS)
def test_raw_rates_equal_jiwer_defaults(reference: str, hypothesis: str) -> None:
    scores = score_transcript(reference, hypothesis)
    assert scores.wer == pytest.approx(jiwer.wer(reference, hypothesis))
    assert scores.cer == pytest.approx(jiwer.cer(reference, hypothesis))


@pytest.mark.parametrize(("reference", "hypothesis"), PAIRS)
def test_normalized_rates_equal_jiwer_on_normalized_text(reference: str, hypothesis: str) -> None:
    scores = score_transcript(reference, hypothesis)
    norm_ref, norm_hyp = normalize_english(reference), normalize_english(hypothesis)
    assert scores.normalized_wer == pytest.approx(jiwer.wer(norm_ref, norm_hyp))
    assert scores.normalized_cer == pytest.approx(jiwer.cer(norm_ref, norm_hyp))


def test_concrete_values() -> None:
    # 1 substitution + 1 deletion over 6 reference words.
    assert score_transcript("the cat sat on the mat", "the cat sit on mat").wer == pytest.approx(2 / 6)
    caps = score_transcript("This is all caps", "THIS IS ALL CAPS")
    assert caps.wer == 1.0
    assert caps.cer == pytest.approx(12 / 16)
    assert caps.normalized_wer == 0.0
    assert caps.normalized_cer == 0.0


def test_casing_and_punctuation_count_only_in_raw_rates() -> None:
    scores = score_transcript("Hello, world.", "hello world")
    assert scores.wer == 1.0
    assert scores.cer == pytest.approx(3 / 13)
    assert (scores.normalized_wer, scores.normalized_cer) == (0.0, 0.0)


def test_number_words_and_digits_are_unified_when_normalized() -> None:
    scores = score_transcript("I have twenty-five apples.", "i have 25 apples")
    assert scores.wer == pytest.approx(3 / 4)  # "I", "twenty-five", "apples." differ; "have" matches
    assert scores.normalized_wer == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello,   World!", "hello world"),
        ("I have twenty-five apples.", "i have 25 apples"),
        ("three hundred and forty two", "342"),
        ("I ate one apple", "i ate 1 apple"),
        ("It costs 1,000,000 dollars", "it costs 1000000 dollars"),
        ("pi is 3.14.", "pi is 3.14"),
        ("two point five", "2.5"),
        ("50% off", "50 percent off"),
        ("fifty percent off", "50 percent off"),
        ("don't stop", "dont stop"),
        ("well-known", "well known"),
        ("  \t\n ", ""),
        ("", ""),
    ],
)
def test_normalize_english(text: str, expected: str) -> None:
    assert normalize_english(text) == expected


def test_both_empty_is_zero() -> None:
    assert score_transcript("", "") == TranscriptScores(wer=0.0, cer=0.0, normalized_wer=0.0, normalized_cer=0.0)
    assert score_transcript("  ", "\n") == TranscriptScores(wer=0.0, cer=0.0, normalized_wer=0.0, normalized_cer=0.0)


def test_empty_reference_counts_inserted_words_and_characters() -> None:
    scores = score_transcript("", "a b")
    assert scores == TranscriptScores(wer=2.0, cer=3.0, normalized_wer=2.0, normalized_cer=3.0)


def test_reference_empty_only_after_normalization() -> None:
    scores = score_transcript("...", "uh")
    assert scores.wer == 1.0  # "..." is one raw word, substituted
    assert scores.normalized_wer == 1.0  # no reference word left, one inserted


def test_empty_hypothesis_deletes_everything() -> None:
    scores = score_transcript("the cat sat", "")
    assert scores == TranscriptScores(wer=1.0, cer=1.0, normalized_wer=1.0, normalized_cer=1.0)
    assert score_transcript("the cat sat", "   ").wer == 1.0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_scores_are_defined_for_any_text(reference: str, hypothesis: str) -> None:
    scores = score_transcript(reference, hypothesis)
    for value in (scores.wer, scores.cer, scores.normalized_wer, scores.normalized_cer):
        assert value >= 0.0
