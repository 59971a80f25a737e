"""The case snapshot's schema and rows: stored split values equal today's split rule, values read as the build reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from shared.domain.case_snapshot import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    SNAPSHOT_SCHEMA,
    cases_to_table,
    sample_key,
    schema_problems,
    snapshot_row,
    split_bucket,
    split_edges,
    split_of_bucket,
)
from shared.domain.dataset_build import _selection_order, assign_split, group_key
from tests.unit.snapshot_cases import SPLIT_RATIOS, random_cases


def random_ratios(rng: random.Random) -> tuple[float, float, float]:
    """Any non-negative triple with a positive sum (assign_split normalises it), zeros included."""
    ratios = [rng.choice([0.0, rng.random(), rng.randrange(1, 10) / 10]) for _ in range(3)]
    if sum(ratios) == 0:
        ratios[rng.randrange(3)] = 1.0
    return (ratios[0], ratios[1], ratios[2])


def test_stored_split_bucket_gives_todays_split_for_random_cases_and_ratios() -> None:
    rng = random.Random(13)
    cases = random_cases(5, 3000)
    all_ratios = [*SPLIT_RATIOS, *(random_ratios(rng) for _ in range(40))]
    for ratios in all_ratios:
        edges = split_edges(ratios)
        for case in cases:
            stored = snapshot_row(case)["split_bucket"]
            assert split_of_bucket(stored, edges) == assign_split(group_key(case), ratios), (case, ratios)


def test_split_bucket_is_the_group_keys_point_whatever_else_the_case_holds() -> None:
    keys = ["spk-1", "", "gs://a/b.wav", "東京", "x" * 1000]
    for key in keys:
        assert 0.0 <= split_bucket(key) < 1.0
        assert split_bucket(key) == split_bucket(key)
    one = snapshot_row({"case_id": "a", "speaker_id": "spk-1", "audio_path": "x.wav", "error_score": 0.1})
    other = snapshot_row({"case_id": "b", "speaker_id": "spk-1", "audio_path": "y.wav", "error_score": 0.9})
    assert one["split_bucket"] == other["split_bucket"] == split_bucket("spk-1")
    no_speaker = snapshot_row({"case_id": "c", "speaker_id": "", "audio_path": "z.wav"})
    assert no_speaker["split_bucket"] == split_bucket("z.wav")


def test_sample_key_orders_cases_as_the_builds_selection_order() -> None:
    case_ids = [f"case-{n}" for n in range(2000)] + ["", "é", "東京", "a\x00b"]
    by_snapshot = sorted(case_ids, key=lambda c: (sample_key(c), c.encode("utf-8")))
    assert by_snapshot == sorted(case_ids, key=_selection_order)
    assert all(-(2**63) <= sample_key(c) < 2**63 for c in case_ids)


def test_snapshot_row_reads_values_as_the_build_does() -> None:
    row = snapshot_row(
        {
            "case_id": "c1",
            "audio_path": "a.wav",
            "original_transcript": "hello",
            "corrected_transcript": 5,  # not a string: no correction, as has_correction says
            "error_types": ("b", 3),
            "error_score": True,  # a bool is not a score
            "speaker_id": 7,
            "duration_s": float("nan"),
            "wer": 1,
            "corrected": "yes",
            "created_at": datetime(2026, 1, 1, 12, 0),  # naive: UTC
            "updated_at": datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))),
        }
    )
    assert row["corrected_transcript"] is None and row["has_correction"] is False
    assert row["error_types"] == ["b", "3"]
    assert row["error_score"] is None
    assert row["speaker_id"] == "7"
    assert row["duration_s"] is None
    assert row["wer"] == 1.0 and type(row["wer"]) is float
    assert row["corrected"] is None
    assert row["created_at"] == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert row["updated_at"] == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert row["language"] is None and row["cer"] is None
    assert snapshot_row({"case_id": "c", "updated_at": "2026-01-02T03:04:05Z"})["updated_at"] == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )


def test_a_case_without_an_id_has_no_snapshot_row() -> None:
    with pytest.raises(ValueError, match="case_id"):
        snapshot_row({"audio_path": "a.wav"})


def test_cases_to_table_has_the_contracts_columns_and_types() -> None:
    table = cases_to_table(random_cases(2, 50))
    assert table.schema.equals(SNAPSHOT_SCHEMA)
    assert table.num_rows == 50
    assert REQUIRED_COLUMNS == (
        "case_id", "audio_path", "original_transcript", "corrected_transcript", "error_types", "error_score",
        "speaker_id", "model_version", "created_at", "updated_at",
    )
    assert {"wer", "cer", "normalized_wer", "normalized_cer", "duration_s", "language", "error_types_source",
            "corrected", "has_correction", "split_bucket", "sample_key"} == set(OPTIONAL_COLUMNS)
    assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("error_types").type == pa.list_(pa.string())
    assert cases_to_table([]).num_rows == 0


def test_schema_problems_accepts_older_and_castable_parts() -> None:
    assert schema_problems(SNAPSHOT_SCHEMA) == []
    required_only = pa.schema([SNAPSHOT_SCHEMA.field(name) for name in REQUIRED_COLUMNS])
    assert schema_problems(required_only) == []
    castable = pa.schema(
        [
            pa.field("case_id", pa.large_string()),
            pa.field("audio_path", pa.string()),
            pa.field("original_transcript", pa.string()),
            pa.field("corrected_transcript", pa.null()),
            pa.field("error_types", pa.large_list(pa.large_string())),
            pa.field("error_score", pa.float32()),
            pa.field("speaker_id", pa.string()),
            pa.field("model_version", pa.string()),
            pa.field("created_at", pa.timestamp("ns")),
            pa.field("updated_at", pa.timestamp("ms", tz="Europe/Paris")),
            pa.field("wer", pa.int32()),
            pa.field("someone_elses_column", pa.binary()),
        ]
    )
    assert schema_problems(castable) == []


def test_schema_problems_names_missing_and_incompatible_columns() -> None:
    fields = [SNAPSHOT_SCHEMA.field(name) for name in REQUIRED_COLUMNS if name != "updated_at"]
    fields = [pa.field("error_score", pa.string()) if f.name == "error_score" else f for f in fields]
    fields += [pa.field("split_bucket", pa.string()), pa.field("sample_key", pa.float64())]
    problems = schema_problems(pa.schema(fields))
    assert "missing required column 'updated_at'" in problems
    assert "column 'error_score' is string, expected double" in problems
    assert "column 'split_bucket' is string, expected double" in problems
    assert "column 'sample_key' is double, expected int64" in problems
    listless = pa.schema([pa.field("error_types", pa.string()) if f.name == "error_types" else f
                          for f in SNAPSHOT_SCHEMA])
    assert schema_problems(listless) == ["column 'error_types' is string, expected list<item: string>"]
