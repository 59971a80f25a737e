"""STT error taxonomy: which kinds of error separate a model's output from its correction.

``original`` is the model's output (hypothesis), ``corrected`` the reviewer's text (reference).
Word-level rules read jiwer's alignment of the two texts after ``normalize_english`` (lowercase,
number words as digits, no punctuation), so a casing, punctuation or numeral difference never
also counts as a substitution. The rules, one line each:

- empty_output: the original is empty or whitespace while the corrected is not (no other type then).
- all_caps: every cased letter of the original is upper case (at least two) and the corrected has lower case.
- casing: an aligned word differs only in letter case (not reported when all_caps is).
- punctuation: an aligned word differs in its punctuation, or the standalone punctuation marks differ.
- numerals: a quantity is written in digits on one side and in number words on the other.
- substitution: the alignment has a substituted word.
- deletion: a corrected word is missing from the original, other than a truncated tail.
- insertion: the original has an extra run of fewer than 4 words that is not part of a repetition loop.
- hallucination: the original has an inserted run of at least 4 words, or an inserted run inside
  a loop (an n-gram, n <= 4, repeated at least 3 times in a row).
- truncation: the alignment ends with at least 3 deleted words after a non-empty original.

Only these names are known: a failure event's ``error_types`` must use them (free-form labels are
rejected, so statistics by error type stay comparable).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import jiwer

from shared.domain.transcript_metrics import is_punctuation, normalize_english, normalized_word_alignment

ERROR_TYPES: tuple[str, ...] = (
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

HALLUCINATION_MIN_RUN = 4
TRUNCATION_MIN_TAIL = 3
LOOP_MAX_NGRAM = 4
LOOP_MIN_REPEATS = 3


# Real transcripts reuse a small vocabulary, so most tokens are keyed once per process.
@lru_cache(maxsize=65536)
def _word_key(token: str) -> str:
    """A raw token with its punctuation removed and lowercased, for case/punctuation comparison."""
    return "".join(ch for ch in token if not is_punctuation(ch)).lower()


def _is_all_caps(text: str) -> bool:
    """Whether every cased letter is upper case, with at least two cased letters."""
    cased = [ch for ch in text if ch.isupper() or ch.islower()]
    return len(cased) >= 2 and all(ch.isupper() for ch in cased)


def _alignment(reference: list[str], hypothesis: list[str]) -> list[jiwer.AlignmentChunk]:
    """jiwer's alignment of two token lists (which must both be non-empty)."""
    # Tokens carry no whitespace, so joining with spaces and jiwer's default split is lossless.
    return list(jiwer.process_words(" ".join(reference), " ".join(hypothesis)).alignments[0])


def _surface_types(original: str, corrected: str) -> set[str]:
    """casing and punctuation, read from an alignment of the raw tokens on their lowercase letters."""
    found: set[str] = set()
    orig_tokens = original.split()
    corr_tokens = corrected.split()
    orig_words = [(t, key) for t in orig_tokens if (key := _word_key(t))]
    corr_words = [(t, key) for t in corr_tokens if (key := _word_key(t))]
    standalone_orig = [t for t in orig_tokens if not _word_key(t)]
    standalone_corr = [t for t in corr_tokens if not _word_key(t)]
    if standalone_orig != standalone_corr:
        found.add("punctuation")
    if not orig_words or not corr_words:
        return found
    corr_keys, orig_keys = [k for _, k in corr_words], [k for _, k in orig_words]
    # The same words (a casing or punctuation fix, the usual correction) align one to one: no alignment to run.
    same = [(0, 0, len(corr_keys))] if corr_keys == orig_keys else [
        (chunk.ref_start_idx, chunk.hyp_start_idx, chunk.ref_end_idx - chunk.ref_start_idx)
        for chunk in _alignment(corr_keys, orig_keys) if chunk.type == "equal"
    ]
    for corr_start, orig_start, length in same:
        for offset in range(length):
            corr_raw = corr_words[corr_start + offset][0]
            orig_raw = orig_words[orig_start + offset][0]
            if [c for c in corr_raw if is_punctuation(c)] != [c for c in orig_raw if is_punctuation(c)]:
                found.add("punctuation")
            if [c for c in corr_raw if not is_punctuation(c)] != [c for c in orig_raw if not is_punctuation(c)]:
                found.add("casing")
    return found


def _numbers(tokens: Sequence[str]) -> Counter[str]:
    """The tokens that are numbers (digits with an optional decimal part)."""
    return Counter(t for t in tokens if t.replace(".", "", 1).isdigit())


def _numeral_mismatch(original: str, corrected: str) -> bool:
    """Whether a quantity is in digits on one side and in number words on the other."""
    if not any(ch.isdigit() for ch in original) and not any(ch.isdigit() for ch in corrected):
        return False  # no digits on either side: nothing can be in digits on one of them
    # Numbers that survive normalization but were not digits before it were written as words.
    orig_all = _numbers(normalize_english(original).split())
    corr_all = _numbers(normalize_english(corrected).split())
    orig_digits = _numbers(_digits_view(original))
    corr_digits = _numbers(_digits_view(corrected))
    orig_words = orig_all - orig_digits
    corr_words = corr_all - corr_digits
    return bool((orig_words & corr_digits) or (orig_digits & corr_words))


def _digits_view(text: str) -> list[str]:
    """Tokens of ``text`` normalized like ``normalize_english`` but with number words left as words."""
    # Replacing letters by a marker keeps the punctuation/digit handling of normalize_english
    # while its number parser has no word to convert.
    masked = "".join("x" if ch.isalpha() else ch for ch in text)
    return normalize_english(masked, number_words=False).split()


def _loop_positions(tokens: Sequence[str]) -> set[int]:
    """Indices of ``tokens`` inside an n-gram repeated at least LOOP_MIN_REPEATS times in a row."""
    inside: set[int] = set()
    for n in range(1, LOOP_MAX_NGRAM + 1):
        # tokens[i] == tokens[i + n] over a run of r positions means tokens[start : start + r + n]
        # has period n: one pass per n keeps this linear even for a very long loop.
        run = 0
        for i in range(len(tokens) - n + 1):
            if i < len(tokens) - n and tokens[i] == tokens[i + n]:
                run += 1
                continue
            if run >= (LOOP_MIN_REPEATS - 1) * n:
                inside.update(range(i - run, i + n))
            run = 0
    return inside


def _word_types(original: str, corrected: str) -> set[str]:
    """substitution, deletion, insertion, hallucination and truncation from the normalized alignment."""
    found: set[str] = set()
    hyp = normalize_english(original).split()
    ref = normalize_english(corrected).split()
    if not hyp or not ref:
        if hyp:
            found.add("hallucination" if len(hyp) >= HALLUCINATION_MIN_RUN else "insertion")
        elif ref:
            found.add("deletion")
        return found
    # The same alignment normalized WER reads (cached there): tokens rejoined are the normalized texts.
    if hyp == ref:
        return found  # nothing to align: no word was substituted, deleted or inserted
    chunks = list(normalized_word_alignment(" ".join(ref), " ".join(hyp)).alignments[0])
    loops = _loop_positions(hyp)
    last = chunks[-1]
    truncated = last.type == "delete" and last.ref_end_idx - last.ref_start_idx >= TRUNCATION_MIN_TAIL
    for chunk in chunks:
        if chunk.type == "substitute":
            found.add("substitution")
        elif chunk.type == "delete":
            found.add("truncation" if truncated and chunk is last else "deletion")
        elif chunk.type == "insert":
            run = range(chunk.hyp_start_idx, chunk.hyp_end_idx)
            long_run = len(run) >= HALLUCINATION_MIN_RUN
            found.add("hallucination" if long_run or loops.intersection(run) else "insertion")
    return found


def derive_error_types(original: str, corrected: str) -> list[str]:
    """The sorted error types (names from ERROR_TYPES) that turn ``original`` into ``corrected``."""
    if not original.strip():
        return ["empty_output"] if corrected.strip() else []
    found = _surface_types(original, corrected) | _word_types(original, corrected)
    if _is_all_caps(original) and any(ch.islower() for ch in corrected):
        found.add("all_caps")
        found.discard("casing")
    if _numeral_mismatch(original, corrected):
        found.add("numerals")
    return sorted(found)
