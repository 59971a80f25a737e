"""The dead-letter backlog without Pub/Sub: every letter is looked at, described and released, never taken."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shared.config import Settings
from shared.domain.dead_letters import REPLAY_COUNT, DeadLetter, describe_letter
from shared.errors import BadInput
from shared.services.dead_letter_backlog import list_dead_letters
from shared.topology import build_topology
from tests.unit.test_dead_letter_replay import FakeDeadLetters

SETTINGS = Settings()
FAILURES_SINK = f"{SETTINGS.dead_letter_topic(SETTINGS.topic_failures)}-sink"


class LeasingDeadLetters(FakeDeadLetters):
    """Pulled letters are leased (a second pull skips them) until released or acknowledged."""

    def __init__(self, letters: dict[str, list[DeadLetter]]) -> None:
        super().__init__(letters)
        self.leased: set[str] = set()
        self.released: list[str] = []

    def pull(self, subscription: str, max_messages: int) -> list[DeadLetter]:
        found = [letter for letter in super().pull(subscription, 10_000) if letter.ack_id not in self.leased]
        self.leased.update(letter.ack_id for letter in found[:max_messages])
        return found[:max_messages]

    def release(self, subscription: str, ack_ids: Sequence[str]) -> None:
        self.released.extend(ack_ids)
        self.leased.difference_update(ack_ids)


def _letter(n: int, **attributes: str) -> DeadLetter:
    return DeadLetter(ack_id=f"ack-{n}", message_id=f"dl-{n}", data=f'{{"n": {n}}}'.encode(), attributes=attributes)


def test_the_backlog_counts_and_describes_every_letter_and_leaves_them_all() -> None:
    letters = [_letter(n, CloudPubSubDeadLetterSourceDeliveryCount="5", origin="stt") for n in range(250)]
    queue = LeasingDeadLetters({FAILURES_SINK: letters})
    listed = list_dead_letters(queue, build_topology(SETTINGS), max_messages=1000)
    failures = listed["topics"][SETTINGS.topic_failures]
    assert (failures["count"], failures["complete"], listed["total"], listed["complete"]) == (250, True, 250, True)
    assert failures["letters"][0] == {"message_id": "dl-0", "bytes": 8, "preview": '{"n": 0}', "replay_count": 0,
                                      "delivery_attempts": "5", "from_subscription": None,
                                      "attributes": {"origin": "stt"}}
    assert all(t["count"] == 0 for name, t in listed["topics"].items() if name != SETTINGS.topic_failures)
    assert queue.acked == [] and queue.leased == set()
    assert sorted(queue.released) == sorted(letter.ack_id for letter in letters)
    # Looking twice sees the same letters: nothing was taken.
    assert list_dead_letters(queue, build_topology(SETTINGS), with_letters=False)["total"] == 100


def test_the_backlog_says_when_it_stopped_short_and_refuses_bad_arguments() -> None:
    queue = LeasingDeadLetters({FAILURES_SINK: [_letter(n) for n in range(5)]})
    topology = build_topology(SETTINGS)
    listed = list_dead_letters(queue, topology, topic=SETTINGS.topic_failures, max_messages=3)
    assert list(listed["topics"]) == [SETTINGS.topic_failures]
    assert (listed["total"], listed["complete"]) == (3, False)
    with pytest.raises(BadInput, match="known topics"):
        list_dead_letters(queue, topology, topic="nope")
    for bad in (0, 1001, True):
        with pytest.raises(BadInput, match="max_messages"):
            list_dead_letters(queue, topology, max_messages=bad)


def test_a_letter_is_described_with_its_replays_and_a_short_preview() -> None:
    letter = DeadLetter("a", "m", ("é" * 300).encode(), {REPLAY_COUNT: "2",
                                                        "CloudPubSubDeadLetterSourceSubscription": "failures-push"})
    described = describe_letter(letter)
    assert described["replay_count"] == 2 and described["from_subscription"] == "failures-push"
    assert described["bytes"] == 600 and described["preview"] == "é" * 200 + "…"
    assert described["attributes"] == {REPLAY_COUNT: "2"}
