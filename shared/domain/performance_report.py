"""The performance report over a model history (`MetadataTracker.generate_performance_report`).

Per model version: number of evaluations, mean/min/max of every metric (wer and cer
first among them), the latest evaluation and, when registered, its dataset version.
The best model is the one with the lowest mean WER (ties: lower mean CER, then version
id, so the answer is stable). Regressions are the anomalies of ``regression_metrics``
(see ``shared.domain.anomalies``) with their evidence; trends are the summaries of
``shared.domain.trends``; lineage maps each registered model version to the dataset
version it was trained on (the latest registration of a version wins).
Everything returned is plain JSON: str, float, int, bool, None, lists and dicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from shared.domain.anomalies import DEFAULT_MIN_HISTORY, DEFAULT_THRESHOLD, DEFAULT_WINDOW, metric_anomalies
from shared.domain.trends import (
    METRICS,
    PerformanceLike,
    as_utc,
    field_value,
    finite_number,
    performance_trend,
    time_ordered,
)

UNKNOWN_VERSION = "(unknown)"


def _stats(values: list[float]) -> dict[str, float | None]:
    """Mean, min and max of a list, None when empty."""
    if not values:
        return {"mean": None, "min": None, "max": None}
    return {"mean": math.fsum(values) / len(values), "min": min(values), "max": max(values)}


def _iso(moment: datetime | None) -> str | None:
    """ISO text of an optional timestamp."""
    return moment.isoformat() if moment else None


def _lineage(model_versions: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Registered versions -> their dataset version and registration facts."""
    lineage: dict[str, dict[str, Any]] = {}
    for moment, version in time_ordered(model_versions):
        version_id = field_value(version, "version_id")
        if not version_id:
            continue
        lineage[str(version_id)] = {
            "dataset_version_id": field_value(version, "dataset_version_id"),
            "model_name": field_value(version, "model_name"),
            "training_data_size": field_value(version, "training_data_size"),
            "registered_at": _iso(moment),
        }
    return dict(sorted(lineage.items()))


def _per_version(
    ordered: list[tuple[datetime | None, Any]], lineage: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Evaluation statistics of each model version."""
    grouped: dict[str, list[tuple[datetime | None, Any]]] = {}
    for moment, record in ordered:
        version = field_value(record, "model_version") or UNKNOWN_VERSION
        grouped.setdefault(str(version), []).append((moment, record))
    report: dict[str, dict[str, Any]] = {}
    for version, items in sorted(grouped.items()):
        metrics = {
            metric: _stats([v for _, r in items if (v := finite_number(field_value(r, metric))) is not None])
            for metric in METRICS
        }
        latest_moment, latest = items[-1]
        registration = lineage.get(version)
        report[version] = {
            "count": len(items),
            "wer": metrics["wer"],
            "cer": metrics["cer"],
            "metrics": metrics,
            "first_recorded_at": _iso(items[0][0]),
            "last_recorded_at": _iso(latest_moment),
            "latest": {
                "recorded_at": _iso(latest_moment),
                **{metric: finite_number(field_value(latest, metric)) for metric in METRICS},
            },
            "registered": registration is not None,
            "dataset_version_id": registration["dataset_version_id"] if registration else None,
        }
    return report


def _best_model(per_version: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The version with the lowest mean WER, or None without any WER."""
    candidates = [
        (stats["wer"]["mean"], math.inf if stats["cer"]["mean"] is None else stats["cer"]["mean"], version)
        for version, stats in per_version.items()
        if stats["wer"]["mean"] is not None
    ]
    if not candidates:
        return None
    mean_wer, _, version = min(candidates)
    return {
        "model_version": version,
        "mean_wer": mean_wer,
        "mean_cer": per_version[version]["cer"]["mean"],
        "count": per_version[version]["count"],
        "dataset_version_id": per_version[version]["dataset_version_id"],
    }


# The metrics whose regressions a report flags unless told otherwise.
DEFAULT_REGRESSION_METRICS: tuple[str, ...] = ("wer", "cer")


def performance_report(
    performance_records: Iterable[PerformanceLike],
    model_versions: Iterable[Any],
    now: datetime,
    *,
    regression_metrics: Sequence[str] = DEFAULT_REGRESSION_METRICS,
    window: int = DEFAULT_WINDOW,
    threshold: float = DEFAULT_THRESHOLD,
    min_history: int = DEFAULT_MIN_HISTORY,
) -> dict[str, Any]:
    """Per-version statistics, best model, regressions, trends and lineage as one JSON dict."""
    # Parse and sort once; trends and anomalies then re-sort already ordered datetimes cheaply.
    ordered = time_ordered(performance_records)
    records = [
        {"recorded_at": moment, "model_version": field_value(record, "model_version"),
         **{metric: field_value(record, metric) for metric in METRICS}}
        for moment, record in ordered
    ]
    lineage = _lineage(model_versions)
    per_version = _per_version(ordered, lineage)
    regressions = [
        anomaly.to_dict()
        for metric in regression_metrics
        for anomaly in metric_anomalies(
            records, metric, window=window, threshold=threshold, min_history=min_history
        )
    ]
    # Undated anomalies ("" sorts first) are rare; the order only needs to be stable.
    regressions.sort(key=lambda item: (item["recorded_at"] or "", item["metric"]))
    dated = [moment for moment, _ in ordered if moment is not None]
    return {
        "generated_at": _iso(as_utc(now)),
        "record_count": len(records),
        "period": {"first_recorded_at": _iso(min(dated, default=None)),
                   "last_recorded_at": _iso(max(dated, default=None))},
        "model_versions": per_version,
        "best_model": _best_model(per_version),
        "regressions": regressions,
        "anomaly_rule": {"metrics": list(regression_metrics), "window": window, "threshold": threshold,
                         "min_history": min_history},
        "trends": {metric: performance_trend(records, metric).summary() for metric in METRICS},
        "lineage": lineage,
    }
