"""MetadataTracker: record training metrics, read trends and reports, export them to the bucket.

The same records as the `training-metrics` topic, stored by the same use case, so a record sent both ways is
stored once. Invalid input raises InvalidMetricRecord (the caller is there to fix it, unlike a push).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.domain.anomalies import DEFAULT_MIN_HISTORY, DEFAULT_THRESHOLD, DEFAULT_WINDOW
from shared.domain.metric_records import UNVERSIONED
from shared.domain.monitoring import DEFAULT_LIMIT
from shared.domain.performance_report import DEFAULT_REGRESSION_METRICS
from shared.facade_setup import LocalPath, deployment, legacy_settings, local_dir
from shared.ports import MetricStore
from shared.services import metric_exports, metric_reads, metric_restore
from shared.services.metrics import record_fields

if TYPE_CHECKING:
    from shared.data_manager import DataManager


DEFAULT_LOCAL_DIR = "data/metadata"


class MetadataTracker:
    """Training metrics of one deployment (default: from the environment).

    The seed's constructor: `MetadataTracker(local_storage_dir="data/metadata", use_gcs=True)`, or
    `MetadataTracker(data_manager=dm)` to share a DataManager's deployment (its settings and clients). The
    parameters mean what shared/facade_setup.py says: the bucket and Firestore are the source of truth,
    `local_storage_dir` is where local copies go, `use_gcs=False` is refused.
    """

    def __init__(
        self,
        local_storage_dir: LocalPath | Settings | None = None,
        use_gcs: bool = True,
        gcs_bucket_name: str | None = None,
        *,
        data_manager: DataManager | None = None,
        settings: Settings | None = None,
        adapters: bootstrap.Adapters | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        local, settings = legacy_settings(local_storage_dir, settings)
        self.adapters = deployment("MetadataTracker", use_gcs=use_gcs, gcs_bucket_name=gcs_bucket_name,
                                   settings=settings, adapters=adapters, data_manager=data_manager)
        self.settings = self.adapters.settings
        self.data_manager = data_manager
        self.use_gcs = True
        self.gcs_bucket_name = self.settings.bucket
        # Where local copies of the metric exports and reports go; nothing is read from it or created yet.
        self.local_storage_dir = local_dir(local, DEFAULT_LOCAL_DIR)
        self._clock = clock

    @property
    def store(self) -> MetricStore:
        return self.adapters.metrics

    def _record(self, fields: dict[str, Any]) -> str:
        return record_fields(fields, self.store, self._clock())

    def current_model_version(self) -> str | None:
        """The model version registered last (`record_model_version`, by recorded_at), or None."""
        return metric_reads.current_model_version(self.store)

    def _version(self, model_version: str | None) -> str:
        """The given model version, else the current one, else UNVERSIONED."""
        if model_version is not None:
            return model_version
        return self.current_model_version() or UNVERSIONED

    def record_performance(
        self, wer: float, cer: float, error_rate: float | None = None, correction_rate: float | None = None,
        inference_time: float | None = None, model_version: str | None = None, *,
        recorded_at: datetime | str | None = None, record_id: str | None = None, **extra: Any
    ) -> str:
        """Record one evaluation; its record id. The seed's call: `record_performance(wer=0.12, cer=0.06, ...)`.

        `model_version` defaults to the current model version (the one registered last with
        `record_model_version`), and to "unversioned" (UNVERSIONED) while none is registered: a point is never
        dropped for want of a version, and never put under a version it may not belong to silently (the stored
        record says which one it got). `error_rate`, `correction_rate` and `inference_time` may be left out when
        not measured; the trend of a metric skips the records without it.
        """
        return self._record({**extra, "kind": "performance", "model_version": self._version(model_version),
                             "wer": wer, "cer": cer, "error_rate": error_rate, "correction_rate": correction_rate,
                             "inference_time": inference_time, "recorded_at": recorded_at, "record_id": record_id})

    def record_model_version(
        self, version_id: str, model_name: str, training_data_size: int | None = None,
        training_metadata: dict[str, Any] | None = None, performance_metrics: dict[str, Any] | None = None,
        dataset_version_id: str | None = None, *, recorded_at: datetime | str | None = None,
        record_id: str | None = None, **extra: Any
    ) -> str:
        """Register a model version and the dataset version it was trained on; its record id."""
        return self._record({**extra, "kind": "model_version", "version_id": version_id, "model_name": model_name,
                             "training_data_size": training_data_size, "training_metadata": training_metadata,
                             "performance_metrics": performance_metrics, "dataset_version_id": dataset_version_id,
                             "recorded_at": recorded_at, "record_id": record_id})

    def record_learning_progress(
        self, stage: str, model_version: str | None = None, *, recorded_at: datetime | str | None = None,
        record_id: str | None = None, **figures: Any
    ) -> str:
        """Record a training stage's figures (loss, epoch, ...); its record id. `model_version` defaults as in
        record_performance."""
        return self._record({**figures, "kind": "learning_progress", "stage": stage,
                             "model_version": self._version(model_version), "recorded_at": recorded_at,
                             "record_id": record_id})

    def record_inference_stats(
        self, model_version: str | None = None, *, recorded_at: datetime | str | None = None,
        record_id: str | None = None, **stats: Any
    ) -> str:
        """Record serving counts and latencies; its record id. `model_version` defaults as in record_performance."""
        return self._record({**stats, "kind": "inference_stats", "model_version": self._version(model_version),
                             "recorded_at": recorded_at, "record_id": record_id})

    def get_learning_progress(
        self, model_version: str | None = None, stage: str | None = None, since: datetime | str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """The learning progress recorded (record_learning_progress), of one model version and/or stage, since
        a time: `records` (the newest `limit`, oldest first), `count` (all that matched) and `by_model_version`
        (each figure's first/last/min/max/mean per model version, and each stage's latest figures)."""
        return metric_reads.monitoring_records(self.store, "learning_progress", model_version, stage, since, limit)

    def get_inference_stats(
        self, model_version: str | None = None, since: datetime | str | None = None, limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """The inference stats recorded (record_inference_stats), of one model version, since a time: `records`
        (the newest `limit`, oldest first), `count` and `by_model_version` (each count's and latency's
        first/last/min/max/mean/sum per model version)."""
        return metric_reads.monitoring_records(self.store, "inference_stats", model_version, None, since, limit)

    def performance_points(self) -> list[dict[str, Any]]:
        """Every performance point (snapshot + newer records), refreshing the snapshot when it lags."""
        return metric_reads.current_points(self.store)

    def get_performance_trend(
        self, metric: str = "wer", *, model_version: str | None = None, since: datetime | str | None = None
    ) -> dict[str, Any]:
        """The metric over time: points, first/last/best/worst/mean, improvement (positive = better)."""
        return metric_reads.trend(self.store, metric, model_version, since)

    def generate_performance_report(
        self, regression_metrics: list[str] | None = None, window: int = DEFAULT_WINDOW,
        threshold: float = DEFAULT_THRESHOLD, min_history: int = DEFAULT_MIN_HISTORY,
    ) -> dict[str, Any]:
        """Per model version statistics, best model, regressions with evidence, trends and lineage. The
        regression rule's parameters are named (not **kwargs) so the `api` refuses a misspelt one with a 400:
        `regression_metrics` (default wer and cer), `window`, `threshold`, `min_history` (docs/metrics.md)."""
        metrics = tuple(regression_metrics) if regression_metrics is not None else DEFAULT_REGRESSION_METRICS
        return metric_reads.report(self.store, self._clock(), regression_metrics=metrics, window=window,
                                   threshold=threshold, min_history=min_history)

    def render_trend_plot(self, metric: str = "wer") -> bytes:
        """PNG of the metric's trend, regressions circled."""
        return metric_reads.trend_plot(self.store, metric)

    def get_model_lineage(self, version_id: str) -> dict[str, Any]:
        """A model version's registrations, the dataset version it was trained on, its performance records."""
        return metric_reads.model_lineage(self.store, version_id)

    def refresh_snapshot(self) -> dict[str, Any]:
        """Write a new trend snapshot now; what it holds."""
        return metric_reads.refresh_snapshot(self.store)

    def sync_from_gcs(self) -> dict[str, Any]:
        """Store every metric record of the `metadata/` exports (export_metadata, sync_all_to_gcs) that Firestore
        lacks (shared/services/metric_restore.py); per kind, what was restored."""
        return metric_restore.restore_metrics(self.store, self.adapters.bucket)

    def export_metadata(self, *, plot_metric: str = "wer", **rule: Any) -> dict[str, Any]:
        """Write the metric exports, the report and its plot to the bucket; a summary of the objects."""
        return metric_exports.export_metadata(
            self.store, self.adapters.bucket, self._clock(), plot_metric=plot_metric, **rule
        )
