"""DataManager: failed cases, corrections and statistics, from Python (the same use cases as the functions)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.domain.case_table import case_frame
from shared.domain.statistics import summarize
from shared.facade_setup import LocalPath, deployment, legacy_settings, local_dir
from shared.ports import CaseStore
from shared.services.case_exports import export_cases
from shared.services.case_restore import restore_cases
from shared.services.case_snapshot import sync_snapshot
from shared.services.ingestion import DEFAULT_LIST, correct_by_id, list_limit, store_failure_fields

DEFAULT_LOCAL_DIR = "data/failed_cases"


class DataManager:
    """Failed cases, corrections and statistics in Firestore (emulator or GCP, by the usual variables).

    The seed's constructor: `DataManager(local_storage_dir="data/failed_cases", use_gcs=True,
    gcs_bucket_name="stt-project-datasets")`; every parameter may be left out (the deployment then comes from
    the environment). What each one means is in shared/facade_setup.py: the bucket is the source of truth,
    `gcs_bucket_name` picks it, `local_storage_dir` is where local copies go, `use_gcs=False` is refused.
    """

    def __init__(
        self,
        local_storage_dir: LocalPath | Settings | None = None,
        use_gcs: bool = True,
        gcs_bucket_name: str | None = None,
        *,
        settings: Settings | None = None,
        adapters: bootstrap.Adapters | None = None,
    ) -> None:
        local, settings = legacy_settings(local_storage_dir, settings)
        self.adapters = deployment("DataManager", use_gcs=use_gcs, gcs_bucket_name=gcs_bucket_name,
                                   settings=settings, adapters=adapters)
        self.settings = self.adapters.settings
        self.use_gcs = True
        self.gcs_bucket_name = self.settings.bucket
        # Where local copies of cases go (the seed's directory); nothing is read from it or created yet.
        self.local_storage_dir = local_dir(local, DEFAULT_LOCAL_DIR)

    @property
    def store(self) -> CaseStore:
        return self.adapters.cases

    def store_failed_case(
        self, audio_path: str, original_transcript: str, corrected_transcript: str | None = None,
        error_types: list[str] | None = None, error_score: float | None = None,
        metadata: dict[str, Any] | None = None, **fields: Any
    ) -> str:
        """Validate and store a failure case; returns its case id (the same id again for the same event).

        Raises InvalidEvent (a ValueError) naming what is wrong.
        """
        optional = {"corrected_transcript": corrected_transcript, "error_types": error_types,
                    "error_score": error_score, "metadata": metadata}
        event = {"audio_path": audio_path, "original_transcript": original_transcript, **fields,
                 **{k: v for k, v in optional.items() if v is not None}}
        return store_failure_fields(event, self.store, self.adapters.settings.resolved_audio_root())

    def store_correction(
        self, case_id: str, corrected_transcript: str, corrected_by: str | None = None,
        error_types: list[str] | None = None
    ) -> dict[str, Any]:
        """Add a correction to a case (history kept, scores and error types recomputed); returns the case.

        Raises NotFound (a KeyError) for an unknown case id and InvalidEvent (a ValueError) for a bad correction.
        """
        return correct_by_id(case_id, corrected_transcript, corrected_by, error_types, self.store)

    def get_failed_case(self, case_id: str) -> dict[str, Any] | None:
        """The stored case (every field as given plus case_id, created_at, corrections, scores), or None."""
        return self.store.get_case(case_id)

    def get_failed_cases_by_error_type(self, error_type: str, limit: int = DEFAULT_LIST) -> list[dict[str, Any]]:
        """Cases whose error types include `error_type`, newest first, at most `limit` (1..MAX_LIST; all of
        them: export_to_dataframe or the case snapshot)."""
        return self.store.cases_with_error_type(error_type, list_limit(limit))

    def get_corrected_cases(self, limit: int = DEFAULT_LIST) -> list[dict[str, Any]]:
        """Cases that have a corrected transcript, newest first, at most `limit` (1..MAX_LIST)."""
        return self.store.corrected_cases(list_limit(limit))

    def get_statistics(self) -> dict[str, Any]:
        """Totals, correction rate, error-type distribution, average error score, per model version, quarantined."""
        return summarize(self.store.counter_shards())

    def sync_to_gcs(self) -> dict[str, Any]:
        """Bring the case snapshot up to date, then append the cases changed since the last export to
        `learning_data/` (shared/services/case_exports.py: the first export writes every case); a summary."""
        now = utc_now()
        sync_snapshot(self.store, self.adapters.bucket, now)
        return export_cases(self.store, self.adapters.bucket, now)

    def sync_from_gcs(self) -> dict[str, Any]:
        """Store every case of the `learning_data/` export that Firestore lacks, corrections and counters
        included (shared/services/case_restore.py); what was restored."""
        return restore_cases(self.store, self.adapters.bucket)

    def export_to_dataframe(self) -> pd.DataFrame:
        """Every case as one typed row (shared/domain/case_table.py); `metadata` and extra fields stay objects."""
        return case_frame(self.store.stream_cases())
