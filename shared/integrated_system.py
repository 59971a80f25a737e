"""IntegratedDataManagementSystem: the seed's one-stop facade over cases, metrics, datasets and versions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from shared.adapters.gcs import BucketStore
from shared.config import Settings
from shared.data_manager import DataManager
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.json_encoding import json_default
from shared.metadata_tracker import MetadataTracker
from shared.version_control import DataVersionControl

# Below these, the report recommends collecting or correcting more before fine-tuning (the seed's rules).
MIN_CORRECTION_RATE = 0.5
MIN_CASES = 100
ENOUGH_CASES = 500
MIN_ERROR_TYPES = 3


class IntegratedDataManagementSystem:
    """DataManager, MetadataTracker, FinetuningDatasetPipeline and DataVersionControl on one Settings."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.data_manager = DataManager(self.settings)
        self.metadata_tracker = MetadataTracker(self.settings)
        self.finetuning_pipeline = FinetuningDatasetPipeline(self.settings)
        self.version_control = DataVersionControl(self.settings)

    def record_failed_transcription(
        self,
        audio_path: str,
        original_transcript: str,
        corrected_transcript: str | None = None,
        error_types: list[str] | None = None,
        error_score: float | None = None,
        inference_time: float | None = None,
        model_confidence: float | None = None,
        additional_metadata: dict[str, Any] | None = None,
        **fields: Any,
    ) -> str:
        """Store a failed transcription as a case (idempotent: the same event gives the same id); its id."""
        optional = {"inference_time": inference_time, "model_confidence": model_confidence}
        return self.data_manager.store_failed_case(
            audio_path, original_transcript, corrected_transcript, error_types, error_score, additional_metadata,
            **{k: v for k, v in optional.items() if v is not None}, **fields,
        )

    def add_correction(self, case_id: str, corrected_transcript: str, correction_method: str = "manual") -> bool:
        """Correct a case (its history keeps who/what/when); KeyError for an unknown case."""
        self.data_manager.store_correction(case_id, corrected_transcript, corrected_by=correction_method)
        return True

    def prepare_finetuning_dataset(
        self,
        min_error_score: float = 0.5,
        train_ratio: float = 0.8,
        val_ratio: float = 0.1,
        test_ratio: float = 0.1,
        max_samples: int | None = None,
        balance_error_types: bool = True,
        create_version: bool = True,
        version_name: str | None = None,
        parent_version: str | None = None,
    ) -> dict[str, Any]:
        """Build a dataset of corrected cases and, by default, version it; its info with `version_id`."""
        return self.finetuning_pipeline.prepare_dataset(
            min_error_score=min_error_score, train_ratio=train_ratio, val_ratio=val_ratio, test_ratio=test_ratio,
            max_samples=max_samples, balance_error_types=balance_error_types, create_version=create_version,
            version_name=version_name, parent_version=parent_version,
        )

    def record_training_performance(
        self, model_version: str, wer: float, cer: float, training_metadata: dict[str, Any]
    ) -> dict[str, str]:
        """Register the model version with its WER/CER; also a performance point when the metadata carries
        `error_rate`, `correction_rate` and `inference_time` (a trend point is never made of guesses)."""
        ids = {
            "model_version": self.metadata_tracker.record_model_version(
                model_version,
                str(training_metadata.get("model_name", "unknown")),
                training_metadata.get("training_data_size"),
                training_metadata,
                {"wer": wer, "cer": cer},
                training_metadata.get("dataset_version_id"),
            )
        }
        point = [training_metadata.get(k) for k in ("error_rate", "correction_rate", "inference_time")]
        if all(v is not None for v in point):
            error_rate, correction_rate, inference_time = (float(v) for v in point)  # type: ignore[arg-type]
            ids["performance"] = self.metadata_tracker.record_performance(
                model_version, wer, cer, error_rate, correction_rate, inference_time
            )
        return ids

    def sync_all_to_gcs(self) -> dict[str, Any]:
        """Write every export to the bucket: the cases (`learning_data/`) and the metrics (`metadata/`)."""
        return {"learning_data": self.data_manager.sync_to_gcs(), "metadata": self.metadata_tracker.export_metadata()}

    def get_system_statistics(self) -> dict[str, Any]:
        """Cases, performance trends, versions and datasets, in one answer."""
        return {
            "data_management": self.data_manager.get_statistics(),
            "performance_trends": {m: self.metadata_tracker.get_performance_trend(m) for m in ("wer", "cer")},
            "version_control": self.version_control.generate_version_report(),
            "available_datasets": len(self.finetuning_pipeline.list_datasets()),
        }

    def generate_comprehensive_report(self, output_path: str | None = None) -> dict[str, Any]:
        """Statistics, the performance report, data quality and recommendations; with `output_path` (an
        object name in the bucket, e.g. "reports/weekly.json") also written there."""
        statistics = self.get_system_statistics()
        report: dict[str, Any] = {
            "generated_at": datetime.now(UTC).isoformat(),
            "system_statistics": statistics,
            "performance_report": self.metadata_tracker.generate_performance_report(),
            "data_quality": assess_quality(statistics["data_management"]),
            "recommendations": recommendations(
                statistics["data_management"], statistics["version_control"]["total_versions"]
            ),
        }
        if output_path:
            data = orjson.dumps(report, default=json_default, option=orjson.OPT_INDENT_2)
            report["saved_to"] = BucketStore(self.settings).put(output_path, data, "application/json")
        return report


def assess_quality(stats: dict[str, Any]) -> dict[str, Any]:
    """The seed's overall data quality verdict from the case statistics."""
    return {
        "total_failed_cases": stats["total_cases"],
        "correction_rate": stats["correction_rate"],
        "quality_status": "good" if stats["correction_rate"] > 0.7 else "needs_improvement",
        "error_type_diversity": len(stats["error_type_distribution"]),
    }


def recommendations(stats: dict[str, Any], total_versions: int) -> list[str]:
    """What to do next, from the case statistics and the number of dataset versions (the seed's rules)."""
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
    return advice
