"""Pub/Sub adapter for the dead-letter subscriptions: synchronous pull, acknowledge, republish with attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.api_core.exceptions import DeadlineExceeded
from google.cloud import pubsub_v1

from shared.adapters.clients import publisher_client, subscriber_client
from shared.domain.dead_letters import DeadLetter
from shared.ports import DeadLetterQueue

# How long one pull waits for messages: an empty subscription answers nothing until then, so each empty
# dead-letter subscription costs a replay this long; a letter Pub/Sub had not handed out by then waits for the
# next replay.
PULL_TIMEOUT_S = 2.0


class PubSubDeadLetters(DeadLetterQueue):
    """The dead-letter subscriptions of one project (the emulator's when PUBSUB_EMULATOR_HOST is set)."""

    def __init__(
        self, project: str, subscriber: pubsub_v1.SubscriberClient | None = None,
        publisher: pubsub_v1.PublisherClient | None = None,
    ) -> None:
        self.project = project
        self._subscriber = subscriber
        self._publisher = publisher

    @property
    def subscriber(self) -> pubsub_v1.SubscriberClient:
        if self._subscriber is None:
            self._subscriber = subscriber_client()
        return self._subscriber

    @property
    def publisher(self) -> pubsub_v1.PublisherClient:
        if self._publisher is None:
            self._publisher = publisher_client()
        return self._publisher

    def pull(self, subscription: str, max_messages: int) -> list[DeadLetter]:
        """Up to `max_messages` dead letters, [] when none arrived within PULL_TIMEOUT_S."""
        path = self.subscriber.subscription_path(self.project, subscription)
        try:
            response = self.subscriber.pull(request={"subscription": path, "max_messages": max_messages},
                                            timeout=PULL_TIMEOUT_S, retry=None)
        except DeadlineExceeded:
            return []
        return [DeadLetter(ack_id=received.ack_id, message_id=received.message.message_id,
                           data=bytes(received.message.data), attributes=dict(received.message.attributes))
                for received in response.received_messages]

    def ack(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """Acknowledge pulled dead letters."""
        if ack_ids:
            path = self.subscriber.subscription_path(self.project, subscription)
            self.subscriber.acknowledge(request={"subscription": path, "ack_ids": list(ack_ids)})

    def release(self, subscription: str, ack_ids: Sequence[str]) -> None:
        """A zero ack deadline: Pub/Sub hands the dead letters out again at once."""
        if ack_ids:
            path = self.subscriber.subscription_path(self.project, subscription)
            self.subscriber.modify_ack_deadline(
                request={"subscription": path, "ack_ids": list(ack_ids), "ack_deadline_seconds": 0})

    def republish(self, topic: str, data: bytes, attributes: Mapping[str, str], timeout_s: float) -> str:
        """Publish one message with attributes; its id once Pub/Sub has it."""
        future = self.publisher.publish(self.publisher.topic_path(self.project, topic), data, **dict(attributes))
        return str(future.result(timeout=timeout_s))
