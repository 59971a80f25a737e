"""Pub/Sub adapter: publish payloads through the client library's batching, and wait for their ids."""

from __future__ import annotations

from collections.abc import Sequence

from google.cloud import pubsub_v1

from shared.adapters.clients import publisher_client
from shared.ports import Publisher


class PubSubPublisher(Publisher):
    """Topics of one project (the emulator's when PUBSUB_EMULATOR_HOST is set)."""

    def __init__(self, project: str, client: pubsub_v1.PublisherClient | None = None) -> None:
        self.project = project
        self.client = client or publisher_client()

    def publish(self, topic: str, payloads: Sequence[bytes], timeout_s: float) -> list[str]:
        """Publish every payload to `topic`; their message ids, in order."""
        path = self.client.topic_path(self.project, topic)
        futures = [self.client.publish(path, payload) for payload in payloads]
        return [str(future.result(timeout=timeout_s)) for future in futures]
