"""Use case: the facts of the dashboard (the `api`'s page on `GET /` and its `dashboard_facts` op), read in one go.

Every figure is read as the matching op reads it (`get_statistics`, `list_dead_letters`, `get_performance_trend`,
`generate_performance_report`, `list_versions`, `recent_work`), so the page and the ops never disagree. The
dead-letter backlog is best effort: a deployment whose api cannot pull its dead-letter subscriptions still gets
its dashboard, with the reason in place of the count.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from shared.domain import versions
from shared.domain.performance_report import UNKNOWN_VERSION, performance_report
from shared.domain.statistics import summarize
from shared.domain.trends import field_value, finite_number, time_ordered
from shared.json_encoding import json_default
from shared.observability import get_logger
from shared.ports import Bucket, CaseStore, DeadLetterQueue, MetricStore, ProgressBoard
from shared.services import metric_reads, work_progress
from shared.services.dead_letter_backlog import list_dead_letters
from shared.services.version_registry import read_registry
from shared.topology import Topology

log = get_logger("dashboard")

TREND_METRICS = ("wer", "cer")
SHOWN_VERSIONS = 12
RECENT_WORK = 8
# The backlog counts up to this many dead letters per topic ("at least" beyond).
DEAD_LETTERS_COUNTED = 1000


def dashboard_facts(
    cases: CaseStore, metrics: MetricStore, bucket: Bucket, progress: ProgressBoard, dead_letters: DeadLetterQueue,
    topology: Topology, now: datetime,
) -> dict[str, Any]:
    """Totals, the error types, WER/CER per model with the regressions, the versions with their quality and
    lineage, and the recent imports and builds: plain JSON."""
    points = metric_reads.current_points(metrics)
    report = performance_report(points, list(metrics.records("model_version")), now)
    registry = read_registry(bucket)
    facts = {
        "generated_at": now.isoformat(),
        "statistics": summarize(cases.counter_shards()),
        "dead_letters": _backlog(dead_letters, topology),
        "performance": {
            "series": {metric: _series(points, metric) for metric in TREND_METRICS},
            "regressions": [r for r in report["regressions"] if r["metric"] in TREND_METRICS],
            "best_model": report["best_model"],
            "record_count": report["record_count"],
        },
        "versions": _versions(registry),
        "recent_work": work_progress.recent_work(progress, RECENT_WORK),
    }
    # Plain JSON for the page as for the op: Firestore's timestamps (the progress notes') become ISO text.
    return dict(orjson.loads(orjson.dumps(facts, default=json_default)))


def _backlog(queue: DeadLetterQueue, topology: Topology) -> dict[str, Any]:
    try:
        listed = list_dead_letters(queue, topology, max_messages=DEAD_LETTERS_COUNTED, with_letters=False)
    except Exception as exc:  # a panel of the page, not the page: say why it is missing
        log.warning("dead-letter backlog not read", extra={"error": f"{type(exc).__name__}: {exc}"})
        return {"total": None, "complete": False, "topics": {}, "error": f"{type(exc).__name__}: {exc}"}
    return {"total": listed["total"], "complete": listed["complete"],
            "topics": {name: found["count"] for name, found in listed["topics"].items()}}


def _series(points: list[dict[str, Any]], metric: str) -> dict[str, list[dict[str, Any]]]:
    """Model version -> its dated values of `metric`, oldest first (the points without it left out)."""
    series: dict[str, list[dict[str, Any]]] = {}
    for moment, point in time_ordered(points):
        value = finite_number(field_value(point, metric))
        if value is None or moment is None:
            continue
        model = str(field_value(point, "model_version") or UNKNOWN_VERSION)
        series.setdefault(model, []).append({"recorded_at": moment.isoformat(), "value": value})
    return dict(sorted(series.items()))


def _versions(registry: Mapping[str, Any]) -> dict[str, Any]:
    """The newest versions (newest first) with their quality, and the current one's lineage (oldest first)."""
    current = registry.get("current_version")
    entries = versions.list_versions(registry)
    shown = []
    for entry in entries[:SHOWN_VERSIONS]:
        report = entry.get("quality_report") or {}
        metadata = entry.get("metadata") or {}
        shown.append({
            "version_id": entry["version_id"],
            "dataset_id": entry.get("dataset_id"),
            "created_at": entry.get("created_at"),
            "samples": metadata.get("total_samples"),
            "quality_score": versions.quality_score(entry),
            "quality_passed": report.get("passed") if "passed" in report else None,
            "parent_version": entry.get("parent_version"),
            "current": entry["version_id"] == current,
        })
    lineage = [e["version_id"] for e in versions.get_version_lineage(registry, current)] if current else []
    return {"total": len(entries), "current_version": current, "current_lineage": lineage, "shown": shown}
