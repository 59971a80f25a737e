"""The seed's MetadataTracker: record training metrics, read trends and reports, export them to the bucket.

The same records as the `training-metrics` topic, stored by the same use case, so a record sent both ways
is stored once. Invalid input raises InvalidMetricRecord (the caller is there to fix it, unlike a push).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.config import Settings
from shared.domain.anomalies import metric_anomalies
from shared.domain.metric_records import validate_metric_record
from shared.domain.performance_report import performance_report
from shared.domain.trend_plot import render_trend_png
from shared.domain.trends import as_utc, performance_trend, time_ordered
from shared.ports import MetricStore, ObjectWriter
from shared.services import metric_exports
from shared.services.metrics import performance_history, refresh_snapshot, store_record, utc_now

# A trend read that found more new records than this since the snapshot writes a fresh snapshot.
SNAPSHOT_REFRESH_TAIL = 500


class MetadataTracker:
    """Training metrics of the deployment named by `settings` (default: from the environment)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: MetricStore | None = None,
        objects: ObjectWriter | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._store = store
        self._objects = objects
        self._clock = clock

    @property
    def store(self) -> MetricStore:
        """The record store, created on first use (no client at construction)."""
        if self._store is None:
            from shared.adapters.firestore_metrics import FirestoreMetricStore

            self._store = FirestoreMetricStore(self.settings)
        return self._store

    @property
    def objects(self) -> ObjectWriter:
        """The bucket writer, created on first use."""
        if self._objects is None:
            from shared.adapters.gcs import BucketStore

            self._objects = BucketStore(self.settings)
        return self._objects

    def _record(self, fields: dict[str, Any]) -> str:
        """Validate and store one record; its record id."""
        now = self._clock()
        record = validate_metric_record({k: v for k, v in fields.items() if v is not None}, now)
        return store_record(record, self.store, now).record_id or ""

    def record_performance(
        self,
        model_version: str,
        wer: float,
        cer: float,
        error_rate: float,
        correction_rate: float,
        inference_time: float,
        *,
        recorded_at: datetime | str | None = None,
        record_id: str | None = None,
        **extra: Any,
    ) -> str:
        """Record one evaluation of a model version; its record id."""
        return self._record({**extra, "kind": "performance", "model_version": model_version, "wer": wer,
                             "cer": cer, "error_rate": error_rate, "correction_rate": correction_rate,
                             "inference_time": inference_time, "recorded_at": recorded_at, "record_id": record_id})

    def record_model_version(
        self,
        version_id: str,
        model_name: str,
        training_data_size: int | None = None,
        training_metadata: dict[str, Any] | None = None,
        performance_metrics: dict[str, Any] | None = None,
        dataset_version_id: str | None = None,
        *,
        recorded_at: datetime | str | None = None,
        record_id: str | None = None,
        **extra: Any,
    ) -> str:
        """Register a model version and the dataset version it was trained on; its record id."""
        return self._record({**extra, "kind": "model_version", "version_id": version_id, "model_name": model_name,
                             "training_data_size": training_data_size, "training_metadata": training_metadata,
                             "performance_metrics": performance_metrics, "dataset_version_id": dataset_version_id,
                             "recorded_at": recorded_at, "record_id": record_id})

    def record_learning_progress(
        self,
        stage: str,
        model_version: str,
        *,
        recorded_at: datetime | str | None = None,
        record_id: str | None = None,
        **figures: Any,
    ) -> str:
        """Record a training stage's figures (loss, epoch, ...); its record id."""
        return self._record({**figures, "kind": "learning_progress", "stage": stage, "model_version": model_version,
                             "recorded_at": recorded_at, "record_id": record_id})

    def record_inference_stats(
        self,
        model_version: str,
        *,
        recorded_at: datetime | str | None = None,
        record_id: str | None = None,
        **stats: Any,
    ) -> str:
        """Record serving counts and latencies of a model version; its record id."""
        return self._record({**stats, "kind": "inference_stats", "model_version": model_version,
                             "recorded_at": recorded_at, "record_id": record_id})

    def performance_points(self) -> list[dict[str, Any]]:
        """Every performance point (snapshot + newer records), refreshing the snapshot when it lags."""
        points, _, tail = performance_history(self.store)
        if tail > SNAPSHOT_REFRESH_TAIL:
            refresh_snapshot(self.store, points)
        return points

    def get_performance_trend(
        self, metric: str = "wer", *, model_version: str | None = None, since: datetime | str | None = None
    ) -> dict[str, Any]:
        """The metric over time: points, first/last/best/worst/mean, improvement (positive = better)."""
        points = self.performance_points()
        start = as_utc(since)
        if model_version is not None:
            points = [p for p in points if p.get("model_version") == model_version]
        if start is not None:
            points = [p for p in points if (t := as_utc(p.get("recorded_at"))) is not None and t >= start]
        return performance_trend(points, metric).to_dict()

    def generate_performance_report(self, **rule: Any) -> dict[str, Any]:
        """Per model version statistics, best model, regressions with evidence, trends and lineage."""
        versions = list(self.store.records("model_version"))
        return performance_report(self.performance_points(), versions, self._clock(), **rule)

    def render_trend_plot(self, metric: str = "wer") -> bytes:
        """PNG of the metric's trend, regressions circled."""
        points = self.performance_points()
        return render_trend_png(performance_trend(points, metric), metric_anomalies(points, metric))

    def get_model_lineage(self, version_id: str) -> dict[str, Any]:
        """A model version's registrations, the dataset version it was trained on, its performance records."""
        registrations = [r for _, r in time_ordered(self.store.records_of_version("model_version", version_id))]
        performance = self.store.records_of_version("performance", version_id, ("record_id", "recorded_at"))
        latest = registrations[-1] if registrations else {}
        return {
            "version_id": version_id,
            "registered": bool(registrations),
            "model_name": latest.get("model_name"),
            "dataset_version_id": latest.get("dataset_version_id"),
            "registrations": [r.get("record_id") for r in registrations],
            "performance_record_ids": sorted(str(r["record_id"]) for r in performance),
        }

    def refresh_snapshot(self) -> dict[str, Any]:
        """Write a new trend snapshot now; what it holds."""
        return refresh_snapshot(self.store)

    def export_metadata(self, *, plot_metric: str = "wer", **rule: Any) -> dict[str, Any]:
        """Write the seed's exports, the report and its plot to the bucket; a summary of the objects."""
        return metric_exports.export_metadata(self.store, self.objects, self._clock(), plot_metric=plot_metric, **rule)
