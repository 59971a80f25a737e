"""IntegratedDataManagementSystem: one entry point over cases, metrics, datasets and versions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.data_manager import DataManager
from shared.domain import bucket_layout as layout
from shared.domain.dead_letters import DEFAULT_MAX_REPLAYS
from shared.domain.monitoring import DEFAULT_LIMIT
from shared.errors import BadInput
from shared.facade_setup import LocalPath, bucket_object, deployment, is_bucket_uri, legacy_settings, local_dir
from shared.finetuning_pipeline import FinetuningDatasetPipeline
from shared.json_encoding import dumps_json
from shared.metadata_tracker import MetadataTracker
from shared.services import full_restore, system_report
from shared.services.dead_letter_backlog import DEFAULT_LISTED, list_dead_letters
from shared.services.dead_letter_replay import replay_dead_letters
from shared.services.local_copies import write_local_file
from shared.topology import build_topology
from shared.version_control import DataVersionControl

DEFAULT_BASE_DIR = "data"


class IntegratedDataManagementSystem:
    """DataManager, MetadataTracker, FinetuningDatasetPipeline and DataVersionControl on one deployment.

    The seed's constructor: `IntegratedDataManagementSystem(base_dir="data/production", use_gcs=True,
    gcs_bucket_name="stt-project-datasets")`. The four parts share one deployment (the bucket, Firestore and
    their clients); `base_dir` is the local directory their local copies go under: `<base_dir>/failed_cases`,
    `<base_dir>/metadata`, `<base_dir>/finetuning` (the pipeline's output_dir) and `<base_dir>/versions`.
    The parameters mean what shared/facade_setup.py says; `use_gcs=False` is refused. The pipeline and the
    version control share one `quality_thresholds` (assigning either's is assigning both); `local_copies=False`
    (the `api`) writes nothing locally.
    """

    def __init__(
        self,
        base_dir: LocalPath | Settings | None = None,
        use_gcs: bool = True,
        gcs_bucket_name: str | None = None,
        *,
        settings: Settings | None = None,
        adapters: bootstrap.Adapters | None = None,
        local_copies: bool = True,
    ) -> None:
        base, settings = legacy_settings(base_dir, settings)
        self.adapters = deployment("IntegratedDataManagementSystem", use_gcs=use_gcs,
                                   gcs_bucket_name=gcs_bucket_name, settings=settings, adapters=adapters)
        self.settings = self.adapters.settings
        self.use_gcs = True
        self.gcs_bucket_name = self.settings.bucket
        self.base_dir = local_dir(base, DEFAULT_BASE_DIR)
        self.data_manager = DataManager(self.base_dir / "failed_cases", adapters=self.adapters)
        self.metadata_tracker = MetadataTracker(self.base_dir / "metadata", data_manager=self.data_manager)
        self.local_copies = bool(local_copies)
        self.finetuning_pipeline = FinetuningDatasetPipeline(self.data_manager, self.base_dir / "finetuning",
                                                             local_copies=local_copies)
        self.version_control = DataVersionControl(self.base_dir / "versions", data_manager=self.data_manager,
                                                  local_copies=local_copies)
        self.finetuning_pipeline.share_thresholds_of(self.version_control)

    def record_failed_transcription(
        self, audio_path: str, original_transcript: str, corrected_transcript: str | None = None,
        error_types: list[str] | None = None, error_score: float | None = None, inference_time: float | None = None,
        model_confidence: float | None = None, additional_metadata: dict[str, Any] | None = None, **fields: Any
    ) -> str:
        """Store a failed transcription as a case (idempotent: the same event gives the same id); its id."""
        optional = {"inference_time": inference_time, "model_confidence": model_confidence}
        return self.data_manager.store_failed_case(
            audio_path, original_transcript, corrected_transcript, error_types, error_score, additional_metadata,
            **{k: v for k, v in optional.items() if v is not None}, **fields,
        )

    def add_correction(self, case_id: str, corrected_transcript: str, correction_method: str = "manual") -> bool:
        """Correct a case (its history keeps who/what/when); NotFound (a KeyError) for an unknown case."""
        self.data_manager.store_correction(case_id, corrected_transcript, corrected_by=correction_method)
        return True

    def prepare_finetuning_dataset(
        self, min_error_score: float = 0.5, train_ratio: float = 0.8, val_ratio: float = 0.1, test_ratio: float = 0.1,
        max_samples: int | None = None, balance_error_types: bool = True, create_version: bool = True,
        version_name: str | None = None, parent_version: str | None = None,
        quality_thresholds: Mapping[str, float] | None = None, allow_failed_quality: bool = False,
        include_uncorrected: bool = False, min_duration_s: float | None = None, max_duration_s: float | None = None,
        augment: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Build a dataset of corrected cases and, by default, version it when its quality passes; its info with
        `version_id` (absent when the quality gate refused it: `quality_gate` says why) and `local_path`.
        Every parameter of the pipeline's prepare_dataset (a build request's fields) is taken; only
        `create_version` defaults to True, as the seed's example expects."""
        return self.finetuning_pipeline.prepare_dataset(
            min_error_score=min_error_score, train_ratio=train_ratio, val_ratio=val_ratio, test_ratio=test_ratio,
            max_samples=max_samples, balance_error_types=balance_error_types, create_version=create_version,
            version_name=version_name, parent_version=parent_version, quality_thresholds=quality_thresholds,
            allow_failed_quality=allow_failed_quality, include_uncorrected=include_uncorrected,
            min_duration_s=min_duration_s, max_duration_s=max_duration_s, augment=augment,
        )

    def record_training_performance(
        self, model_version: str, wer: float, cer: float, training_metadata: dict[str, Any] | None = None
    ) -> dict[str, str]:
        """A training run's WER/CER: a performance point of `model_version` (so `get_performance_trend` shows it;
        `error_rate`, `correction_rate`, `inference_time` only when the metadata carries them) and its
        registration (name, size and dataset version kept from the latest one); both record ids."""
        return system_report.record_training_performance(
            self.adapters.metrics, model_version, wer, cer, training_metadata, utc_now()
        )

    def get_learning_progress(
        self, model_version: str | None = None, stage: str | None = None, since: datetime | str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """The learning progress recorded, as MetadataTracker.get_learning_progress reads it."""
        return self.metadata_tracker.get_learning_progress(model_version, stage, since, limit)

    def get_inference_stats(
        self, model_version: str | None = None, since: datetime | str | None = None, limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """The inference stats recorded, as MetadataTracker.get_inference_stats reads them."""
        return self.metadata_tracker.get_inference_stats(model_version, since, limit)

    def sync_all_to_gcs(self) -> dict[str, Any]:
        """Write every export to the bucket: the cases (`learning_data/`) and the metrics (`metadata/`)."""
        return {"learning_data": self.data_manager.sync_to_gcs(), "metadata": self.metadata_tracker.export_metadata()}

    def sync_all_from_gcs(self) -> dict[str, Any]:
        """Rebuild the stored cases (corrections and statistics counters included) and the metric records
        (performance history, model versions' latest registrations, learning progress, inference stats) from
        what `sync_all_to_gcs` wrote, adding only what Firestore lacks; per part what was restored or absent
        (shared/services/full_restore.py). Whatever part was exported is restored; NotFound only when nothing
        at all was exported."""
        a = self.adapters
        return full_restore.restore_all(a.cases, a.metrics, a.bucket)

    def replay_dead_letters(
        self, topic: str | None = None, max_messages: int = 1000, max_replays: int = DEFAULT_MAX_REPLAYS
    ) -> dict[str, Any]:
        """Republish the dead letters (of every topic, or of `topic`) to their topic, once their cause is fixed;
        one replayed `max_replays` times already is quarantined with the reason instead. What was done, per topic."""
        a = self.adapters
        return replay_dead_letters(a.dead_letters, a.cases, build_topology(self.settings), topic,
                                   max_messages, max_replays)

    def list_dead_letters(self, topic: str | None = None, max_messages: int = DEFAULT_LISTED) -> dict[str, Any]:
        """The dead letters waiting (of every topic, or of `topic`), at most `max_messages` (1..1000) per topic,
        each described (id, payload preview, deliveries, replays), left where they are for `replay_dead_letters`."""
        return list_dead_letters(self.adapters.dead_letters, build_topology(self.settings), topic, max_messages)

    def get_system_statistics(self) -> dict[str, Any]:
        """Cases, performance trends, versions and datasets, in one answer."""
        a = self.adapters
        return system_report.system_statistics(a.cases, a.metrics, a.bucket, utc_now())

    def generate_comprehensive_report(self, output_path: str | None = None) -> dict[str, Any]:
        """Statistics, the performance report, data quality and recommendations; with `output_path` also saved.

        A local path (the seed's "reports/system_report.json") is written as a local file, and a copy goes to
        the bucket under `reports/`: the same relative name when the path is `reports/...`, else
        `reports/<file name>` (`saved_to` is the local path, `saved_to_bucket` the copy's URI). A
        `gs://<bucket>/reports/...` URI is written to the bucket only. With `local_copies=False` (the `api`), any
        other `output_path` is an object under `reports/` ("weekly.json" means "reports/weekly.json")."""
        a = self.adapters
        report = system_report.comprehensive_report(a.cases, a.metrics, a.bucket, utc_now())
        if not output_path:
            return report
        if is_bucket_uri(output_path):  # the bucket, from Python and the api alike
            name = bucket_object(output_path, self.settings.bucket)
            if not name.startswith(layout.REPORTS):
                raise BadInput(f"output_path {output_path!r} is not allowed: a gs:// report goes under "
                               f"gs://{self.settings.bucket}/{layout.REPORTS}")
            report["saved_to"] = system_report.save_report(a.bucket, name, report)
        elif not self.local_copies:
            report["saved_to"] = system_report.save_report(a.bucket, output_path, report)
        else:
            path = local_dir(output_path, "")
            copy_name = path.as_posix() if not path.is_absolute() and path.parts[:1] == ("reports",) else path.name
            report["saved_to_bucket"] = system_report.save_report(a.bucket, copy_name, report)
            report["saved_to"] = str(write_local_file(path, dumps_json(report, indent=True)))
        return report
