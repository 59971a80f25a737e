"""For the transcription service: publish failure events (validated first) in batches, get message ids back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from google.cloud import pubsub_v1

from shared.config import Settings
from shared.domain.failure_event import parse_failure_event


class FailurePublisher:
    """Publishes to `transcription-failures`; the client library batches (by count, size and latency)."""

    def __init__(
        self,
        settings: Settings | None = None,
        batch: pubsub_v1.types.BatchSettings | None = None,
        client: pubsub_v1.PublisherClient | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.client = client or pubsub_v1.PublisherClient(
            batch_settings=batch or pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.05)
        )
        self.topic = self.client.topic_path(self.settings.project, self.settings.topic_failures)

    def publish_failures(self, events: Iterable[Mapping[str, Any]], timeout_s: float = 60.0) -> list[str]:
        """Validate every event against the published schema, then publish them; returns their message ids.

        An invalid event raises InvalidEvent before anything is sent, naming its position and the reason.
        """
        payloads = []
        for position, event in enumerate(events):
            payload = orjson.dumps(dict(event))
            try:
                parse_failure_event(payload)
            except ValueError as exc:
                raise type(exc)(f"event {position}: {exc}") from None
            payloads.append(payload)
        futures = [self.client.publish(self.topic, payload) for payload in payloads]
        return [future.result(timeout=timeout_s) for future in futures]
