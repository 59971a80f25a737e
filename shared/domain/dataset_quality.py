"""Quality check of a built fine-tuning dataset: five metrics, capped issues, a pass/fail verdict.

Every metric is a fraction of rows (or groups) in [0, 1]; ``overall_score`` is their mean.

- completeness: rows whose ``audio``, ``text`` and ``case_id`` are non-empty strings (an "error" per row).
- consistency: rows that pass all of: ``audio`` ends with an audio extension (.wav .flac .mp3 .ogg .opus
  .m4a, case-insensitive); a row with ``has_correction`` true has a ``text`` different from its
  ``original_transcript``; ``text`` is not wildly longer or shorter than a non-empty ``original_transcript``
  (more than 3x or less than 1/3 of its length). Each failed rule is a "warning".
- validity: rows that pass all of: ``text`` contains a letter; ``error_score`` is None or a number in [0, 1];
  the row's ``split`` field equals the split it sits in (a missing field is a mismatch). Each is an "error".
- uniqueness: rows that are the first with their ``case_id`` and the first with their (``audio``, ``text``)
  pair, across all splits. A repeated case_id is an "error", a repeated (audio, text) pair a "warning".
- leakage_free: groups (``speaker_id`` if non-empty, else ``audio``) that sit in exactly one split. A group
  in two splits is a "critical" issue naming the group and the splits, and so is one case_id in two splits.
  Rows with neither speaker nor audio belong to no group (completeness already counts them).

An empty split is a warning. An empty dataset fails with a critical issue and every metric at 0.0 (there is
nothing to vouch for). A metric under its threshold adds an "error" issue in category "threshold".
``passed`` = every threshold met and no critical issue; ``thresholds`` records the four minimums applied.

Issue entries are capped per category (``ISSUE_CAP``, then one "... and N more" entry carrying the most
severe omitted severity), so a 100k-row report stays small; the metrics always count every row.
``quality_metrics["warnings"]`` repeats the messages of the kept "warning" entries, as a flat list.

``validate_lines`` parses JSONL bytes into rows and names each bad line by its 1-based number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from shared.errors import BadInput

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a")
REQUIRED_FIELDS = ("audio", "text", "case_id")
# The fields the contract says every row carries; validate_lines reports each one missing.
ROW_FIELDS = ("audio", "text", "case_id", "original_transcript", "error_types", "error_score")
METRIC_NAMES = ("completeness", "consistency", "validity", "uniqueness", "leakage_free")
ISSUE_CAP = 20
LINE_ISSUE_CAP = 100
LENGTH_RATIO = 3.0
SEVERITY_RANK = {"warning": 0, "error": 1, "critical": 2}
# A letter in any script: a word character that is neither a digit nor the underscore.
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class QualityThresholds:
    """Minimum metric values for a dataset to pass (the seed's four, with the seed's defaults).

    Each is a number in [0, 1]; a threshold of 0 never fails, one of 1 fails on a single bad row."""

    min_completeness: float = 0.95
    min_consistency: float = 0.90
    min_validity: float = 0.95
    min_overall_score: float = 0.90

    def __post_init__(self) -> None:
        for name in THRESHOLD_NAMES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise BadInput(f"quality threshold {name} must be a number in [0, 1], got {value!r}")

    def as_dict(self) -> dict[str, float]:
        """The seed's shape: `{"min_completeness": 0.95, ...}`."""
        return {name: float(getattr(self, name)) for name in THRESHOLD_NAMES}


THRESHOLD_NAMES = ("min_completeness", "min_consistency", "min_validity", "min_overall_score")


def quality_thresholds(given: Mapping[str, Any] | QualityThresholds | None,
                       default: QualityThresholds | None = None) -> QualityThresholds:
    """Thresholds from the seed's dict (`{"min_completeness": 0.9, ...}`; a key left out keeps `default`'s
    value), a QualityThresholds, or None (`default`, else the seed's defaults). BadInput names an unknown key or
    a value outside [0, 1]."""
    base = default or QualityThresholds()
    if given is None:
        return base
    if isinstance(given, QualityThresholds):
        return given
    if not isinstance(given, Mapping):
        raise BadInput(f"quality thresholds must be a dict of {', '.join(THRESHOLD_NAMES)}, not "
                       f"{type(given).__name__}")
    unknown = sorted(str(key) for key in given if key not in THRESHOLD_NAMES)
    if unknown:
        raise BadInput(f"unknown quality threshold {', '.join(unknown)} (known: {', '.join(THRESHOLD_NAMES)})")
    return QualityThresholds(**{**base.as_dict(), **{str(k): v for k, v in given.items()}})


@dataclass
class _Issues:
    """Issue entries with a per-category cap; counts what the cap leaves out."""

    cap: int = ISSUE_CAP
    kept: list[dict[str, str]] = field(default_factory=list)
    per_category: dict[str, int] = field(default_factory=dict)
    omitted: dict[str, tuple[int, str]] = field(default_factory=dict)
    has_critical: bool = False

    def add(self, severity: str, category: str, message: str) -> None:
        """Keep the entry unless its category is full; remember what was left out."""
        self.has_critical = self.has_critical or severity == "critical"
        count = self.per_category.get(category, 0)
        self.per_category[category] = count + 1
        if count < self.cap:
            self.kept.append({"severity": severity, "category": category, "message": message})
            return
        left, worst = self.omitted.get(category, (0, severity))
        worst = severity if SEVERITY_RANK[severity] > SEVERITY_RANK[worst] else worst
        self.omitted[category] = (left + 1, worst)

    def entries(self) -> list[dict[str, str]]:
        """The kept entries, then one summary entry per capped category."""
        summaries = [
            {"severity": worst, "category": category, "message": f"... and {left} more {category} issues"}
            for category, (left, worst) in self.omitted.items()
        ]
        return self.kept + summaries


@dataclass
class _Tally:
    """Running counts and indexes of one pass over every row."""

    complete: int = 0
    consistent: int = 0
    valid: int = 0
    unique: int = 0
    case_split: dict[str, str] = field(default_factory=dict)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    group_split: dict[str, str] = field(default_factory=dict)
    leaked_groups: dict[str, list[str]] = field(default_factory=dict)
    leaked_cases: dict[str, list[str]] = field(default_factory=dict)


class _Row(NamedTuple):
    """The fields the rules read, strings normalised once ('' when absent or not a string)."""

    split: str
    position: int
    audio: str
    text: str
    case_id: str
    original: str
    speaker: str
    corrected: bool
    error_score: Any
    split_field: Any

    @classmethod
    def of(cls, row: Mapping[str, Any], split: str, index: int) -> _Row:
        """Read a raw row once; every rule then works on plain strings."""
        get = row.get
        audio, text, case_id, original, speaker = (
            get("audio"),
            get("text"),
            get("case_id"),
            get("original_transcript"),
            get("speaker_id"),
        )
        return cls(
            split,
            index,
            audio if isinstance(audio, str) else "",
            text if isinstance(text, str) else "",
            case_id if isinstance(case_id, str) else "",
            original if isinstance(original, str) else "",
            speaker if isinstance(speaker, str) else "",
            get("has_correction") is True,
            get("error_score"),
            get("split"),
        )

    @property
    def where(self) -> str:
        """Where the row sits, for messages: 1-based row number within its split, and its case."""
        return f"{self.split} row {self.position + 1}" + (f" (case {self.case_id!r})" if self.case_id else "")


def _check_completeness(row: _Row, issues: _Issues) -> bool:
    """True when audio, text and case_id are all non-empty."""
    if row.audio.strip() and row.text.strip() and row.case_id.strip():
        return True
    missing = [
        key for key, value in zip(REQUIRED_FIELDS, (row.audio, row.text, row.case_id), strict=True) if not value.strip()
    ]
    if missing:
        issues.add("error", "completeness", f"{row.where}: empty or missing {', '.join(missing)}")
    return not missing


def _check_consistency(row: _Row, issues: _Issues) -> bool:
    """True when the audio looks like audio and the text agrees with the original transcript."""
    ok = True
    if not row.audio.lower().endswith(AUDIO_EXTENSIONS):
        issues.add("warning", "consistency", f"{row.where}: audio {row.audio!r} has no audio extension")
        ok = False
    text, original = row.text.strip(), row.original.strip()
    if row.corrected and text == original:
        issues.add("warning", "consistency", f"{row.where}: marked corrected but text equals the original transcript")
        ok = False
    # An empty original gives no length to compare with; an empty text is completeness's finding.
    if original and text and not (len(original) / LENGTH_RATIO <= len(text) <= len(original) * LENGTH_RATIO):
        issues.add(
            "warning",
            "consistency",
            f"{row.where}: text length {len(text)} is more than {LENGTH_RATIO:g}x off the original's {len(original)}",
        )
        ok = False
    return ok


def _score_ok(score: Any) -> bool:
    """None, or a real number (not a bool, not NaN) in [0, 1]."""
    if score is None:
        return True
    if isinstance(score, bool) or not isinstance(score, int | float):
        return False
    return not math.isnan(score) and 0.0 <= score <= 1.0


def _check_validity(row: _Row, issues: _Issues) -> bool:
    """True when the text has a letter, the score is in range and the split field matches."""
    ok = True
    if not _LETTER.search(row.text):
        issues.add("error", "validity", f"{row.where}: text has no letter")
        ok = False
    if not _score_ok(row.error_score):
        issues.add("error", "validity", f"{row.where}: error_score {row.error_score!r} is not None or in [0, 1]")
        ok = False
    if row.split_field != row.split:
        issues.add(
            "error", "validity", f"{row.where}: split field {row.split_field!r} but the row sits in {row.split!r}"
        )
        ok = False
    return ok


def _check_uniqueness(row: _Row, tally: _Tally, issues: _Issues) -> bool:
    """True when neither the case_id nor the (audio, text) pair was seen before; records cross-split cases."""
    ok = True
    case_id, split = row.case_id, row.split
    first_split = tally.case_split.get(case_id) if case_id else None
    if case_id and first_split is None:
        tally.case_split[case_id] = split
    elif first_split is not None:
        ok = False
        issues.add("error", "uniqueness", f"{row.where}: case_id repeated (first seen in {first_split!r})")
        if first_split != split:
            splits = tally.leaked_cases.setdefault(case_id, [first_split])
            if split not in splits:
                splits.append(split)
    pair = (row.audio, row.text)
    if pair == ("", ""):
        return ok  # nothing to compare; completeness already reports the row
    if pair in tally.pairs:
        ok = False
        issues.add("warning", "uniqueness", f"{row.where}: (audio, text) pair repeated")
    else:
        tally.pairs.add(pair)
    return ok


def _record_group(row: _Row, tally: _Tally) -> None:
    """Remember the split of the row's group; a second split makes it a leaked group."""
    key = row.speaker or row.audio
    if not key:
        return
    first_split = tally.group_split.setdefault(key, row.split)
    if first_split != row.split:
        splits = tally.leaked_groups.setdefault(key, [first_split])
        if row.split not in splits:
            splits.append(row.split)


def _fraction(part: int, whole: int) -> float:
    """part / whole, 0.0 for an empty whole."""
    return part / whole if whole else 0.0


def check_quality(
    splits: Mapping[str, Sequence[Mapping[str, Any]]], thresholds: QualityThresholds | None = None
) -> dict[str, Any]:
    """Score a dataset's splits and say whether it may be published."""
    thresholds = thresholds or QualityThresholds()
    issues = _Issues()
    tally = _Tally()
    split_sizes = {split: len(rows) for split, rows in splits.items()}
    total = sum(split_sizes.values())
    for split, rows in splits.items():
        if not rows:
            issues.add("warning", "split", f"split {split!r} is empty")
        _tally_split(split, rows, tally, issues)
    _report_leakage(tally, issues)
    return quality_report(_metrics(tally, total), issues, thresholds, split_sizes)


def quality_report(
    metrics: Mapping[str, float], issues: _Issues, thresholds: QualityThresholds, split_sizes: Mapping[str, int]
) -> dict[str, Any]:
    """The report of a dataset from its rule scores and the issues found (every engine's last step)."""
    total = sum(split_sizes.values())
    overall = sum(metrics.values()) / len(metrics)
    if total == 0:
        issues.add("critical", "dataset", "the dataset has no rows")
    _check_thresholds(dict(metrics), overall, thresholds, issues)
    entries = issues.entries()
    return {
        "passed": not issues.has_critical and _thresholds_met(dict(metrics), overall, thresholds),
        "quality_metrics": {
            "metrics": {name: round(value, 6) for name, value in metrics.items()},
            "overall_score": round(overall, 6),
            "issues": entries,
            "warnings": [entry["message"] for entry in entries if entry["severity"] == "warning"],
        },
        "num_samples": total,
        "split_sizes": dict(split_sizes),
        "thresholds": thresholds.as_dict(),
    }


def _tally_split(split: str, rows: Sequence[Mapping[str, Any]], tally: _Tally, issues: _Issues) -> None:
    """Run every per-row rule over one split's rows."""
    for index, raw in enumerate(rows):
        row = _Row.of(raw, split, index)
        tally.complete += _check_completeness(row, issues)
        tally.consistent += _check_consistency(row, issues)
        tally.valid += _check_validity(row, issues)
        tally.unique += _check_uniqueness(row, tally, issues)
        _record_group(row, tally)


def _report_leakage(tally: _Tally, issues: _Issues) -> None:
    """One critical issue per group, and per case_id, found in more than one split."""
    for group, group_splits in tally.leaked_groups.items():
        issues.add("critical", "leakage", f"group {group!r} sits in splits {', '.join(group_splits)}")
    for case_id, case_splits in tally.leaked_cases.items():
        issues.add("critical", "leakage", f"case_id {case_id!r} sits in splits {', '.join(case_splits)}")


def _metrics(tally: _Tally, total: int) -> dict[str, float]:
    """The five fractions; 0.0 each for an empty dataset."""
    groups = len(tally.group_split)
    leakage_free = _fraction(groups - len(tally.leaked_groups), groups) if groups else _fraction(total, total)
    return {
        "completeness": _fraction(tally.complete, total),
        "consistency": _fraction(tally.consistent, total),
        "validity": _fraction(tally.valid, total),
        "uniqueness": _fraction(tally.unique, total),
        "leakage_free": leakage_free,
    }


def _threshold_pairs(
    metrics: Mapping[str, float], overall: float, thresholds: QualityThresholds
) -> list[tuple[str, float, float]]:
    """(name, value, minimum) for every thresholded figure."""
    return [
        ("completeness", metrics["completeness"], thresholds.min_completeness),
        ("consistency", metrics["consistency"], thresholds.min_consistency),
        ("validity", metrics["validity"], thresholds.min_validity),
        ("overall_score", overall, thresholds.min_overall_score),
    ]


def _thresholds_met(metrics: Mapping[str, float], overall: float, thresholds: QualityThresholds) -> bool:
    """True when every thresholded figure reaches its minimum."""
    return all(value >= minimum for _, value, minimum in _threshold_pairs(metrics, overall, thresholds))


def _check_thresholds(
    metrics: Mapping[str, float], overall: float, thresholds: QualityThresholds, issues: _Issues
) -> None:
    """An error issue per figure under its minimum, so a failed verdict says why."""
    for name, value, minimum in _threshold_pairs(metrics, overall, thresholds):
        if value < minimum:
            issues.add("error", "threshold", f"{name} {value:.4f} is below the minimum {minimum:.4f}")


def _line_problems(row: dict[str, Any]) -> list[str]:
    """What is wrong with a parsed row's fields: each missing field, then each of the wrong type."""
    problems = [f"missing field {key!r}" for key in ROW_FIELDS if key not in row]
    for key in ("audio", "text", "case_id", "original_transcript"):
        if key in row and not isinstance(row[key], str):
            problems.append(f"field {key!r} is not a string")
    if "error_types" in row and not isinstance(row["error_types"], list):
        problems.append("field 'error_types' is not a list")
    score = row.get("error_score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        problems.append("field 'error_score' is not a number or null")
    return problems


def _parsed_lines(
    split: str, lines: Iterable[bytes], issues: list[str], max_issues: int
) -> Iterator[dict[str, Any]]:
    """Each JSON-object line's row, in order, one at a time; each bad line's problems go to ``issues`` (1-based
    line numbers, blank lines skipped but counted; past ``max_issues`` one "... and N more" entry)."""
    total_issues = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            problems = ["not valid JSON"]
        else:
            if isinstance(parsed, dict):
                problems = _line_problems(parsed)
                yield parsed
            else:
                problems = [f"not a JSON object (a {type(parsed).__name__})"]
        for problem in problems:
            total_issues += 1
            if len(issues) < max_issues:
                issues.append(f"{split} line {number}: {problem}")
    if total_issues > len(issues):
        issues.append(f"{split}: ... and {total_issues - len(issues)} more line issues")


def validate_lines(
    split: str, lines: Iterable[bytes], max_issues: int = LINE_ISSUE_CAP
) -> tuple[list[dict[str, Any]], list[str]]:
    """Parse JSONL lines into rows; name each bad line (1-based, blank lines skipped but counted)."""
    issues: list[str] = []
    rows = list(_parsed_lines(split, lines, issues, max_issues))
    return rows, issues


def line_issues(split: str, lines: Iterable[bytes], max_issues: int = LINE_ISSUE_CAP) -> list[str]:
    """validate_lines' issues alone, holding one line at a time (the rows are parsed and dropped)."""
    issues: list[str] = []
    for _ in _parsed_lines(split, lines, issues, max_issues):
        pass
    return issues


def gate_reasons(report: Mapping[str, Any]) -> list[str]:
    """Why a quality report failed: its critical issues and its thresholds not met ([] when it passed)."""
    if report.get("passed") is not False:
        return []
    issues = (report.get("quality_metrics") or {}).get("issues") or []
    reasons = [i["message"] for i in issues if i.get("severity") == "critical" or i.get("category") == "threshold"]
    return reasons or ["the quality check did not pass"]


def quality_gate(report: Mapping[str, Any], create_version: bool, allow_failed_quality: bool) -> dict[str, Any]:
    """Whether a dataset with this quality report may become a version, and what happened to it.

    A dataset whose check passed is versioned when asked; one whose check failed is versioned only with
    ``allow_failed_quality`` (its entry then carries ``quality_failed: true``). ``version``: "registered",
    "registered_flagged", "refused" or "not_asked". A report without a verdict (no ``passed``: an entry made
    before reports existed) gates nothing."""
    passed = report.get("passed") is not False
    if not create_version:
        version = "not_asked"
    elif passed:
        version = "registered"
    else:
        version = "registered_flagged" if allow_failed_quality else "refused"
    gate: dict[str, Any] = {"passed": passed, "thresholds": report.get("thresholds"), "version": version,
                            "reasons": gate_reasons(report)}
    if version == "refused":
        gate["message"] = ("not registered as a version: the quality check failed (" + "; ".join(gate["reasons"])
                           + "); to register it anyway, flagged quality_failed, set allow_failed_quality, or lower the "
                           "quality thresholds")
    return gate
