"""The whole event path on the emulators: publish -> push subscription -> function -> Firestore."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import orjson
import pytest
from google.cloud import firestore, pubsub_v1, storage

from shared.config import Settings
from stack.local_stack import StackInfo
from stack.wiring import start_wired_function
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.emulators


def _wait_for(predicate, timeout_s: float = 20.0, interval_s: float = 0.1):  # type: ignore[no-untyped-def]
    return wait_for(predicate, timeout_s, interval_s)


def test_failure_event_published_to_the_stack_topic_becomes_a_document(stack: StackInfo) -> None:
    case_id = f"e2e-{uuid.uuid4().hex}"
    event = {"audio_path": "gs://stt-audio/utt-1.wav", "original_transcript": "HELLO WORLD", "case_id": case_id}
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.project, stack.settings.topic_failures)
    publisher.publish(topic, json.dumps(event).encode()).result(timeout=10)

    doc = firestore.Client(project=stack.project).collection("failed_cases").document(case_id)
    snapshot = _wait_for(lambda: (s := doc.get()).exists and s)
    stored = snapshot.to_dict()
    assert stored["original_transcript"] == "HELLO WORLD"
    assert stored["audio_path"] == "gs://stt-audio/utt-1.wav"
    assert stored["created_at"] is not None


def test_duplicate_deliveries_leave_one_unchanged_document(stack: StackInfo) -> None:
    case_id = f"dup-{uuid.uuid4().hex}"
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.project, stack.settings.topic_failures)
    body = orjson.dumps({"audio_path": "gs://stt-audio/b.wav", "original_transcript": "x", "case_id": case_id})
    first = publisher.publish(topic, body).result(timeout=10)
    doc = firestore.Client(project=stack.project).collection("failed_cases").document(case_id)
    created = _wait_for(lambda: (s := doc.get()).exists and s).to_dict()
    for _ in range(2):
        publisher.publish(topic, body).result(timeout=10)
    time.sleep(1.5)  # the repeats are delivered and acknowledged in well under a second
    again = doc.get().to_dict()
    assert again == created
    assert again["message_id"] == first


def test_failing_function_is_retried_then_dead_lettered(
    stack: StackInfo, test_settings: Settings, namespace: str, log_dir: Path, repo_root: Path, tmp_path: Path
) -> None:
    deliveries = tmp_path / "deliveries.txt"
    fn = start_wired_function(
        stack,
        repo_root / "tests/e2e/functions/always_fails.py",
        "always_fails",
        test_settings,
        topic=f"{namespace}-failing",
        log_dir=log_dir,
        extra_env={"DELIVERY_LOG": str(deliveries)},
    )
    try:
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        message_id = publisher.publish(fn.topic_path(), b'{"poison": true}').result(timeout=10)

        def dead_letters() -> list:  # type: ignore[type-arg]
            response = subscriber.pull(request={"subscription": fn.sink_path(), "max_messages": 10}, timeout=5)
            return list(response.received_messages)

        received = _wait_for(dead_letters, timeout_s=60, interval_s=0.5)
        assert received[0].message.data == b'{"poison": true}'
        # The dead-letter topic gets a new message id; the source subscription is named in the attributes.
        attempts = deliveries.read_text().split()
        assert attempts == [message_id] * test_settings.max_delivery_attempts
        source = received[0].message.attributes["CloudPubSubDeadLetterSourceSubscription"]
        assert source == fn.subscription.name
    finally:
        fn.stop()


def test_bucket_upload_publishes_a_finalize_notification(stack: StackInfo, namespace: str) -> None:
    subscriber = pubsub_v1.SubscriberClient()
    sub_path = subscriber.subscription_path(stack.project, f"{namespace}-bucket-events")
    topic_path = subscriber.topic_path(stack.project, stack.settings.topic_bucket_events)
    subscriber.create_subscription(request={"name": sub_path, "topic": topic_path})
    try:
        name = f"dataset-requests/{namespace}.json"
        storage.Client(project=stack.project).bucket(stack.settings.bucket).blob(name).upload_from_string("{}")

        def ours() -> list:  # type: ignore[type-arg]
            response = subscriber.pull(request={"subscription": sub_path, "max_messages": 50}, timeout=5)
            return [m for m in response.received_messages if m.message.attributes.get("objectId") == name]

        notification = _wait_for(ours, interval_s=0.3)[0].message
        assert notification.attributes["eventType"] == "OBJECT_FINALIZE"
        assert notification.attributes["payloadFormat"] == "JSON_API_V1"
        assert notification.attributes["bucketId"] == stack.settings.bucket
        assert json.loads(notification.data)["name"] == name
    finally:
        subscriber.delete_subscription(subscription=sub_path)
