"""Use cases over the whole system: a training run's figures, the system statistics, the comprehensive report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain import bucket_layout as layout
from shared.domain import versions
from shared.domain.recommendations import assess_quality, recommendations
from shared.domain.statistics import summarize
from shared.json_encoding import dumps_json
from shared.ports import Bucket, CaseStore, MetricStore
from shared.services import metric_reads
from shared.services.datasets import list_datasets
from shared.services.metrics import record_fields
from shared.services.version_registry import read_registry

# Fields of a training run's metadata that make it a performance (trend) point as well.
POINT_FIELDS = ("error_rate", "correction_rate", "inference_time")


def record_training_performance(
    store: MetricStore, model_version: str, wer: float, cer: float, training_metadata: Mapping[str, Any],
    now: datetime,
) -> dict[str, str]:
    """Register the model version with its WER/CER; also a performance point when the metadata carries
    `error_rate`, `correction_rate` and `inference_time` (a trend point is never made of guesses)."""
    ids = {
        "model_version": record_fields({
            "kind": "model_version", "version_id": model_version,
            "model_name": str(training_metadata.get("model_name", "unknown")),
            "training_data_size": training_metadata.get("training_data_size"),
            "training_metadata": dict(training_metadata), "performance_metrics": {"wer": wer, "cer": cer},
            "dataset_version_id": training_metadata.get("dataset_version_id"),
        }, store, now)
    }
    if all(training_metadata.get(name) is not None for name in POINT_FIELDS):
        point = {name: float(training_metadata[name]) for name in POINT_FIELDS}
        ids["performance"] = record_fields(
            {"kind": "performance", "model_version": model_version, "wer": wer, "cer": cer, **point}, store, now
        )
    return ids


def system_statistics(cases: CaseStore, metrics: MetricStore, bucket: Bucket, now: datetime) -> dict[str, Any]:
    """Cases, performance trends, versions and datasets, in one answer."""
    return {
        "data_management": summarize(cases.counter_shards()),
        "performance_trends": {m: metric_reads.trend(metrics, m) for m in ("wer", "cer")},
        "version_control": versions.version_report(read_registry(bucket), now),
        "available_datasets": len(list_datasets(bucket)),
    }


def comprehensive_report(cases: CaseStore, metrics: MetricStore, bucket: Bucket, now: datetime) -> dict[str, Any]:
    """Statistics, the performance report, data quality and recommendations."""
    statistics = system_statistics(cases, metrics, bucket, now)
    return {
        "generated_at": now.isoformat(),
        "system_statistics": statistics,
        "performance_report": metric_reads.report(metrics, now),
        "data_quality": assess_quality(statistics["data_management"]),
        "recommendations": recommendations(
            statistics["data_management"], statistics["version_control"]["total_versions"]
        ),
    }


def save_report(bucket: Bucket, output_path: str, report: Mapping[str, Any]) -> str:
    """Write a report as JSON under `reports/` (BadInput for any other place); its gs:// URI."""
    return bucket.put(layout.report_name(output_path), dumps_json(dict(report), indent=True), "application/json")
