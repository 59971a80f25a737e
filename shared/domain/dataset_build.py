"""Stored cases to a fine-tuning dataset: which cases, which split, which row, and what the metadata says.

Selection. A case is eligible when its ``error_score`` is at least ``min_error_score`` (a case without a
score only when that is 0) and it has a correction (a non-blank ``corrected_transcript``) unless
``include_uncorrected``. Eligible cases are ordered by a keyed blake2b of their ``case_id``, so taking the
first N is a stable, unbiased sample (not the oldest N), and a new case displaces at most one selected case.

Balancing (``balance_error_types``) evens out error types without throwing away the data that makes them:

- A case counts for its **rarest type**: of its ``error_types``, the one the fewest eligible cases carry (ties
  by name; ``unknown`` when it has none). A case that is both ``substitution`` and ``numerals`` fills the
  rarer ``numerals``: multi-label cases go where they are scarce.
- Every type gets the same **quota** ``q``, water-filled: with ``max_samples`` the largest ``q`` for which the
  types' ``min(size, q)`` add up to at most ``max_samples``, a type smaller than ``q`` keeping all its cases
  and leaving its unused share to the others; the cases that still fit (fewer than the types at the quota)
  are the next case of each type at the quota, in selection order. So a dataset is ``max_samples`` rows
  whenever that many cases are eligible. Without ``max_samples``, ``q`` is twice the median type size
  (rounded up): only types far above the median are cut, and never below that.
- Within a type, cases are taken in selection order (below), so the sample is stable too.

Without balancing, the first ``max_samples`` in selection order.

Splits. A case's split is a stable function of its group key (the speaker, else the recording), so one
speaker's audio never sits in two splits and a case keeps its split in every dataset version built with
the same ratios, whatever else is selected.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from shared.domain.dataset_request import BuildRequest
from shared.errors import BadInput

SPLITS: tuple[str, str, str] = ("train", "val", "test")
UNKNOWN_ERROR_TYPE = "unknown"

# Column types of a row, as Hugging Face ``datasets`` names them; strings are never null so each column
# has one type in every split (pass these as ``Features`` when a split may hold only nulls in a float column).
ROW_FEATURES: dict[str, str] = {
    "audio": "string",
    "text": "string",
    "case_id": "string",
    "original_transcript": "string",
    "error_types": "list<string>",
    "error_score": "float64",
    "has_correction": "bool",
    "speaker_id": "string",
    "language": "string",
    "model_version": "string",
    "duration_s": "float64",
    "wer": "float64",
    "cer": "float64",
    "split": "string",
}

# A separate personalisation for the selection order: were it the split hash, and a case_id equal to its
# audio_path, taking the first N by hash would take mostly train cases.
_SELECTION_PERSON = b"sttdata-select"


def _text(value: Any) -> str:
    """A string column's value: "" for an absent one."""
    return "" if value is None else str(value)


def _number(value: Any) -> float | None:
    """A float column's value: None for an absent or non-numeric one (a bool is not a number)."""
    if type(value) is float:  # the common case, first
        number = value
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return None
    else:
        number = float(value)
    return number if math.isfinite(number) else None


def has_correction(case: Mapping[str, Any]) -> bool:
    """True when the case has a non-blank corrected transcript to learn."""
    corrected = case.get("corrected_transcript")
    return isinstance(corrected, str) and corrected.strip() != ""


def primary_error_type(case: Mapping[str, Any]) -> str:
    """The first of the case's error types, or ``unknown`` when it has none."""
    types = case.get("error_types") or []
    return str(types[0]) if types else UNKNOWN_ERROR_TYPE


def group_key(case: Mapping[str, Any]) -> str:
    """The unit kept within one split: the speaker when known, else the recording."""
    # As the row's speaker_id column reads it, so the metadata's group counts agree with the splits.
    return _text(case.get("speaker_id")) or _text(case.get("audio_path"))


def _unit_interval(digest: bytes) -> float:
    """A digest as a number in [0, 1); the top 53 bits, so the float never rounds up to 1."""
    return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)


def _split_edges(ratios: tuple[float, float, float]) -> tuple[tuple[str, float], ...]:
    """Each split with the upper end of its share of [0, 1); the last split with a share ends at 1."""
    if any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise BadInput(f"ratios must be non-negative with a positive sum, got {ratios}")
    total = math.fsum(ratios)
    edges = []
    cumulative = 0.0
    for name, ratio in zip(SPLITS, ratios, strict=True):
        cumulative += ratio
        edges.append((name, cumulative / total))
    # Float rounding may leave the last edge just under 1: close it on the last split that has a share.
    last = max(i for i, ratio in enumerate(ratios) if ratio > 0)
    edges[last] = (SPLITS[last], 1.0)
    return tuple(edges)


def _split_at(key: str, edges: tuple[tuple[str, float], ...]) -> str:
    """The split whose share holds the key's fixed point in [0, 1)."""
    u = _unit_interval(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest())
    for name, edge in edges:
        if u < edge:
            return name
    raise AssertionError("the last edge is 1.0, above every point")  # unreachable by construction


def assign_split(key: str, ratios: tuple[float, float, float]) -> str:
    """The split of a group key: a fixed point in [0, 1) from blake2b, placed among the cumulative ratios."""
    return _split_at(key, _split_edges(ratios))


def eligible(case: Mapping[str, Any], request: BuildRequest) -> bool:
    """True when the case's score reaches the request's minimum and it is corrected (or need not be)."""
    score = _number(case.get("error_score"))
    if score is None and request.min_error_score > 0:
        return False
    if score is not None and score < request.min_error_score:
        return False
    return request.include_uncorrected or has_correction(case)


def _selection_order(case_id: str) -> bytes:
    """The sort key that makes ``max_samples`` a stable, unbiased sample (the case_id breaks hash ties)."""
    encoded = case_id.encode("utf-8")
    return hashlib.blake2b(encoded, digest_size=8, person=_SELECTION_PERSON).digest() + encoded


def rarest_types(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    """Each case's rarest error type among these cases (see Balancing), in order."""
    carried = Counter(str(name) for case in cases for name in set(case.get("error_types") or []))
    return [
        min((str(name) for name in types), key=lambda name: (carried[name], name)) if types else UNKNOWN_ERROR_TYPE
        for types in (case.get("error_types") or [] for case in cases)
    ]


def balance_quota(sizes: Iterable[int], max_samples: int | None) -> tuple[int, int]:
    """The water-filled quota per type for types of these sizes, and how many cases past it still fit
    (taken one per type at the quota); see Balancing."""
    counts = sorted(sizes)
    if not counts:
        return 0, 0
    if max_samples is None:
        return math.ceil(2 * statistics.median(counts)), 0
    remaining = max_samples
    for position, size in enumerate(counts):
        share = remaining // (len(counts) - position)
        if size > share:
            return share, remaining - share * (len(counts) - position)
        remaining -= size
    return counts[-1], 0


def _balanced(ordered: Sequence[Mapping[str, Any]], max_samples: int | None) -> list[Mapping[str, Any]]:
    """The cases balancing keeps (see Balancing), in the given (selection) order."""
    labels = rarest_types(ordered)
    sizes = Counter(labels)
    quota, extra = balance_quota(sizes.values(), max_samples)
    taken: dict[str, int] = defaultdict(int)
    selected = []
    for case, label in zip(ordered, labels, strict=True):
        taken[label] += 1
        if taken[label] <= quota or (taken[label] == quota + 1 and extra > 0):
            extra -= taken[label] > quota
            selected.append(case)
    return selected


def select_cases(cases: Iterable[Mapping[str, Any]], request: BuildRequest) -> list[dict[str, Any]]:
    """The eligible cases the request takes, balanced or capped, in their stable selection order."""
    kept = [case for case in cases if eligible(case, request)]
    # Sort positions by bytes keys: neither is tracked by the garbage collector, unlike a tuple per case.
    keys = [_selection_order(_text(case.get("case_id"))) for case in kept]
    ordered = [kept[i] for i in sorted(range(len(kept)), key=keys.__getitem__)]
    if request.balance_error_types:
        ordered = _balanced(ordered, request.max_samples)
    elif request.max_samples is not None:
        ordered = ordered[: request.max_samples]
    # The given dicts themselves (copying 100k of them costs more than all the rest); nothing here mutates them.
    return [case if isinstance(case, dict) else dict(case) for case in ordered]


def to_row(case: Mapping[str, Any], split: str) -> dict[str, Any]:
    """The JSONL row of a case: what to learn (corrected text, else the original) and its context."""
    corrected = has_correction(case)
    original = _text(case.get("original_transcript"))
    return {
        "audio": _text(case.get("audio_path")),
        "text": str(case["corrected_transcript"]) if corrected else original,
        "case_id": _text(case.get("case_id")),
        "original_transcript": original,
        "error_types": [str(name) for name in case.get("error_types") or []],
        "error_score": _number(case.get("error_score")),
        "has_correction": corrected,
        "speaker_id": _text(case.get("speaker_id")),
        "language": _text(case.get("language")),
        "model_version": _text(case.get("model_version")),
        "duration_s": _number(case.get("duration_s")),
        "wer": _number(case.get("wer")),
        "cer": _number(case.get("cer")),
        "split": split,
    }


def build_splits(cases: Iterable[Mapping[str, Any]], request: BuildRequest) -> dict[str, list[dict[str, Any]]]:
    """The rows of each split (every split present, maybe empty), ordered by case_id."""
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    edges = _split_edges(request.ratios)
    split_of: dict[str, str] = {}  # one hash per group, not per case
    for case in select_cases(cases, request):
        key = group_key(case)
        split = split_of.get(key)
        if split is None:
            split = split_of[key] = _split_at(key, edges)
        splits[split].append(to_row(case, split))
    for rows in splits.values():
        rows.sort(key=itemgetter("case_id"))
    return splits


def _row_group(row: Mapping[str, Any]) -> str:
    """A row's group key (the same rule as group_key, on the row's columns)."""
    return row["speaker_id"] or row["audio"]


def _score_stats(scores: list[float]) -> dict[str, float | None]:
    """Mean, population standard deviation, min and max; all None without scores."""
    if not scores:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": statistics.fmean(scores),
        "std": statistics.pstdev(scores),
        "min": min(scores),
        "max": max(scores),
    }


def dataset_metadata(
    dataset_id: str,
    request: BuildRequest,
    splits: Mapping[str, Sequence[Mapping[str, Any]]],
    created_at: datetime,
    source: str,
) -> dict[str, Any]:
    """The dataset's metadata.json: what was asked, what came out, and the column types."""
    rows = [row for name in SPLITS for row in splits.get(name, [])]
    type_counts = Counter(name for row in rows for name in row["error_types"])
    scores = [row["error_score"] for row in rows if row["error_score"] is not None]
    return {
        "dataset_id": dataset_id,
        "created_at": created_at.isoformat(),
        "source": source,
        "request": request.model_dump(),
        "total_samples": len(rows),
        "split_sizes": {name: len(splits.get(name, [])) for name in SPLITS},
        "error_type_distribution": dict(sorted(type_counts.items())),
        "error_score_stats": _score_stats(scores),
        "corrections_included": sum(1 for row in rows if row["has_correction"]),
        "groups_per_split": {name: len({_row_group(row) for row in splits.get(name, [])}) for name in SPLITS},
        "features": dict(ROW_FEATURES),
    }
