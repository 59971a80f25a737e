"""DataManager: the seed's Python API over failure cases, on the same use cases as the functions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pandas as pd

from shared.bootstrap import case_store
from shared.config import Settings
from shared.domain.failure_event import Correction, parse_failure_event
from shared.domain.statistics import summarize
from shared.errors import NotFound
from shared.ports import CaseStore
from shared.services.case_exports import export_cases
from shared.services.ingestion import correct_case, store_event

# Column -> pandas dtype of export_to_dataframe(); list-valued and free-form columns stay objects.
DATAFRAME_DTYPES: dict[str, str] = {
    "case_id": "string",
    "audio_path": "string",
    "original_transcript": "string",
    "corrected_transcript": "string",
    "error_types": "object",
    "error_types_source": "string",
    "error_score": "Float64",
    "model_version": "string",
    "inference_time": "Float64",
    "model_confidence": "Float64",
    "speaker_id": "string",
    "duration_s": "Float64",
    "language": "string",
    "corrected": "boolean",
    "wer": "Float64",
    "cer": "Float64",
    "normalized_wer": "Float64",
    "normalized_cer": "Float64",
    "correction_count": "Int64",
    "occurred_at": "datetime64[us, UTC]",
    "created_at": "datetime64[us, UTC]",
    "updated_at": "datetime64[us, UTC]",
}


class DataManager:
    """Failed cases, corrections and statistics in Firestore (emulator or GCP, by the usual variables)."""

    def __init__(self, settings: Settings | None = None, store: CaseStore | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._store = store

    @property
    def store(self) -> Any:
        # Created on first use, so constructing a DataManager opens no connection.
        if self._store is None:
            self._store = case_store(self.settings)
        return self._store

    def store_failed_case(
        self,
        audio_path: str,
        original_transcript: str,
        corrected_transcript: str | None = None,
        error_types: list[str] | None = None,
        error_score: float | None = None,
        metadata: dict[str, Any] | None = None,
        **fields: Any,
    ) -> str:
        """Validate and store a failure case; returns its case id (the same id again for the same event).

        Raises shared.domain.failure_event.InvalidEvent (a ValueError) naming what is wrong.
        """
        event: dict[str, Any] = {"audio_path": audio_path, "original_transcript": original_transcript, **fields}
        optional = {"corrected_transcript": corrected_transcript, "error_types": error_types,
                    "error_score": error_score, "metadata": metadata}
        event.update({k: v for k, v in optional.items() if v is not None})
        parsed = parse_failure_event(orjson.dumps(event, default=_iso))
        return str(store_event(parsed, None, self.store).case_id)

    def store_correction(
        self,
        case_id: str,
        corrected_transcript: str,
        corrected_by: str | None = None,
        error_types: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a correction to a case (history kept, scores and error types recomputed); returns the case.

        Raises NotFound (a KeyError) for an unknown case id and InvalidEvent (a ValueError) for an invalid correction.
        """
        correction = Correction.model_validate(
            {"case_id": case_id, "corrected_transcript": corrected_transcript, "corrected_by": corrected_by,
             "error_types": error_types}
        )
        case = self.get_failed_case(case_id) if correct_case(correction, None, self.store) else None
        if case is None:
            raise NotFound(f"no case with case_id {case_id!r}")
        return case

    def get_failed_case(self, case_id: str) -> dict[str, Any] | None:
        """The stored case (every field as given plus case_id, created_at, corrections, scores), or None."""
        return self.store.get_case(case_id)

    def get_failed_cases_by_error_type(self, error_type: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Cases whose error types include `error_type`, newest first."""
        return self.store.cases_with_error_type(error_type, limit)

    def get_corrected_cases(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Cases that have a corrected transcript, newest first."""
        return self.store.corrected_cases(limit)

    def get_statistics(self) -> dict[str, Any]:
        """Totals, correction rate, error-type distribution, average error score, per model version, quarantined."""
        return summarize(self.store.counter_shards())

    def sync_to_gcs(self) -> dict[str, Any]:
        """Export every case and correction to `learning_data/` in the bucket; a summary of the objects."""
        from shared.adapters.gcs import BucketStore

        return export_cases(self.store, BucketStore(self.settings), datetime.now(UTC))

    def export_to_dataframe(self) -> pd.DataFrame:
        """Every case as one typed row (see DATAFRAME_DTYPES); `metadata` and extra fields stay as objects."""
        rows = []
        for case in self.store.stream_cases():
            row = dict(case)
            row["correction_count"] = len(row.pop("corrections", []) or [])
            rows.append(row)
        frame = pd.DataFrame(rows)
        for column, dtype in DATAFRAME_DTYPES.items():
            if column not in frame:
                frame[column] = pd.Series([None] * len(frame), dtype="object")
            if dtype.startswith("datetime"):
                frame[column] = pd.to_datetime(frame[column], utc=True).astype(dtype)
            elif dtype != "object":
                frame[column] = frame[column].astype(dtype)
        first = [c for c in DATAFRAME_DTYPES if c in frame]
        return frame[first + sorted(c for c in frame.columns if c not in DATAFRAME_DTYPES)]


def _iso(value: Any) -> Any:
    """orjson fallback for values it does not know (e.g. pandas timestamps)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
