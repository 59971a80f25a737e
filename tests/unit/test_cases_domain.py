"""A case from an event, a correction applied to it, and the counters each moves."""

from datetime import UTC, datetime

import jiwer
import pytest

from shared.domain.cases import CounterDelta, already_applied, apply_correction, case_counters, new_case
from shared.domain.failure_event import Correction, FailureEvent
from shared.domain.statistics import summarize

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _event(**fields: object) -> FailureEvent:
    return FailureEvent.model_validate(
        {"audio_path": "gs://stt-audio/a.wav", "original_transcript": "THIS IS ALL CAPS", **fields}
    )


def test_uncorrected_case_keeps_the_given_fields_and_has_no_scores() -> None:
    case = new_case(_event(error_score=0.8, speaker_id="spk-1", custom="kept"), "c1", "m1", NOW)
    assert case["custom"] == "kept"
    assert case["speaker_id"] == "spk-1"
    assert case["corrected"] is False
    assert case["error_types"] == []
    assert case["error_types_source"] == "none"
    assert "wer" not in case
    assert (case["created_at"], case["updated_at"], case["corrections"]) == (NOW, NOW, [])


def test_corrected_case_gets_jiwer_scores_and_derived_types() -> None:
    case = new_case(_event(corrected_transcript="This is all caps"), "c1", None, NOW)
    assert case["wer"] == pytest.approx(jiwer.wer("This is all caps", "THIS IS ALL CAPS"))
    assert case["wer"] == 1.0  # raw: casing counts
    assert case["normalized_wer"] == 0.0
    assert case["error_types"] == ["all_caps"]
    assert case["error_types_source"] == "derived"


def test_given_error_types_win_over_derived() -> None:
    case = new_case(_event(corrected_transcript="This is all caps", error_types=["punctuation"]), "c", None, NOW)
    assert case["error_types"] == ["punctuation"]
    assert case["error_types_source"] == "given"


def test_counters_of_a_new_case() -> None:
    case = new_case(
        _event(corrected_transcript="This is all caps", error_score=0.5, model_version="v1"), "c", None, NOW
    )
    assert case_counters(case) == CounterDelta(
        total_cases=1,
        corrected_cases=1,
        error_score_sum=0.5,
        error_score_count=1,
        error_types={"all_caps": 1},
        model_versions={"v1": 1},
    )


def test_correction_keeps_history_and_swaps_type_counters() -> None:
    case = new_case(
        _event(original_transcript="turn left at the light", corrected_transcript="Turn left at the light."),
        "c",
        "m0",
        NOW,
    )
    assert case["error_types"] == ["casing", "punctuation"]
    assert (case["error_score"], case["error_score_source"]) == (0.0, "derived")  # same words: nothing wrong
    later = datetime(2026, 11, 28, tzinfo=UTC)
    correction = Correction(case_id="c", corrected_transcript="turn left at the night", corrected_by="ana")
    updates, delta = apply_correction(case, correction, "m1", later)
    assert updates["error_types"] == ["substitution"]
    assert updates["corrections"] == [
        {
            "corrected_by": "ana",
            "corrected_at": later,
            "previous_transcript": "Turn left at the light.",
            "corrected_transcript": "turn left at the night",
            "error_types": ["substitution"],
            "message_id": "m1",
        }
    ]
    assert updates["wer"] == pytest.approx(0.2)
    assert updates["error_score"] == pytest.approx(0.2)  # derived again: one word of five
    assert delta == CounterDelta(error_types={"casing": -1, "punctuation": -1, "substitution": 1},
                                 error_score_sum=pytest.approx(0.2))
    assert already_applied({**case, **updates}, "m1")
    assert not already_applied({**case, **updates}, "m2")


def test_first_correction_counts_the_case_as_corrected() -> None:
    case = new_case(_event(), "c", None, NOW)
    _, delta = apply_correction(case, Correction(case_id="c", corrected_transcript="This is all caps"), None, NOW)
    assert delta.corrected_cases == 1
    assert delta.error_types == {"all_caps": 1}


def test_empty_reference_is_defined() -> None:
    case = new_case(_event(original_transcript="uh huh", corrected_transcript=""), "c", None, NOW)
    assert case["wer"] == 2.0  # jiwer: inserted words over an empty reference (documented in transcript_metrics)
    assert case["corrected"] is True


def test_summarize_sums_shards() -> None:
    stats = summarize(
        [
            {
                "total_cases": 3,
                "corrected_cases": 1,
                "error_score_sum": 1.5,
                "error_score_count": 3,
                "error_types": {"casing": 2, "truncation": 0},
                "model_versions": {"v1": 3},
            },
            {
                "total_cases": 1,
                "corrected_cases": 1,
                "quarantined": 2,
                "error_types": {"casing": 1},
                "model_versions": {"v2": 1},
            },
        ]
    )
    assert stats == {
        "total_failed_cases": 4,
        "total_cases": 4,
        "corrected_cases": 2,
        "correction_rate": 0.5,
        "error_type_distribution": {"casing": 3},
        "average_error_score": 0.5,
        "cases_by_model_version": {"v1": 3, "v2": 1},
        "quarantined_events": 2,
    }


def test_summarize_of_nothing() -> None:
    assert summarize([])["total_failed_cases"] == 0
    assert summarize([])["correction_rate"] == 0.0
    assert summarize([])["average_error_score"] is None


def test_a_case_sent_without_an_error_score_gets_one_from_its_correction() -> None:
    uncorrected = new_case(_event(), "c", None, NOW)
    assert "error_score" not in uncorrected and case_counters(uncorrected).error_score_count == 0
    updates, delta = apply_correction(
        uncorrected, Correction(case_id="c", corrected_transcript="this is all hats"), None, NOW)
    assert (updates["error_score"], updates["error_score_source"]) == (0.25, "derived")
    assert (delta.error_score_sum, delta.error_score_count) == (0.25, 1)
    garbled = new_case(_event(original_transcript="a b c d e f", corrected_transcript="x"), "g", None, NOW)
    assert garbled["error_score"] == 1.0  # normalized WER above 1 is capped


def test_a_given_error_score_is_never_replaced() -> None:
    case = new_case(_event(error_score=0.8), "c", None, NOW)
    assert case["error_score_source"] == "given"
    updates, delta = apply_correction(case, Correction(case_id="c", corrected_transcript="this is all hats"), None, NOW)
    assert "error_score" not in updates and (delta.error_score_sum, delta.error_score_count) == (0.0, 0)
    legacy = {**case}
    del legacy["error_score_source"]  # stored before the source was recorded: a score there was given
    updates, _ = apply_correction(legacy, Correction(case_id="c", corrected_transcript="this is all hats"), None, NOW)
    assert "error_score" not in updates


def test_a_history_keeps_its_newest_entries_within_the_budget() -> None:
    from shared.domain.cases import HISTORY_BUDGET_BYTES, entries_to_move_out, history_budget
    from shared.domain.firestore_limits import storage_size

    entries = [{"corrected_transcript": str(n) * 50_000, "previous_transcript": str(n - 1) * 50_000}
               for n in range(10)]
    budget = history_budget({"original_transcript": "x" * 50_000, "corrections": entries})
    assert budget == HISTORY_BUDGET_BYTES
    moved = entries_to_move_out(entries, budget)
    assert 0 < moved < len(entries) and storage_size(entries[moved:]) <= budget < storage_size(entries[moved - 1:])
    assert entries_to_move_out(entries[:2], budget) == 0
    assert entries_to_move_out(entries[:1], 10) == 1  # an entry larger than the budget moves out too
    # A case whose own fields are large keeps less of its history in itself.
    assert history_budget({"original_transcript": "x" * 900_000}) < HISTORY_BUDGET_BYTES
    assert history_budget({"original_transcript": "x" * 1_100_000}) == 0
