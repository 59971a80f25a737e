"""Dead-letter replay without Pub/Sub: the replay rule (shared/domain/dead_letters.py) and the use case over a fake
queue that subclasses the port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from cloudevents.http import CloudEvent

from shared.config import Settings
from shared.domain.dead_letters import REPLAY_COUNT, REPLAY_OF, DeadLetter, handler_message_id, plan_replay
from shared.errors import BadInput
from shared.ports import DeadLetterQueue
from shared.push import decode_push
from shared.services.dead_letter_replay import replay_dead_letters
from shared.topology import build_topology
from tests.unit.fake_case_store import InMemoryCaseStore

SETTINGS = Settings()
FAILURES_SINK = f"{SETTINGS.dead_letter_topic(SETTINGS.topic_failures)}-sink"


class FakeDeadLetters(DeadLetterQueue):
    """Dead letters by subscription; what was republished and acknowledged."""

    def __init__(self, letters: Mapping[str, list[DeadLetter]]) -> None:
        self.waiting = {name: list(found) for name, found in letters.items()}
        self.published: list[tuple[str, bytes, dict[str, str]]] = []
        self.acked: list[str] = []

    def pull(self, subscription: str, max_messages: int) -> list[DeadLetter]:
        found = self.waiting.get(subscription, [])
        return [letter for letter in found if letter.ack_id not in self.acked][:max_messages]

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        self.acked.extend(ack_ids)

    def republish(self, topic: str, data: bytes, attributes: Mapping[str, str], timeout_s: float) -> str:
        self.published.append((topic, data, dict(attributes)))
        return str(len(self.published))


def _letter(n: int, **attributes: str) -> DeadLetter:
    return DeadLetter(ack_id=f"ack-{n}", message_id=f"dl-{n}", data=f"payload {n}".encode(), attributes=attributes)


def test_a_dead_letter_is_republished_with_one_more_replay_and_its_first_id() -> None:
    letter = _letter(1, origin="svc", CloudPubSubDeadLetterSourceDeliveryCount="5")
    assert plan_replay(letter, 3) == ({"origin": "svc", REPLAY_COUNT: "1", REPLAY_OF: "dl-1"}, None)
    again = _letter(2, **{REPLAY_COUNT: "2", REPLAY_OF: "dl-1"})
    assert plan_replay(again, 3) == ({REPLAY_COUNT: "3", REPLAY_OF: "dl-1"}, None)


@pytest.mark.parametrize(("count", "max_replays"), [("3", 3), ("0", 0), ("-1", 3), ("x", 3)])
def test_a_dead_letter_replayed_too_often_or_with_a_bad_count_is_refused(count: str, max_replays: int) -> None:
    attributes, reason = plan_replay(_letter(1, **{REPLAY_COUNT: count}), max_replays)
    assert attributes is None
    assert REPLAY_COUNT in str(reason) or "replays" in str(reason)


def test_a_replay_is_the_message_it_replays_for_the_handlers() -> None:
    assert handler_message_id("m-9", {REPLAY_COUNT: "1", REPLAY_OF: "dl-1"}) == "dl-1"
    assert handler_message_id("m-9", {REPLAY_OF: "dl-1"}) == "m-9"  # not a replay: a producer's attribute
    attrs = {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub/projects/p/topics/t",
             "id": "m-9"}
    message = {"data": "", "messageId": "m-9", "attributes": {REPLAY_COUNT: "2", REPLAY_OF: "dl-1"}}
    assert decode_push(CloudEvent(attrs, {"message": message})).message_id == "dl-1"


def test_the_use_case_replays_acks_and_quarantines_what_was_replayed_too_often() -> None:
    letters = [_letter(1), _letter(2, **{REPLAY_COUNT: "3", REPLAY_OF: "dl-0"}), _letter(3)]
    queue, store = FakeDeadLetters({FAILURES_SINK: letters}), InMemoryCaseStore()

    result = replay_dead_letters(queue, store, build_topology(SETTINGS), max_replays=3)

    assert (result["replayed"], result["quarantined"]) == (2, 1)
    assert [(topic, data) for topic, data, _ in queue.published] == [
        (SETTINGS.topic_failures, b"payload 1"), (SETTINGS.topic_failures, b"payload 3")]
    assert sorted(queue.acked) == ["ack-1", "ack-2", "ack-3"]
    kept = store.rejects["replay_dead_letters-dl-2"]
    assert kept["raw"] == b"payload 2" and "after 3 replays" in kept["reason"]
    assert kept["topic"] == SETTINGS.topic_failures


def test_the_use_case_stops_at_max_messages_and_refuses_bad_arguments() -> None:
    queue = FakeDeadLetters({FAILURES_SINK: [_letter(n) for n in range(5)]})
    topology = build_topology(SETTINGS)
    assert replay_dead_letters(queue, InMemoryCaseStore(), topology, max_messages=2)["replayed"] == 2
    assert len(queue.acked) == 2
    with pytest.raises(BadInput, match="known topics"):
        replay_dead_letters(queue, InMemoryCaseStore(), topology, topic="nope")
    with pytest.raises(BadInput, match="max_replays"):
        replay_dead_letters(queue, InMemoryCaseStore(), topology, max_replays=-1)
    # A topic is named by itself or by its dead-letter topic.
    dead_letter_topic = SETTINGS.dead_letter_topic(SETTINGS.topic_failures)
    assert list(replay_dead_letters(queue, InMemoryCaseStore(), topology, topic=dead_letter_topic)["topics"]) == [
        SETTINGS.topic_failures]
