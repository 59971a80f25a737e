"""A dataset's quality report and metadata figures from what a columnar engine counted, never from row dicts.

``report_from_facts`` returns what ``dataset_quality.check_quality`` returns over the same rows, and
``score_stats`` what ``dataset_build`` puts in ``error_score_stats``: the engine counts every rule over every
row (shared/snapshot/sql.py) and hands over only the few rows whose issues the report names. Those rows are
checked again here by check_quality's own per-row rules, so the messages are its messages.

Why replaying a few rows is enough: the report keeps the first ``ISSUE_CAP`` issues of each category in row
order. For each per-row category the engine gives the first ``ISSUE_CAP + 1`` rows with such an issue; every
kept issue, and the moment each category overflows (which orders the "... and N more" entries), lies in
them. Replayed in order, they give the kept entries; the engine's totals then set how many were left out and
the worst of those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

import numpy as np

from shared.domain.dataset_build import ROW_FEATURES, SPLITS
from shared.domain.dataset_quality import (
    QualityThresholds,
    _check_completeness,
    _check_consistency,
    _check_validity,
    _fraction,
    _Issues,
    _Row,
    quality_report,
)
from shared.domain.dataset_request import BuildRequest

ROW_CATEGORIES = ("completeness", "consistency", "validity", "uniqueness")
# The only severity of each per-row category's issues (uniqueness has two: see report_from_facts).
_CATEGORY_SEVERITY = {"completeness": "error", "consistency": "warning", "validity": "error"}


@dataclass(frozen=True)
class FlaggedRow:
    """A row whose issues the report may name, with what only a pass over all rows knows about it."""

    split: str
    position: int  # 0-based, within its split
    row: Mapping[str, Any]  # audio, text, case_id, original_transcript, speaker_id, has_correction, error_score, split
    case_first_split: str | None = None  # the split of the first row with its case_id, when this one repeats it
    pair_repeat: bool = False  # an earlier row has the same (audio, text)


@dataclass(frozen=True)
class Leak:
    """A group (speaker, else audio) or a case_id found in more than one split, with the splits in order."""

    kind: str  # "group" or "case_id"
    key: str
    splits: Sequence[str]


@dataclass(frozen=True)
class QualityFacts:
    """Everything check_quality counts, as an engine counted it over every row."""

    split_sizes: Mapping[str, int]  # every split in dataset order, empty ones included
    complete: int = 0
    consistent: int = 0
    valid: int = 0
    unique: int = 0
    groups: int = 0
    leaked_groups: int = 0
    leaked_cases: int = 0
    events: Mapping[str, int] = field(default_factory=dict)  # issues per row category, over all rows
    case_repeats: int = 0  # uniqueness issues that are repeated case_ids (errors; the rest are warnings)
    replay: Sequence[FlaggedRow] = ()  # the first ISSUE_CAP + 1 rows with an issue of each row category, in order
    leaks: Sequence[Leak] = ()  # the first ISSUE_CAP + 1 leaks: groups in the order found, then case_ids


def _replay_row(flagged: FlaggedRow, issues: _Issues) -> None:
    """The issues check_quality adds for this row, in its order (uniqueness from the engine's flags)."""
    row = _Row.of(flagged.row, flagged.split, flagged.position)
    _check_completeness(row, issues)
    _check_consistency(row, issues)
    _check_validity(row, issues)
    if flagged.case_first_split is not None:
        issues.add("error", "uniqueness", f"{row.where}: case_id repeated (first seen in {flagged.case_first_split!r})")
    if flagged.pair_repeat:
        issues.add("warning", "uniqueness", f"{row.where}: (audio, text) pair repeated")


def _set_total(issues: _Issues, category: str, total: int, omitted_errors: int) -> None:
    """Make the category's count the engine's total; what the cap left out keeps its place in the summaries."""
    issues.per_category[category] = total
    if total <= issues.cap:
        issues.omitted.pop(category, None)
        return
    severity = _CATEGORY_SEVERITY.get(category) or ("error" if omitted_errors > 0 else "warning")
    issues.omitted[category] = (total - issues.cap, severity)


def report_from_facts(facts: QualityFacts, thresholds: QualityThresholds | None = None) -> dict[str, Any]:
    """check_quality's report of the rows the facts describe."""
    thresholds = thresholds or QualityThresholds()
    issues = _Issues()
    total = sum(facts.split_sizes.values())
    for split, size in facts.split_sizes.items():
        if not size:
            issues.add("warning", "split", f"split {split!r} is empty")
        for flagged in facts.replay:
            if flagged.split == split:
                _replay_row(flagged, issues)
    kept_case_repeats = sum(
        1 for entry in issues.kept if entry["category"] == "uniqueness" and entry["severity"] == "error"
    )
    for category in ROW_CATEGORIES:
        omitted_errors = facts.case_repeats - kept_case_repeats if category == "uniqueness" else 0
        _set_total(issues, category, facts.events.get(category, 0), omitted_errors)
    for leak in facts.leaks:
        issues.add("critical", "leakage", f"{leak.kind} {leak.key!r} sits in splits {', '.join(leak.splits)}")
    leaks = facts.leaked_groups + facts.leaked_cases
    if leaks > issues.cap:
        issues.per_category["leakage"] = leaks
        issues.omitted["leakage"] = (leaks - issues.cap, "critical")
    return quality_report(_metrics(facts, total), issues, thresholds, facts.split_sizes)


def _metrics(facts: QualityFacts, total: int) -> dict[str, float]:
    """check_quality's five fractions."""
    groups = facts.groups
    leakage_free = _fraction(groups - facts.leaked_groups, groups) if groups else _fraction(total, total)
    return {
        "completeness": _fraction(facts.complete, total),
        "consistency": _fraction(facts.consistent, total),
        "validity": _fraction(facts.valid, total),
        "uniqueness": _fraction(facts.unique, total),
        "leakage_free": leakage_free,
    }


# -- metadata.json's error_score_stats ------------------------------------------------------------------------


def _float_sqrt_of_frac(n: int, m: int) -> float:
    """sqrt(n/m) correctly rounded (the statistics module's rule, so pstdev's result to the bit)."""
    q = (n.bit_length() - m.bit_length() - 109) // 2
    if q >= 0:
        a = math.isqrt(n // (m << 2 * q))
        numerator, denominator = (a | (a * a * (m << 2 * q) != n)) << q, 1
    else:
        a = math.isqrt((n << -2 * q) // m)
        numerator, denominator = a | (a * a * m != n << -2 * q), 1 << -q
    return numerator / denominator


def _exact_sums(values: np.ndarray) -> tuple[Fraction, Fraction]:
    """The exact sum and sum of squares of finite doubles, with int64 arithmetic per binary exponent."""
    mantissas, exponents = np.frexp(values)
    units = np.abs(mantissas * float(1 << 53)).astype(np.int64)  # |x| = units * 2**(exponent - 53), exactly
    signs = np.sign(mantissas).astype(np.int64)
    total, squares = Fraction(0), Fraction(0)
    mask18 = (1 << 18) - 1
    for exponent in np.unique(exponents).tolist():
        chosen = exponents == exponent
        u, s = units[chosen], signs[chosen]
        hi, lo = u >> 26, u & ((1 << 26) - 1)  # each sum below 2**63 for up to 2**36 values
        linear = (int(np.sum(s * hi)) << 26) + int(np.sum(s * lo))
        a, b, c = u >> 36, (u >> 18) & mask18, u & mask18  # u**2 in 18-bit pieces, each product below 2**37
        square = (
            (int(np.sum(a * a)) << 72)
            + (int(np.sum(2 * a * b)) << 54)
            + (int(np.sum(2 * a * c + b * b)) << 36)
            + (int(np.sum(2 * b * c)) << 18)
            + int(np.sum(c * c))
        )
        scale = Fraction(2) ** (int(exponent) - 53)
        total += linear * scale
        squares += square * scale * scale
    return total, squares


def score_stats(scores: np.ndarray) -> dict[str, float | None]:
    """dataset_build's error_score_stats of these (finite) scores, in row order: statistics.fmean, pstdev, min, max."""
    count = int(scores.size)
    if count == 0:
        return {"mean": None, "std": None, "min": None, "max": None}
    values = scores.astype(np.float64, copy=False)
    total, squares = _exact_sums(values)
    spread = (count * squares - total * total) / count / count
    listed = values.tolist()  # min and max of the list: of equal values (0.0 and -0.0), the first in row order
    return {
        "mean": math.fsum(listed) / count,
        "std": _float_sqrt_of_frac(spread.numerator, spread.denominator),
        "min": min(listed),
        "max": max(listed),
    }


def dataset_metadata_from_figures(
    dataset_id: str,
    request: BuildRequest,
    created_at: datetime,
    source: str,
    *,
    split_sizes: Mapping[str, int],
    corrections: int,
    groups_per_split: Mapping[str, int],
    type_counts: Mapping[str, int],
    scores: np.ndarray,
) -> dict[str, Any]:
    """dataset_build.dataset_metadata, key for key, from an engine's counts instead of the rows."""
    return {
        "dataset_id": dataset_id,
        "created_at": created_at.isoformat(),
        "source": source,
        "request": request.model_dump(),
        "total_samples": sum(split_sizes.get(name, 0) for name in SPLITS),
        "split_sizes": {name: split_sizes.get(name, 0) for name in SPLITS},
        "error_type_distribution": dict(sorted(type_counts.items())),
        "error_score_stats": score_stats(scores),
        "corrections_included": corrections,
        "groups_per_split": {name: groups_per_split.get(name, 0) for name in SPLITS},
        "features": dict(ROW_FEATURES),
    }
