"""Every quarantined payload is a quarantined event in the statistics, whichever source rejected it (one writer,
shared/adapters/firestore_counters.py), and a redelivery of the same reject counts nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.cloud import firestore

from shared import DataManager
from shared.adapters.firestore_metrics import FirestoreMetricStore
from shared.config import Settings
from shared.services.metrics import QUARANTINE_SOURCE, record_metric
from stack.local_stack import StackInfo

pytestmark = pytest.mark.emulators

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def quarantined_events(settings: Settings) -> int:
    return int(DataManager(settings).get_statistics()["quarantined_events"])


def test_a_rejected_metric_record_is_counted_once(stack: StackInfo, test_settings: Settings) -> None:
    store = FirestoreMetricStore(test_settings)
    before = quarantined_events(test_settings)

    outcome = record_metric(b"{not json", "m-bad-1", None, store, NOW)
    assert outcome.status == "quarantined"
    assert quarantined_events(test_settings) == before + 1

    again = record_metric(b"{not json", "m-bad-1", None, store, NOW)  # the same message, delivered again
    assert again.status == "quarantined"
    assert quarantined_events(test_settings) == before + 1

    client = firestore.Client(project=test_settings.project)
    kept = [d.to_dict() or {} for d in client.collection(test_settings.collection("quarantine")).stream()]
    assert len(kept) == 1
    assert kept[0]["source"] == QUARANTINE_SOURCE and kept[0]["raw"] == b"{not json"
    assert kept[0]["quarantined_at"] is not None


def test_case_and_metric_rejects_count_in_the_same_statistics(stack: StackInfo, test_settings: Settings) -> None:
    manager = DataManager(test_settings)
    assert manager.store.quarantine("record_failure-m-1", b"nope", "not JSON", "record_failure", message_id="m-1")
    record_metric(b"nope", "m-2", None, FirestoreMetricStore(test_settings), NOW)
    assert manager.get_statistics()["quarantined_events"] == 2
