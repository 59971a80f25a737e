"""How the Firestore case store cuts new cases into commits (pure: no client is made): every commit within
Firestore's 500 writes and the store's byte budget, and an import's batch in one commit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.adapters.firestore_cases import COMMIT_BYTES, MAX_BATCH, FirestoreCaseStore, _NewCase
from shared.domain.cases import HISTORY_BUDGET_BYTES, CounterDelta
from shared.domain.firestore_limits import storage_size
from shared.services.bulk_import import IMPORT_BATCH

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def _case(i: int, text: str = "turn left at the light", corrections: int = 0, entry_bytes: int = 100) -> dict[str, Any]:
    return {
        "case_id": f"c{i}", "original_transcript": text.upper(), "corrected_transcript": text, "wer": 0.5,
        "error_types": ["all_caps"], "corrected": True, "created_at": NOW, "speaker_id": None,
        "corrections": [{"corrected_transcript": "x" * entry_bytes, "at": NOW, "n": n} for n in range(corrections)],
    }


def _new(i: int, model: str = "v1", **shape: Any) -> _NewCase:
    delta = CounterDelta(total_cases=1, model_versions={model: 1})
    return _NewCase(f"c{i}", delta, FirestoreCaseStore._split(_case(i, **shape), 0))


def _writes(chunk: list[_NewCase]) -> int:
    models = {name for item in chunk for name in item.delta.model_versions}
    return len(chunk) + sum(len(item.split.moved) for item in chunk) + 1 + len(models)


def test_a_split_counts_the_sizes_of_what_it_stores_and_moves_out() -> None:
    for shape in ({}, {"corrections": 3}, {"corrections": 12, "entry_bytes": 30_000}):
        stored, moved, stored_bytes, moved_bytes = FirestoreCaseStore._split(_case(1, **shape), 0)  # type: ignore[arg-type]
        assert stored_bytes == storage_size(stored)
        assert moved_bytes == sum(storage_size(entry) for _, entry in moved)
    stored, moved, _, _ = FirestoreCaseStore._split(_case(1, corrections=12, entry_bytes=30_000), 0)
    assert moved and storage_size(stored["corrections"]) <= HISTORY_BUDGET_BYTES
    assert len(moved) + len(stored["corrections"]) == 12


def test_an_import_batch_of_cases_of_several_models_is_one_commit() -> None:
    batch = [_new(i, model=f"v{i % 4}") for i in range(IMPORT_BATCH)]
    assert FirestoreCaseStore._chunk(batch) == batch


def test_a_commit_never_holds_more_than_firestore_allows() -> None:
    pending = [_new(i, model=f"v{i % 4}") for i in range(1200)]
    chunks = []
    while pending:
        chunks.append(FirestoreCaseStore._chunk(pending))
        pending = pending[len(chunks[-1]):]
    assert [len(c) for c in chunks] == [495, 495, 210]  # 500 writes: the cases, one shard, 4 model counters
    assert all(_writes(c) <= MAX_BATCH for c in chunks)


def test_moved_out_history_and_bytes_end_a_commit_early() -> None:
    heavy = [_new(i, corrections=12, entry_bytes=30_000) for i in range(40)]
    chunk = FirestoreCaseStore._chunk(heavy)
    assert 0 < len(chunk) < len(heavy)
    assert sum(item.split.stored_bytes + item.split.moved_bytes for item in chunk) <= COMMIT_BYTES
    big = _new(0, text="y" * (COMMIT_BYTES + 10))
    assert FirestoreCaseStore._chunk([big, _new(1)]) == [big]  # one case alone, however big, still goes
