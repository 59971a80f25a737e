"""What the comprehensive report advises: from the case statistics (volume, corrections, variety, the
quarantine rate), the performance report's regressions, and the quality of the current dataset version.

Each piece of advice is one sentence a person can act on: what was seen (with its figures) and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Below these, the report recommends collecting or correcting more before fine-tuning.
MIN_CORRECTION_RATE = 0.5
GOOD_CORRECTION_RATE = 0.7
MIN_CASES = 100
ENOUGH_CASES = 500
MIN_ERROR_TYPES = 3
# Above this share of incoming events quarantined, the senders need fixing (a healthy feed quarantines ~none).
MAX_QUARANTINE_RATE = 0.05
MAX_REGRESSION_ADVICE = 3  # the newest regressions named; the report lists them all


def quarantine_rate(stats: Mapping[str, Any]) -> float | None:
    """Quarantined events over all incoming events (stored cases + quarantined ones); None before any event."""
    quarantined = int(stats.get("quarantined_events") or 0)
    incoming = int(stats.get("total_cases") or 0) + quarantined
    return quarantined / incoming if incoming else None


def assess_quality(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The overall data quality verdict from the case statistics."""
    return {
        "total_failed_cases": stats["total_cases"],
        "correction_rate": stats["correction_rate"],
        "quality_status": "good" if stats["correction_rate"] > GOOD_CORRECTION_RATE else "needs_improvement",
        "error_type_diversity": len(stats["error_type_distribution"]),
        "quarantined_events": int(stats.get("quarantined_events") or 0),
        "quarantine_rate": quarantine_rate(stats),
    }


def current_dataset_quality(registry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The quality of the registry's current version as its entry recorded it (the build's report): passed,
    overall score, thresholds, and the split warnings (issues of category "split"); None without one."""
    current = registry.get("current_version")
    entry = (registry.get("versions") or {}).get(current) if current else None
    if entry is None:
        return None
    report = entry.get("quality_report") or {}
    metrics = report.get("quality_metrics") or {}
    return {
        "version_id": current,
        "dataset_id": entry.get("dataset_id"),
        "passed": bool(report.get("passed")),
        "quality_failed": bool(entry.get("quality_failed")),
        "overall_score": metrics.get("overall_score"),
        "min_overall_score": (report.get("thresholds") or {}).get("min_overall_score"),
        "failed_checks": [issue["message"] for issue in metrics.get("issues", [])
                          if issue.get("category") == "threshold"],
        "split_warnings": [issue["message"] for issue in metrics.get("issues", [])
                           if issue.get("category") == "split"],
    }


def _case_advice(stats: Mapping[str, Any], total_versions: int) -> list[str]:
    advice = []
    if stats["correction_rate"] < MIN_CORRECTION_RATE:
        advice.append("Low correction rate: add corrections before fine-tuning; only corrected cases are learned.")
    if stats["total_cases"] < MIN_CASES:
        advice.append(f"Fewer than {MIN_CASES} failed cases: keep collecting before fine-tuning.")
    elif stats["total_cases"] >= ENOUGH_CASES:
        advice.append("Enough failed cases collected: consider preparing a fine-tuning dataset.")
    if len(stats["error_type_distribution"]) < MIN_ERROR_TYPES:
        advice.append("Few error types: the model may benefit from more varied failures.")
    if total_versions == 0:
        advice.append("No dataset version yet: version prepared datasets to compare and roll back.")
    rate = quarantine_rate(stats)
    if rate is not None and rate > MAX_QUARANTINE_RATE:
        advice.append(
            f"{rate:.1%} of incoming events were quarantined ({stats['quarantined_events']} of "
            f"{stats['quarantined_events'] + stats['total_cases']}; above {MAX_QUARANTINE_RATE:.0%}): read the "
            "reasons in the quarantine (`sttdata status`, the dashboard), fix the senders, then replay the dead "
            "letters (replay_dead_letters)."
        )
    return advice


def _regression_advice(regressions: Sequence[Mapping[str, Any]], best_model: Mapping[str, Any] | None) -> list[str]:
    advice = []
    newest = sorted(regressions, key=lambda r: r.get("recorded_at") or "", reverse=True)[:MAX_REGRESSION_ADVICE]
    for regression in newest:
        metric = str(regression.get("metric", "")).upper()
        version = regression.get("model_version") or "an unversioned model"
        fallback = ""
        if best_model and best_model.get("model_version") not in (None, regression.get("model_version")):
            fallback = f", or go back to the best model so far ({best_model['model_version']})"
        advice.append(
            f"{metric} regressed on {version} at {regression.get('recorded_at')}: {regression.get('value'):.4g} "
            f"against {regression.get('window_mean'):.4g} before ({regression.get('relative_change', 0):+.0%}): "
            f"compare the dataset version it was trained on with the previous one (compare_versions){fallback}."
        )
    if len(regressions) > len(newest):
        advice.append(f"{len(regressions) - len(newest)} earlier regressions: see performance_report.regressions.")
    return advice


def _dataset_advice(dataset: Mapping[str, Any] | None) -> list[str]:
    if dataset is None:
        return []
    advice = []
    if not dataset["passed"]:
        checks = "; ".join(dataset["failed_checks"]) or "see its quality report"
        flagged = " (registered flagged: allow_failed_quality)" if dataset["quality_failed"] else ""
        advice.append(
            f"The current dataset version {dataset['version_id']}{flagged} did not pass its quality check "
            f"(overall {dataset['overall_score']}, minimum {dataset['min_overall_score']}: {checks}): fix the "
            "failing cases and build again before training on it, or roll back to a version that passed."
        )
    if dataset["split_warnings"]:
        advice.append(f"The current dataset version {dataset['version_id']} has uneven splits: "
                      f"{dataset['split_warnings'][0]}.")
    return advice


def recommendations(
    stats: Mapping[str, Any], total_versions: int, *, regressions: Sequence[Mapping[str, Any]] = (),
    best_model: Mapping[str, Any] | None = None, dataset_quality: Mapping[str, Any] | None = None,
) -> list[str]:
    """What to do next: regressions first (a model got worse), then the current dataset's quality, then the
    cases (volume, corrections, variety, quarantine rate)."""
    return [*_regression_advice(regressions, best_model), *_dataset_advice(dataset_quality),
            *_case_advice(stats, total_versions)]
