"""The stored cases as one typed pandas table: a row per case, a fixed dtype per known column."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

# Column -> pandas dtype; list-valued and free-form columns stay objects.
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


def case_frame(cases: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One typed row per case (see DATAFRAME_DTYPES), the known columns first; `metadata` and extra fields stay
    as objects, and the correction history becomes its count."""
    rows = []
    for case in cases:
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
