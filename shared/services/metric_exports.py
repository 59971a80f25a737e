"""Use case: write the metric exports (`metadata/`), the performance report and its trend plot to the bucket.

Every object is written in one upload (atomic per object), the data files first and the report last,
so the report never names a plot or figures that are not there yet. The full read of the performance
history is reused to refresh the trend snapshot, so a scheduled export also keeps trends fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared.domain import bucket_layout as layout
from shared.domain.anomalies import detect_anomalies, metric_anomalies
from shared.domain.monitoring import report_summaries
from shared.domain.performance_report import performance_report
from shared.domain.trend_plot import render_trend_png
from shared.domain.trends import as_utc, performance_trend, time_ordered
from shared.json_encoding import dumps_json as dumps
from shared.ports import MetricStore, ObjectWriter
from shared.services.metric_reads import refresh_snapshot

JSONL = "application/x-ndjson"



def jsonl(documents: Iterable[dict[str, Any]]) -> bytes:
    """One JSON document a line, oldest first, ending with a newline when not empty."""
    lines = [dumps(document) for _, document in time_ordered(documents)]
    return b"".join(line + b"\n" for line in lines)


def model_versions_export(versions: list[dict[str, Any]], performance: list[dict[str, Any]]) -> dict[str, Any]:
    """version id -> its latest registration, every registration time, and its lineage."""
    counts: dict[str, int] = {}
    for record in performance:
        counts[str(record.get("model_version"))] = counts.get(str(record.get("model_version")), 0) + 1
    export: dict[str, Any] = {}
    for moment, version in time_ordered(versions):
        version_id = str(version["version_id"])
        earlier = export.get(version_id, {}).get("registrations", [])
        export[version_id] = {
            **version,
            "registrations": [*earlier, moment.isoformat() if moment else None],
            "lineage": {
                "dataset_version_id": version.get("dataset_version_id"),
                "performance_record_count": counts.get(version_id, 0),
            },
        }
    return dict(sorted(export.items()))


def export_metadata(
    store: MetricStore,
    objects: ObjectWriter,
    now: datetime,
    *,
    plot_metric: str = "wer",
    **rule: Any,
) -> dict[str, Any]:
    """Write every export, the plot and the report; a JSON summary of what was written."""
    anomaly_rule = {k: v for k, v in rule.items() if k != "regression_metrics"}
    # Refuse a bad metric or rule before anything is written, not halfway through the objects.
    for metric in {plot_metric, *rule.get("regression_metrics", ())}:
        detect_anomalies([], metric, **anomaly_rule)
    performance = list(store.records("performance"))
    versions = list(store.records("model_version"))
    progress = list(store.records("learning_progress"))
    inference = list(store.records("inference_stats"))
    written: dict[str, dict[str, Any]] = {}

    def put(name: str, data: bytes, content_type: str, count: int | None = None) -> str:
        uri = objects.put(name, data, content_type)
        written[name] = {"uri": uri, "bytes": len(data), **({"records": count} if count is not None else {})}
        return uri

    put(layout.PERFORMANCE_HISTORY, jsonl(performance), JSONL, len(performance))
    put(layout.MODEL_VERSIONS, dumps(model_versions_export(versions, performance), indent=True), "application/json",
        len(versions))
    put(layout.LEARNING_PROGRESS, jsonl(progress), JSONL, len(progress))
    put(layout.INFERENCE_STATS, jsonl(inference), JSONL, len(inference))

    report = {**performance_report(performance, versions, now, **rule), **report_summaries(progress, inference)}
    trend = performance_trend(performance, plot_metric)
    anomalies = metric_anomalies(performance, plot_metric, **anomaly_rule)
    plot_uri = put(layout.metric_plot_name(plot_metric), render_trend_png(trend, anomalies), "image/png")
    report["trend_plot"] = {"metric": plot_metric, "uri": plot_uri, "anomalies": len(anomalies)}
    put(layout.PERFORMANCE_REPORT, dumps(report, indent=True), "application/json")

    snapshot = refresh_snapshot(store, performance)
    return {
        "generated_at": as_utc(now).isoformat(),  # type: ignore[union-attr]
        "objects": written,
        "best_model": report["best_model"],
        "regressions": len(report["regressions"]),
        "snapshot": snapshot,
    }
