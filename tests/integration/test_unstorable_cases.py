"""What Firestore cannot store, on the emulator: the rules of shared/domain/firestore_limits.py refuse exactly what
the emulator refuses; an unstorable event is quarantined, not retried; an import stores its other lines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from google.api_core.exceptions import InvalidArgument
from google.cloud import firestore, storage

from shared.adapters.firestore_cases import FirestoreCaseStore
from shared.adapters.gcs import BucketStore
from shared.config import Settings
from shared.domain.cases import CounterDelta
from shared.domain.firestore_limits import unstorable_reason
from shared.errors import UnstorableRecord
from shared.services.bulk_import import run_import, write_storable
from shared.services.ingestion import record_failure
from stack.local_stack import StackInfo
from tests.unit.test_firestore_limits import LIMIT_CASES

pytestmark = pytest.mark.emulators

GOOD = {"audio_path": "gs://stt-audio/u/1.wav", "original_transcript": "ONE"}
LATER = {"audio_path": "gs://stt-audio/u/3.wav", "original_transcript": "THREE"}


@pytest.fixture
def store(stack: StackInfo, test_settings: Settings) -> FirestoreCaseStore:
    return FirestoreCaseStore(test_settings)


@pytest.mark.parametrize(("fields", "reason"), LIMIT_CASES)
def test_the_emulator_refuses_exactly_what_the_rules_refuse(
    stack: StackInfo, test_settings: Settings, fields: dict[str, Any], reason: str | None
) -> None:
    client = firestore.Client(project=test_settings.project)
    batch = client.batch()
    try:
        batch.create(client.collection(test_settings.collection("probe")).document(), fields)
        batch.commit()
        refused = None
    except (InvalidArgument, ValueError) as exc:  # ValueError: refused by the client while encoding
        refused = str(exc)
    assert (refused is None) == (unstorable_reason(fields) is None), refused


def test_an_unstorable_event_is_quarantined_with_its_reason_and_nothing_stored(
    store: FirestoreCaseStore, test_settings: Settings
) -> None:
    for message_id, event in [("m-1", {**GOOD, "metadata": {"boxes": [[0, 1]]}}),
                              ("m-2", {**GOOD, "metadata": {"frames": 2**63}}),
                              ("m-3", {**GOOD, "model_version": "v" * 2000})]:
        outcome = record_failure(orjson.dumps(event), message_id, store)
        assert outcome.status == "quarantined", outcome
    assert list(store.cases.limit(1).stream()) == []
    kept = {record["id"]: record for record in store.quarantined()}
    assert "an array directly inside an array" in kept["record_failure-m-1"]["reason"]
    assert "signed 64-bit" in kept["record_failure-m-2"]["reason"]
    assert "1500-byte indexed value limit" in kept["record_failure-m-3"]["reason"]
    shards = store.counter_shards()
    assert sum(s.get("quarantined", 0) for s in shards) == 3 and sum(s.get("total_cases", 0) for s in shards) == 0


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"metadata": {"boxes": [[0, 1]]}}, id="array-in-array-refused-by-the-server"),
        pytest.param({"metadata": {"frames": 2**64}}, id="int-beyond-64-bits-refused-by-the-client"),
        pytest.param({"metadata": {"": 1}}, id="empty-name-refused-by-the-client"),
    ],
)
def test_a_case_firestore_refuses_is_unstorable_input_not_an_outage(store: FirestoreCaseStore, bad: dict) -> None:
    # Defence in depth, below the validation: a case written as it is, as a future field might be.
    with pytest.raises(UnstorableRecord, match="Firestore cannot store this case"):
        store.create_case("bad", {**GOOD, **bad}, CounterDelta(total_cases=1))
    assert store.get_case("bad") is None and store.counter_shards() == []

    items = [(f"c{i}", {**GOOD, "n": i, **(bad if i == 2 else {})}, CounterDelta(total_cases=1)) for i in (1, 2, 3)]
    existing, refused = write_storable(store, items)
    assert existing == {} and list(refused) == ["c2"] and "Firestore cannot store this case" in refused["c2"]
    assert [store.get_case(f"c{i}") is not None for i in (1, 2, 3)] == [True, False, True]
    assert sum(s.get("total_cases", 0) for s in store.counter_shards()) == 2


def test_an_import_of_good_unstorable_good_stores_two_and_rejects_line_two(
    store: FirestoreCaseStore, test_settings: Settings, namespace: str
) -> None:
    settings = replace(test_settings, bucket=f"{namespace}-imports")
    storage.Client(project=settings.project).create_bucket(settings.bucket)
    bucket = BucketStore(settings)
    lines = [GOOD, {**GOOD, "audio_path": "gs://stt-audio/u/2.wav", "metadata": {"a": [[1]]}}, LATER]
    bucket.put("imports/u.jsonl", b"".join(orjson.dumps(line) + b"\n" for line in lines))
    generation = bucket.bucket.get_blob("imports/u.jsonl").generation  # type: ignore[union-attr]

    result = run_import("imports/u.jsonl", generation, store, bucket)

    assert (result["lines"], result["accepted"], result["rejected"]) == (3, 2, 1)
    assert result["rejects"][0]["line"] == 2 and "array directly inside an array" in result["rejects"][0]["reason"]
    stored = sorted(snapshot.to_dict()["import_line"] for snapshot in store.cases.stream())
    assert stored == [1, 3]
    assert sum(s.get("total_cases", 0) for s in store.counter_shards()) == 2
