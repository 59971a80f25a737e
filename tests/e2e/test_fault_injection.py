"""Faults injected while the push path is loaded (issue #11): Firestore gone for 20 s in the middle of a 5,000-event
publish, and a storm of every event of a 2,000-event load delivered three times at once. Each case is stored
exactly once and the statistics counters are exact. (The build killed mid-build and redelivered is in
test_kill_and_redeliver.py.)"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from google.cloud import pubsub_v1

from shared import DataManager
from shared.config import Settings
from shared.domain.failure_event import derive_case_id, parse_failure_event
from stack.local_stack import StackInfo
from stack.wiring import WiredFunction, start_wired_function
from tests.e2e.flaky_proxy import OutageProxy
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.emulators

MODELS = ("whisper-v3", "whisper-v4")
OUTAGE_S = 20.0


def events(count: int, tag: str) -> list[bytes]:
    """`count` distinct failure events over two model versions, every third one corrected."""
    return [
        orjson.dumps({
            "audio_path": f"gs://stt-audio/{tag}/{i}.wav",
            "original_transcript": f"THE NUMBER IS {i}",
            **({"corrected_transcript": f"The number is {i}."} if i % 3 == 0 else {}),
            "model_version": MODELS[i % 2],
            "error_score": 0.5,
        })
        for i in range(count)
    ]


def expected_counts(payloads: list[bytes]) -> dict[str, object]:
    parsed = [parse_failure_event(raw) for raw in payloads]
    return {
        "total_cases": len(parsed),
        "corrected_cases": sum(1 for event in parsed if event.corrected_transcript),
        "cases_by_model_version": dict(Counter(event.model_version for event in parsed)),
    }


def publish(fn: WiredFunction, payloads: list[bytes]) -> None:
    """Publish every payload (batched by the client) and wait until Pub/Sub has them all."""
    publisher = pubsub_v1.PublisherClient()
    futures = [publisher.publish(fn.topic_path(), payload) for payload in payloads]
    for future in futures:
        future.result(timeout=120)


def stored_ids(manager: DataManager) -> list[str]:
    return list(manager.export_to_dataframe()["case_id"])


def nothing_dead_lettered(fn: WiredFunction) -> bool:
    sink = pubsub_v1.SubscriberClient().pull(
        request={"subscription": fn.sink_path(), "max_messages": 10}, timeout=10
    )
    return list(sink.received_messages) == []


def check_stored_once(manager: DataManager, payloads: list[bytes]) -> None:
    expected = expected_counts(payloads)
    stats = manager.get_statistics()
    assert {key: stats[key] for key in expected} == expected  # the counters: every event counted once
    ids = stored_ids(manager)
    assert len(ids) == len(set(ids)) == len(payloads)
    assert set(ids) == {derive_case_id(parse_failure_event(raw)) for raw in payloads}


@pytest.fixture
def outage_settings(test_settings: Settings) -> Settings:
    """The deployment's retry policy (Settings' defaults: backoff 1 s to 60 s, 5 deliveries), not the short one
    the other e2e tests use: the outage is ridden out as it would be deployed (the Firestore client's own retries
    within a delivery, then Pub/Sub's redeliveries)."""
    defaults = Settings()
    return replace(test_settings, min_backoff_s=defaults.min_backoff_s, max_backoff_s=defaults.max_backoff_s,
                   max_delivery_attempts=defaults.max_delivery_attempts)


@pytest.fixture
def firestore_outage(stack: StackInfo) -> Iterator[OutageProxy]:
    with OutageProxy(stack.env["FIRESTORE_EMULATOR_HOST"]) as proxy:
        yield proxy


def test_firestore_stopped_for_20s_during_a_5000_event_publish_loses_and_doubles_nothing(
    stack: StackInfo, outage_settings: Settings, firestore_outage: OutageProxy, namespace: str, log_dir: Path,
    repo_root: Path,
) -> None:
    fn = start_wired_function(
        stack, repo_root / "functions/record_failure/main.py", "record_failure", outage_settings,
        f"{namespace}-outage", log_dir, extra_env={"FIRESTORE_EMULATOR_HOST": firestore_outage.address},
    )
    try:
        payloads = events(5_000, namespace)
        manager = DataManager(outage_settings)  # reads the emulator directly, not through the proxy
        publishing = threading.Thread(target=publish, args=(fn, payloads))
        publishing.start()
        wait_for(lambda: manager.get_statistics()["total_cases"] >= 500, timeout_s=300, interval_s=0.5)

        firestore_outage.stop()
        time.sleep(1.0)  # a commit the emulator had whole when its connection was cut lands now
        during = manager.get_statistics()["total_cases"]
        time.sleep(OUTAGE_S - 1.0)
        assert manager.get_statistics()["total_cases"] == during < len(payloads)  # nothing got through
        firestore_outage.start()  # the same port, the same data

        publishing.join()
        wait_for(lambda: manager.get_statistics()["total_cases"] >= len(payloads), timeout_s=600, interval_s=1.0)
        time.sleep(2.0)  # redeliveries still in flight land now; they must change nothing
        check_stored_once(manager, payloads)
        assert firestore_outage.connections_cut > 0  # the outage cut live connections
        assert nothing_dead_lettered(fn)
        assert manager.get_statistics()["quarantined_events"] == 0
    finally:
        fn.stop()


def test_a_storm_of_every_event_delivered_three_times_at_once_counts_each_once(
    stack: StackInfo, test_settings: Settings, namespace: str, log_dir: Path, repo_root: Path
) -> None:
    fn = start_wired_function(
        stack, repo_root / "functions/record_failure/main.py", "record_failure", test_settings,
        f"{namespace}-storm", log_dir,
    )
    try:
        payloads = events(2_000, namespace)
        # Three publishers at once, each with every event: 6,000 messages, three of each, delivered concurrently.
        publishers = [threading.Thread(target=publish, args=(fn, payloads)) for _ in range(3)]
        for thread in publishers:
            thread.start()
        for thread in publishers:
            thread.join()
        manager = DataManager(test_settings)
        wait_for(lambda: manager.get_statistics()["total_cases"] >= len(payloads), timeout_s=600, interval_s=1.0)
        time.sleep(3.0)  # the last repeats land now; they must change nothing
        check_stored_once(manager, payloads)
        assert nothing_dead_lettered(fn)
    finally:
        fn.stop()
