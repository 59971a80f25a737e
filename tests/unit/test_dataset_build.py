"""Dataset builds: eligibility, the balancing rule, stable splits by group, rows and metadata."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.dataset_build import (
    ROW_FEATURES,
    SPLITS,
    assign_split,
    balance_quota,
    build_splits,
    dataset_metadata,
    eligible,
    group_key,
    rarest_types,
    select_cases,
    to_row,
)
from shared.domain.dataset_request import BuildRequest

RATIOS = (0.8, 0.1, 0.1)
CREATED = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def case(n: int | str, **fields: Any) -> dict[str, Any]:
    """A stored, corrected case numbered ``n``, with some fields replaced or added."""
    base: dict[str, Any] = {
        "case_id": f"case-{n}",
        "audio_path": f"gs://stt-audio/utt-{n}.wav",
        "original_transcript": f"original {n}",
        "corrected_transcript": f"corrected {n}",
        "corrected": True,
        "error_types": ["substitution"],
        "error_score": 0.9,
        "model_version": "whisper_base_v1",
        "speaker_id": None,
        "language": "en",
        "duration_s": 2.5,
        "wer": 0.25,
        "cer": 0.1,
        "created_at": CREATED,
    }
    base.update(fields)
    return base


def reference_split(key: str, ratios: tuple[float, float, float]) -> str:
    """The split rule as the brief states it, written independently of the code under test."""
    u = int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "big") / 2**64
    if u < ratios[0]:
        return "train"
    if u < ratios[0] + ratios[1]:
        return "val"
    return "test"


def split_of_each(splits: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """case_id -> split name."""
    return {row["case_id"]: name for name, rows in splits.items() for row in rows}


# --- group keys and splits -------------------------------------------------------------------------------------


def test_group_key_is_the_speaker_else_the_recording() -> None:
    assert group_key(case(1, speaker_id="spk-7")) == "spk-7"
    assert group_key(case(1, speaker_id="")) == "gs://stt-audio/utt-1.wav"
    assert group_key(case(1, speaker_id=None)) == "gs://stt-audio/utt-1.wav"
    absent = case(1)
    del absent["speaker_id"]
    assert group_key(absent) == "gs://stt-audio/utt-1.wav"


def test_assign_split_follows_the_stated_rule_and_is_stable() -> None:
    keys = [f"spk-{i}" for i in range(2000)]
    first = [assign_split(key, RATIOS) for key in keys]
    assert first == [assign_split(key, RATIOS) for key in keys]
    assert first == [reference_split(key, RATIOS) for key in keys]
    assert [assign_split(key, (0.6, 0.2, 0.2)) for key in keys] == [reference_split(k, (0.6, 0.2, 0.2)) for k in keys]


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.5, 0.5, 0.0), (0.34, 0.33, 0.33)])
def test_split_fractions_match_the_ratios(ratios: tuple[float, float, float]) -> None:
    counts = Counter(assign_split(f"gs://stt-audio/{i}.wav", ratios) for i in range(20_000))
    for name, ratio in zip(SPLITS, ratios, strict=True):
        assert abs(counts[name] / 20_000 - ratio) <= 0.02, (name, counts)


def test_a_split_without_a_share_gets_nothing() -> None:
    keys = [f"k{i}" for i in range(5000)]
    assert {assign_split(k, (1.0, 0.0, 0.0)) for k in keys} == {"train"}
    assert "test" not in {assign_split(k, (0.5, 0.5, 0.0)) for k in keys}
    assert "val" not in {assign_split(k, (0.9, 0.0, 0.1)) for k in keys}


def test_assign_split_rejects_impossible_ratios() -> None:
    with pytest.raises(ValueError, match="ratios"):
        assign_split("k", (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="ratios"):
        assign_split("k", (1.2, -0.2, 0.0))


# --- eligibility ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "request_fields", "expected"),
    [
        ({"error_score": 0.5}, {}, True),
        ({"error_score": 0.49}, {}, False),
        ({"error_score": 1}, {}, True),
        ({"error_score": None}, {}, False),
        ({"error_score": None}, {"min_error_score": 0}, True),
        ({"error_score": 0.0}, {"min_error_score": 0}, True),
        ({"corrected_transcript": None, "corrected": False}, {}, False),
        ({"corrected_transcript": "   "}, {}, False),
        ({"corrected_transcript": None, "corrected": False}, {"include_uncorrected": True}, True),
        ({"corrected_transcript": None, "error_score": 0.1}, {"include_uncorrected": True}, False),
    ],
)
def test_eligibility(fields: dict[str, Any], request_fields: dict[str, Any], expected: bool) -> None:
    assert eligible(case(1, **fields), BuildRequest(**request_fields)) is expected


def test_case_without_a_correction_field_is_uncorrected() -> None:
    bare = case(1)
    del bare["corrected_transcript"]
    assert not eligible(bare, BuildRequest())
    assert eligible(bare, BuildRequest(include_uncorrected=True))


# --- selection and balancing ---------------------------------------------------------------------------------


def typed_cases(sizes: dict[str, int]) -> list[dict[str, Any]]:
    """``sizes[type]`` cases whose primary error type is ``type`` ("unknown": no types)."""
    cases: list[dict[str, Any]] = []
    for kind, size in sizes.items():
        types = [] if kind == "unknown" else [kind, "zz_secondary"]
        cases.extend(case(f"{kind}-{i}", error_types=types) for i in range(size))
    return cases


def primary_counts(selected: list[dict[str, Any]]) -> Counter[str]:
    """How many selected cases of each primary type."""
    return Counter(c["error_types"][0] if c["error_types"] else "unknown" for c in selected)


def test_balancing_without_max_samples_cuts_only_types_far_above_the_median() -> None:
    cases = typed_cases({"casing": 5, "deletion": 3, "substitution": 10})
    # median 5: quota 10, nothing cut
    assert primary_counts(select_cases(cases, BuildRequest())) == {"casing": 5, "deletion": 3, "substitution": 10}
    cases = typed_cases({"casing": 4, "deletion": 3, "numerals": 2, "substitution": 40})
    # median 3.5: quota 7, only the dominant type cut
    assert primary_counts(select_cases(cases, BuildRequest())) == {
        "casing": 4, "deletion": 3, "numerals": 2, "substitution": 7}


def test_a_rare_type_never_shrinks_the_dataset_to_its_size() -> None:
    """Issue #14: 1,000 substitution and 2 empty_output used to give 4 rows."""
    cases = typed_cases({"substitution": 1000, "empty_output": 2})
    assert len(select_cases(cases, BuildRequest())) == 1002
    assert primary_counts(select_cases(cases, BuildRequest(max_samples=500))) == {
        "substitution": 498, "empty_output": 2}


def test_balancing_counts_cases_without_types_as_unknown() -> None:
    cases = typed_cases({"casing": 5, "unknown": 2})
    assert primary_counts(select_cases(cases, BuildRequest(max_samples=4))) == {"casing": 2, "unknown": 2}


def test_balancing_water_fills_max_samples() -> None:
    cases = typed_cases({"casing": 50, "deletion": 4, "substitution": 100})
    # deletion keeps its 4; the other two share the rest: 8 each
    assert primary_counts(select_cases(cases, BuildRequest(max_samples=20))) == {
        "casing": 8, "deletion": 4, "substitution": 8}
    # 21: one more fits, the next case in selection order of a type at the quota
    assert sum(primary_counts(select_cases(cases, BuildRequest(max_samples=21))).values()) == 21
    assert primary_counts(select_cases(cases, BuildRequest(max_samples=1000))) == {
        "casing": 50, "deletion": 4, "substitution": 100}


def test_balancing_with_fewer_samples_than_types_takes_max_samples_cases() -> None:
    cases = typed_cases({"casing": 5, "deletion": 5, "substitution": 5})
    assert len(select_cases(cases, BuildRequest(max_samples=2))) == 2


def test_a_multi_label_case_counts_for_its_rarest_type() -> None:
    cases = typed_cases({"substitution": 30})
    cases += [case(f"both-{i}", error_types=["numerals", "substitution"]) for i in range(3)]
    cases += [case(f"sub-num-{i}", error_types=["substitution", "zz_rare"]) for i in range(2)]
    assert rarest_types(cases)[-5:] == ["numerals"] * 3 + ["zz_rare"] * 2
    selected = select_cases(cases, BuildRequest(max_samples=9))
    rare = {c["case_id"] for c in cases[-5:]}
    assert rare <= {c["case_id"] for c in selected}  # the rare ones all kept
    assert len(selected) == 9


@pytest.mark.parametrize(("sizes", "max_samples", "expected"), [
    ([], 10, (0, 0)), ([5], None, (10, 0)), ([2, 1000], 1000, (998, 0)), ([2, 1000, 1000], 1001, (499, 1)),
    ([3, 3, 3], 100, (3, 0)), ([5, 5, 5], 2, (0, 2)), ([1, 2, 3, 4], None, (5, 0)),
])
def test_balance_quota(sizes: list[int], max_samples: int | None, expected: tuple[int, int]) -> None:
    assert balance_quota(sizes, max_samples) == expected
    quota, extra = expected
    if max_samples is not None and sizes:
        assert sum(min(size, quota) for size in sizes) + extra == min(max_samples, sum(sizes))


def test_balancing_looks_only_at_eligible_cases() -> None:
    cases = typed_cases({"casing": 5, "deletion": 5})
    cases += [case(f"low-{i}", error_types=["numerals"], error_score=0.1) for i in range(3)]
    assert primary_counts(select_cases(cases, BuildRequest())) == {"casing": 5, "deletion": 5}


def test_without_balancing_max_samples_caps_the_total() -> None:
    cases = typed_cases({"casing": 50, "deletion": 3})
    assert len(select_cases(cases, BuildRequest(balance_error_types=False))) == 53
    selected = select_cases(cases, BuildRequest(balance_error_types=False, max_samples=10))
    assert len(selected) == 10


def test_selection_does_not_depend_on_input_order() -> None:
    cases = [case(i, error_types=[random.Random(i).choice(["casing", "deletion"])]) for i in range(300)]
    shuffled = cases[:]
    random.Random(7).shuffle(shuffled)
    for request in (BuildRequest(max_samples=40), BuildRequest(max_samples=40, balance_error_types=False)):
        assert select_cases(cases, request) == select_cases(shuffled, request)


def test_max_samples_is_not_the_oldest_nor_biased_to_a_split() -> None:
    # case_id == audio_path and no speaker: selection and split must still be independent.
    cases = [case(i, case_id=f"gs://stt-audio/utt-{i}.wav") for i in range(10_000)]
    request = BuildRequest(max_samples=2000, balance_error_types=False)
    selected = select_cases(cases, request)
    positions = [int(c["case_id"].removeprefix("gs://stt-audio/utt-").removesuffix(".wav")) for c in selected]
    assert 4500 < sum(positions) / len(positions) < 5500
    sizes = {name: len(rows) for name, rows in build_splits(cases, request).items()}
    for name, ratio in zip(SPLITS, RATIOS, strict=True):
        assert abs(sizes[name] / 2000 - ratio) <= 0.03, sizes


def test_a_new_case_keeps_the_earlier_selection_and_splits() -> None:
    cases = [case(i, speaker_id=f"spk-{i % 37}" if i % 3 else None) for i in range(500)]
    request = BuildRequest(max_samples=100, balance_error_types=False)
    before = split_of_each(build_splits(cases, request))
    for extra in range(20):
        after = split_of_each(build_splits([*cases, case(f"new-{extra}", speaker_id="spk-5")], request))
        assert len(set(before) - set(after)) <= 1  # the new case displaces at most one
        assert all(after[cid] == split for cid, split in before.items() if cid in after)


def test_a_case_keeps_its_split_whatever_else_the_request_selects() -> None:
    cases = [case(i, error_score=i / 400, speaker_id=f"spk-{i % 50}") for i in range(400)]
    loose = split_of_each(build_splits(cases, BuildRequest(min_error_score=0.1, balance_error_types=False)))
    strict = split_of_each(build_splits(cases, BuildRequest(min_error_score=0.8, max_samples=30)))
    assert strict
    assert all(loose[cid] == split for cid, split in strict.items())


# --- splits: groups, order, byte stability -------------------------------------------------------------------

case_strategy = st.builds(
    lambda n, speaker, audio, score, types: case(
        n, speaker_id=speaker, audio_path=f"gs://stt-audio/{audio}.wav", error_score=score, error_types=types
    ),
    n=st.integers(0, 10**6),
    speaker=st.one_of(st.none(), st.just(""), st.sampled_from([f"spk-{i}" for i in range(8)])),
    audio=st.integers(0, 30),
    score=st.one_of(st.none(), st.floats(0, 1)),
    types=st.lists(st.sampled_from(["casing", "deletion", "numerals"]), max_size=2, unique=True).map(sorted),
)


@settings(max_examples=200, deadline=None)
@given(
    cases=st.lists(case_strategy, max_size=60, unique_by=lambda c: c["case_id"]),
    ratios=st.sampled_from([(0.8, 0.1, 0.1), (0.34, 0.33, 0.33), (0.5, 0.0, 0.5)]),
    balance=st.booleans(),
    max_samples=st.one_of(st.none(), st.integers(1, 40)),
)
def test_no_group_sits_in_two_splits(
    cases: list[dict[str, Any]], ratios: tuple[float, float, float], balance: bool, max_samples: int | None
) -> None:
    request = BuildRequest(
        min_error_score=0,
        train_ratio=ratios[0],
        val_ratio=ratios[1],
        test_ratio=ratios[2],
        balance_error_types=balance,
        max_samples=max_samples,
    )
    splits = build_splits(cases, request)
    assert set(splits) == set(SPLITS)
    by_id = {c["case_id"]: c for c in cases}
    groups: dict[str, set[str]] = {}
    for name, rows in splits.items():
        assert [r["case_id"] for r in rows] == sorted(r["case_id"] for r in rows)
        for row in rows:
            assert row["split"] == name
            groups.setdefault(group_key(by_id[row["case_id"]]), set()).add(name)
    assert all(len(names) == 1 for names in groups.values())
    assert sorted(split_of_each(splits)) == sorted(c["case_id"] for c in select_cases(cases, request))


def test_output_is_byte_stable_whatever_the_input_order() -> None:
    cases = [case(i, speaker_id=f"spk-{i % 11}", error_types=[["casing", "deletion"][i % 2]]) for i in range(200)]
    shuffled = cases[:]
    random.Random(3).shuffle(shuffled)
    request = BuildRequest(max_samples=120)
    first = json.dumps(build_splits(cases, request), sort_keys=False)
    assert first == json.dumps(build_splits(shuffled, request), sort_keys=False)


# --- rows ----------------------------------------------------------------------------------------------------

STRING_COLUMNS = [name for name, kind in ROW_FEATURES.items() if kind == "string"]
FLOAT_COLUMNS = [name for name, kind in ROW_FEATURES.items() if kind == "float64"]


def test_row_has_exactly_the_documented_columns() -> None:
    row = to_row(case(1, speaker_id="spk-1", error_types=["casing", "numerals"]), "val")
    assert list(row) == list(ROW_FEATURES)
    assert row == {
        "audio": "gs://stt-audio/utt-1.wav",
        "text": "corrected 1",
        "case_id": "case-1",
        "original_transcript": "original 1",
        "error_types": ["casing", "numerals"],
        "error_score": 0.9,
        "has_correction": True,
        "speaker_id": "spk-1",
        "language": "en",
        "model_version": "whisper_base_v1",
        "duration_s": 2.5,
        "wer": 0.25,
        "cer": 0.1,
        "split": "val",
    }


def test_uncorrected_row_learns_the_original_and_keeps_one_type_per_column() -> None:
    bare = {"case_id": "c", "audio_path": "gs://b/a.wav", "original_transcript": "hello", "corrected": False}
    row = to_row(bare, "train")
    assert row["text"] == "hello"
    assert row["has_correction"] is False
    assert row["error_types"] == []
    for name in STRING_COLUMNS:
        assert isinstance(row[name], str), name
    for name in FLOAT_COLUMNS:
        assert row[name] is None, name


def test_numbers_are_floats_in_every_row() -> None:
    row = to_row(case(1, error_score=1, duration_s=3, wer=0, cer=0), "test")
    for name in FLOAT_COLUMNS:
        assert type(row[name]) is float, name
    assert to_row(case(1, error_score=True, wer=float("nan")), "test")["error_score"] is None
    assert to_row(case(1, wer=float("nan")), "test")["wer"] is None


def test_rows_of_a_build_match_the_features() -> None:
    cases = [case(i, speaker_id=None if i % 2 else f"spk-{i}", language=None, wer=None) for i in range(50)]
    cases += [case(f"u{i}", corrected_transcript=None) for i in range(10)]
    splits = build_splits(cases, BuildRequest(include_uncorrected=True, balance_error_types=False))
    kinds = {"string": (str,), "float64": (float, type(None)), "bool": (bool,), "list<string>": (list,)}
    for rows in splits.values():
        for row in rows:
            for name, kind in ROW_FEATURES.items():
                assert isinstance(row[name], kinds[kind]), (name, row[name])
            assert all(isinstance(t, str) for t in row["error_types"])
    assert sum(not r["has_correction"] for rows in splits.values() for r in rows) == 10


# --- metadata ------------------------------------------------------------------------------------------------


def fixture_splits() -> dict[str, list[dict[str, Any]]]:
    """Five rows placed by hand: train has speaker s1 twice and one recording; val and test one each."""
    return {
        "train": [
            to_row(case(1, speaker_id="s1", error_types=["casing", "punctuation"], error_score=0.6), "train"),
            to_row(case(2, speaker_id="s1", error_types=["casing"], error_score=0.8), "train"),
            to_row(case(5, speaker_id=None, error_types=["numerals"], error_score=0.5), "train"),
        ],
        "val": [to_row(case(3, error_types=["deletion"], error_score=None, corrected_transcript=None), "val")],
        "test": [to_row(case(4, speaker_id="s2", error_types=[], error_score=1.0), "test")],
    }


def test_metadata_numbers_match_hand_computed_values() -> None:
    request = BuildRequest(min_error_score=0, include_uncorrected=True, max_samples=10, version_name="v1")
    meta = dataset_metadata("ds-1", request, fixture_splits(), CREATED, "gs://bucket/dataset-requests/a.json")
    assert meta["dataset_id"] == "ds-1"
    assert meta["created_at"] == "2026-11-27T10:00:00+00:00"
    assert meta["source"] == "gs://bucket/dataset-requests/a.json"
    assert meta["request"] == request.model_dump()
    assert meta["total_samples"] == 5
    assert meta["split_sizes"] == {"train": 3, "val": 1, "test": 1}
    assert meta["error_type_distribution"] == {"casing": 2, "deletion": 1, "numerals": 1, "punctuation": 1}
    # Scores 0.6, 0.8, 0.5, 1.0: mean 0.725; deviations -0.125, 0.075, -0.225, 0.275; squares sum 0.1475.
    stats = meta["error_score_stats"]
    assert stats["mean"] == pytest.approx(0.725)
    assert stats["std"] == pytest.approx(math.sqrt(0.1475 / 4))
    assert stats["min"] == 0.5
    assert stats["max"] == 1.0
    assert meta["corrections_included"] == 4
    assert meta["groups_per_split"] == {"train": 2, "val": 1, "test": 1}
    assert meta["features"] == ROW_FEATURES
    assert json.loads(json.dumps(meta)) == meta


def test_metadata_without_scores_or_rows() -> None:
    meta = dataset_metadata("ds-0", BuildRequest(), {name: [] for name in SPLITS}, CREATED, "python")
    assert meta["total_samples"] == 0
    assert meta["split_sizes"] == {"train": 0, "val": 0, "test": 0}
    assert meta["error_type_distribution"] == {}
    assert meta["error_score_stats"] == {"mean": None, "std": None, "min": None, "max": None}
    assert meta["corrections_included"] == 0
    assert meta["groups_per_split"] == {"train": 0, "val": 0, "test": 0}


def test_metadata_of_a_build_agrees_with_its_splits() -> None:
    cases = [case(i, speaker_id=f"spk-{i % 9}" if i % 4 else None, error_score=0.5 + i / 400) for i in range(150)]
    request = BuildRequest(balance_error_types=False)
    splits = build_splits(cases, request)
    meta = dataset_metadata("ds-2", request, splits, CREATED, "python")
    assert meta["total_samples"] == 150
    assert meta["split_sizes"] == {name: len(rows) for name, rows in splits.items()}
    assert meta["groups_per_split"] == {
        name: len({group_key(c) for c in cases if split_of_each(splits)[c["case_id"]] == name}) for name in SPLITS
    }
    assert meta["error_score_stats"]["min"] == 0.5
    assert meta["error_score_stats"]["max"] == pytest.approx(0.5 + 149 / 400)
