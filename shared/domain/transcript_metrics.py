"""Word and character error rates of a transcript against its correction, raw and normalized.

The reference is the corrected transcript, the hypothesis the model's original output.

- ``wer``/``cer``: jiwer 4 with its default transforms on the raw text, so casing and
  punctuation count as errors.
- ``normalized_wer``/``normalized_cer``: the same after :func:`normalize_english` on both sides
  (lowercase, number words turned into digits, punctuation removed, whitespace collapsed).

Empty texts (after the transforms, so whitespace-only counts as empty) follow jiwer:

- empty reference and empty hypothesis: 0.0;
- empty reference, non-empty hypothesis: the number of inserted hypothesis words for WER
  (characters, spaces included, for CER): the error count over a denominator of 1, so the
  rate can exceed 1.0;
- non-empty reference, empty hypothesis: 1.0 (every reference unit deleted).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import jiwer
from pydantic import BaseModel, ConfigDict
from text_to_num import alpha2digit

_DASHES_AND_SLASHES = re.compile(r"[\u2010-\u2015/-]")
# Thousands separators go before punctuation removal would split "1,000" into "1 000".
_DIGIT_GROUP_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_PERCENT = re.compile(r"%")
_WHITESPACE = re.compile(r"\s+")


class TranscriptScores(BaseModel):
    """Error rates of a hypothesis against a reference."""

    model_config = ConfigDict(frozen=True)

    wer: float
    cer: float
    normalized_wer: float
    normalized_cer: float


@lru_cache(maxsize=8192)
def is_punctuation(ch: str) -> bool:
    """Whether ``ch`` is Unicode punctuation (cached: the category lookup dominated scoring time)."""
    return unicodedata.category(ch).startswith("P")


def _strip_punctuation(text: str) -> str:
    """Drop Unicode punctuation, keeping a decimal point between two digits."""
    # A text holds a few distinct marks: one regex of those beats a Python loop over every character.
    marks = frozenset(ch for ch in set(text) if is_punctuation(ch))
    if not marks:
        return text
    return _marks_pattern(marks).sub(_drop_mark, text)


@lru_cache(maxsize=512)
def _marks_pattern(marks: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(marks)) + "]")


def _drop_mark(match: re.Match[str]) -> str:
    text, i = match.string, match.start()
    between_digits = 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
    return "." if match.group() == "." and between_digits else ""


# Scoring and the taxonomy normalize the same two texts several times per pair; the cache makes that once.
@lru_cache(maxsize=1024)
def normalize_english(text: str, *, number_words: bool = True) -> str:
    """Lowercase, turn number words into digits, drop punctuation and collapse whitespace.

    ``number_words=False`` skips the number parser (the costliest step) for a text known to hold no words.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    # Dashes become spaces first so "twenty-five" and "one-on-one" reach the number parser as words.
    text = _DASHES_AND_SLASHES.sub(" ", text)
    if number_words:
        # threshold=0: convert every number word, even an isolated "one"; both sides get the same treatment.
        text = alpha2digit(text, "en", threshold=0)
    text = _DIGIT_GROUP_COMMA.sub("", text)
    text = _PERCENT.sub(" percent ", text)
    text = _strip_punctuation(text)
    return _WHITESPACE.sub(" ", text).strip()


@lru_cache(maxsize=256)
def normalized_word_alignment(reference: str, hypothesis: str) -> jiwer.WordOutput:
    """jiwer's word alignment of two normalized texts (``normalize_english`` output).

    Cached because scoring (normalized WER) and the error taxonomy (its word rules) align the same pair.
    """
    return jiwer.process_words(reference, hypothesis)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER with jiwer's default transforms (see the module docstring for empty texts)."""
    return float(jiwer.wer(reference, hypothesis))


def char_error_rate(reference: str, hypothesis: str) -> float:
    """CER with jiwer's default transforms (see the module docstring for empty texts)."""
    return float(jiwer.cer(reference, hypothesis))


def score_transcript(reference: str, hypothesis: str) -> TranscriptScores:
    """Raw and normalized WER/CER of ``hypothesis`` (model output) against ``reference`` (correction)."""
    norm_ref = normalize_english(reference)
    norm_hyp = normalize_english(hypothesis)
    # Texts equal after normalization (a casing or punctuation fix) have no normalized error: jiwer says 0.0 too.
    same = norm_ref == norm_hyp
    return TranscriptScores(
        wer=word_error_rate(reference, hypothesis),
        cer=char_error_rate(reference, hypothesis),
        normalized_wer=0.0 if same else float(normalized_word_alignment(norm_ref, norm_hyp).wer),
        normalized_cer=0.0 if same else char_error_rate(norm_ref, norm_hyp),
    )
