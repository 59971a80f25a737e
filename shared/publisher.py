"""For the transcription service: publish failure events (validated first) in batches, get message ids back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from shared import bootstrap
from shared.config import Settings
from shared.domain.failure_event import parse_failure_event
from shared.errors import InvalidEvent


class FailurePublisher:
    """Publishes to `transcription-failures`; the client library batches (by count, size and latency)."""

    def __init__(self, settings: Settings | None = None, *, adapters: bootstrap.Adapters | None = None) -> None:
        self.adapters = adapters or bootstrap.adapters(settings)
        self.settings = self.adapters.settings

    def publish_failures(self, events: Iterable[Mapping[str, Any]], timeout_s: float = 60.0) -> list[str]:
        """Validate every event against the published schema, then publish them; returns their message ids.

        An invalid event raises InvalidEvent before anything is sent, naming its position and the reason.
        """
        payloads = []
        for position, event in enumerate(events):
            payload = orjson.dumps(dict(event))
            try:
                parse_failure_event(payload, self.settings.resolved_audio_root())
            except InvalidEvent as exc:
                raise InvalidEvent(f"event {position}: {exc.reason}") from None
            payloads.append(payload)
        return self.adapters.publisher.publish(self.settings.topic_failures, payloads, timeout_s)
