"""Dead-letter replay on the Pub/Sub emulator (issue #11, item 8): a dead letter goes back to its topic with a replay
count, is acknowledged, and after max_replays it is quarantined with the reason instead of republished."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from google.cloud import pubsub_v1

from shared import IntegratedDataManagementSystem
from shared.adapters.firestore_cases import FirestoreCaseStore
from shared.adapters.pubsub_dead_letters import PubSubDeadLetters
from shared.config import Settings
from shared.domain.dead_letters import REPLAY_COUNT, REPLAY_OF
from shared.services.dead_letter_replay import replay_dead_letters
from shared.topology import Topology, build_topology
from stack import provision
from stack.local_stack import StackInfo

pytestmark = pytest.mark.emulators


@pytest.fixture(autouse=True)
def emulators(stack: StackInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in stack.env.items():
        if key.endswith("_EMULATOR_HOST"):
            monkeypatch.setenv(key, value)


@pytest.fixture
def settings(test_settings: Settings, namespace: str) -> Settings:
    return replace(test_settings, topic_failures=f"{namespace}-failures", topic_corrections=f"{namespace}-corrections",
                   topic_metrics=f"{namespace}-metrics", topic_bucket_events=f"{namespace}-bucket-events")


@pytest.fixture
def topology(settings: Settings) -> Topology:
    """The topics, dead-letter topics and dead-letter subscriptions, and a pull subscription on the failures topic
    that sees what is republished to it."""
    topology = build_topology(settings)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    provision.create_topics(topology, publisher)
    for sink in topology.dead_letter_sinks:
        provision.create_dead_letter_sink(settings.project, sink, subscriber)
    subscriber.create_subscription(request={
        "name": subscriber.subscription_path(settings.project, f"{settings.topic_failures}-watch"),
        "topic": publisher.topic_path(settings.project, settings.topic_failures)})
    return topology


def _dead_letter(settings: Settings, data: bytes, **attributes: str) -> str:
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(settings.project, settings.dead_letter_topic(settings.topic_failures))
    return str(publisher.publish(topic, data, **attributes).result(timeout=30))


def _watched(settings: Settings) -> list[pubsub_v1.types.ReceivedMessage]:
    queue = PubSubDeadLetters(settings.project)
    letters = queue.pull(f"{settings.topic_failures}-watch", 10)
    queue.ack(f"{settings.topic_failures}-watch", [letter.ack_id for letter in letters])
    return letters


def test_a_dead_letter_is_replayed_to_its_topic_until_max_replays_then_quarantined(
    settings: Settings, topology: Topology
) -> None:
    queue, store = PubSubDeadLetters(settings.project), FirestoreCaseStore(settings)
    first_id = _dead_letter(settings, b'{"audio_path": "gs://a/1.wav"}', origin="transcription-service",
                           CloudPubSubDeadLetterSourceDeliveryCount="5",
                           CloudPubSubDeadLetterSourceSubscription="failures-record-failure")
    for replay in (1, 2, 3):
        result = replay_dead_letters(queue, store, topology, max_replays=3)
        assert (result["replayed"], result["quarantined"]) == (1, 0), result
        assert result["topics"][settings.topic_failures]["replayed"] == 1
        [again] = _watched(settings)
        assert again.data == b'{"audio_path": "gs://a/1.wav"}'
        assert dict(again.attributes) == {"origin": "transcription-service", REPLAY_COUNT: str(replay),
                                          REPLAY_OF: first_id}
        assert queue.pull(topology.dead_letter_sinks[0].name, 10) == []  # acknowledged
        _dead_letter(settings, again.data, **dict(again.attributes))  # it fails again: Pub/Sub dead-letters it

    refused = replay_dead_letters(queue, store, topology, topic=settings.topic_failures, max_replays=3)

    assert (refused["replayed"], refused["quarantined"]) == (0, 1)
    assert _watched(settings) == []
    [kept] = store.quarantined()
    assert kept["source"] == "replay_dead_letters" and kept["topic"] == settings.topic_failures
    assert "after 3 replays" in kept["reason"] and kept["raw"] == b'{"audio_path": "gs://a/1.wav"}'
    # Kept quarantine_retention_days: Firestore's TTL on expire_at (infra/) deletes it then.
    assert kept["expire_at"] - kept["quarantined_at"] == pytest.approx(
        timedelta(days=settings.quarantine_retention_days), abs=timedelta(minutes=1))
    assert replay_dead_letters(queue, store, topology)["replayed"] == 0  # nothing left, nothing retried


def test_the_api_op_replays_the_dead_letters_of_one_topic(settings: Settings, topology: Topology) -> None:
    from shared.api import dispatch

    _dead_letter(settings, b"{}", CloudPubSubDeadLetterSourceDeliveryCount="5")
    system = IntegratedDataManagementSystem(settings=settings)
    answer = dispatch({"op": "replay_dead_letters", "topic": settings.topic_failures, "max_replays": 2}, settings,
                      {"IntegratedDataManagementSystem": system})
    assert answer.status == 200, answer.body
    assert answer.body["result"]["replayed"] == 1
    [again] = _watched(settings)
    assert again.attributes[REPLAY_COUNT] == "1"
    bad = dispatch({"op": "replay_dead_letters", "topic": "no-such-topic"}, settings,
                   {"IntegratedDataManagementSystem": system})
    assert bad.status == 400 and "known topics" in bad.body["error"]


def test_the_backlog_lists_dead_letters_and_leaves_them_for_the_replay(settings: Settings, topology: Topology) -> None:
    from shared.api import dispatch

    ids = {_dead_letter(settings, f'{{"n": {n}}}'.encode(), CloudPubSubDeadLetterSourceDeliveryCount="5")
           for n in range(3)}
    system = IntegratedDataManagementSystem(settings=settings)
    for _ in range(2):  # a second look sees the same letters: the first released them
        answer = dispatch({"op": "list_dead_letters"}, settings, {"IntegratedDataManagementSystem": system})
        assert answer.status == 200, answer.body
        listed = answer.body["result"]
        assert (listed["total"], listed["complete"]) == (3, True)
        failures = listed["topics"][settings.topic_failures]
        assert {letter["message_id"] for letter in failures["letters"]} == ids
        assert {letter["delivery_attempts"] for letter in failures["letters"]} == {"5"}
    assert system.replay_dead_letters(topic=settings.topic_failures)["replayed"] == 3
    assert system.list_dead_letters()["total"] == 0
