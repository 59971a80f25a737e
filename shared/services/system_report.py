"""Use cases over the whole system: a training run's figures, the system statistics, the comprehensive report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.domain import bucket_layout as layout
from shared.domain import versions
from shared.domain.metric_records import validate_metric_record
from shared.domain.recommendations import assess_quality, current_dataset_quality, recommendations
from shared.domain.statistics import summarize
from shared.json_encoding import dumps_json
from shared.ports import Bucket, CaseStore, MetricStore
from shared.services import metric_reads
from shared.services.datasets import list_datasets
from shared.services.metrics import store_record
from shared.services.version_registry import read_registry

# Fields of a training run's metadata that a performance (trend) point also carries when they are there.
POINT_FIELDS = ("error_rate", "correction_rate", "inference_time")
# Fields of a model version registration a training run keeps from the latest one when its metadata lacks them.
CARRIED_FIELDS = ("model_name", "training_data_size", "dataset_version_id")


def record_training_performance(
    store: MetricStore, model_version: str, wer: float, cer: float, training_metadata: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, str]:
    """A training run's figures as two records, both validated before either is stored; their record ids.

    - a `performance` point of `model_version` with its `wer` and `cer` (and `error_rate`, `correction_rate`,
      `inference_time` when the metadata carries them; never made up), so `get_performance_trend` shows the run;
      it says `"source": "training"`, so it is not taken for an evaluation record of the same figures;
    - a `model_version` registration with `performance_metrics` {wer, cer}. `model_name`, `training_data_size`
      and `dataset_version_id` come from the metadata, else from the version's latest registration (so a run
      keeps the lineage `record_model_version` gave it); a version never registered is named after itself.
      `training_metadata` is the latest registration's with the run's keys on top.
    """
    given = dict(training_metadata or {})
    registered = metric_reads.latest_registration(store, model_version) or {}
    carried = {name: given.get(name, registered.get(name)) for name in CARRIED_FIELDS}
    registration = validate_metric_record({
        "kind": "model_version", "version_id": model_version,
        "model_name": str(carried["model_name"] or model_version),
        "training_data_size": carried["training_data_size"], "dataset_version_id": carried["dataset_version_id"],
        "training_metadata": {**(registered.get("training_metadata") or {}), **given},
        "performance_metrics": {**(registered.get("performance_metrics") or {}), "wer": wer, "cer": cer},
    }, now)
    figures = {name: given[name] for name in POINT_FIELDS if given.get(name) is not None}
    point = validate_metric_record(
        {"kind": "performance", "model_version": model_version, "wer": wer, "cer": cer, **figures,
         "source": "training"}, now,
    )
    return {
        "model_version": store_record(registration, store, now).record_id or "",
        "performance": store_record(point, store, now).record_id or "",
    }


def system_statistics(
    cases: CaseStore, metrics: MetricStore, bucket: Bucket, now: datetime, registry: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Cases, performance trends, versions and datasets, in one answer (`registry`: the one already read)."""
    return {
        "data_management": summarize(cases.counter_shards()),
        "performance_trends": {m: metric_reads.trend(metrics, m) for m in ("wer", "cer")},
        "version_control": versions.version_report(read_registry(bucket) if registry is None else registry, now),
        "available_datasets": len(list_datasets(bucket)),
    }


def comprehensive_report(cases: CaseStore, metrics: MetricStore, bucket: Bucket, now: datetime) -> dict[str, Any]:
    """Statistics, the performance report (with the learning progress and inference stats), the data quality
    (the cases' and the current dataset version's) and recommendations drawn from all of them: regressions,
    the current dataset's quality and split warnings, the quarantine rate, and the case counts."""
    registry = read_registry(bucket)
    statistics = system_statistics(cases, metrics, bucket, now, registry)
    performance = metric_reads.report(metrics, now)
    dataset = current_dataset_quality(registry)
    return {
        "generated_at": now.isoformat(),
        "system_statistics": statistics,
        "performance_report": performance,
        "data_quality": {**assess_quality(statistics["data_management"]), "current_dataset": dataset},
        "recommendations": recommendations(
            statistics["data_management"], statistics["version_control"]["total_versions"],
            regressions=performance["regressions"], best_model=performance["best_model"], dataset_quality=dataset,
        ),
    }


def save_report(bucket: Bucket, output_path: str, report: Mapping[str, Any]) -> str:
    """Write a report as JSON under `reports/` (BadInput for any other place); its gs:// URI."""
    return bucket.put(layout.report_name(output_path), dumps_json(dict(report), indent=True), "application/json")
