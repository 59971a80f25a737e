"""How a Pub/Sub push reaches a use case: the CloudEvent functions-framework makes of it, decoded and answered."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.domain.dead_letters import handler_message_id
from shared.errors import MalformedPush, Transient
from shared.services.outcome import Outcome


@dataclass(frozen=True)
class PushedMessage:
    """One Pub/Sub message as delivered: raw data bytes, attributes and ids."""

    message_id: str
    data: bytes
    attributes: dict[str, str]
    publish_time: str | None
    topic: str | None


def decode_push(cloud_event: Any) -> PushedMessage:
    """The Pub/Sub message inside a `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent."""
    body = cloud_event.data if isinstance(cloud_event.data, dict) else None
    message = body.get("message") if body else None
    if not isinstance(message, dict):
        raise MalformedPush("CloudEvent data has no Pub/Sub 'message' object")
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedPush(f"message data is not base64: {exc}") from exc
    source = str(cloud_event["source"] or "")
    topic = source.rsplit("/topics/", 1)[1] if "/topics/" in source else None
    attributes = {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}
    # A replayed dead letter is the message it replays (shared/domain/dead_letters.py): one id for all its replays.
    message_id = str(message.get("messageId") or message.get("message_id") or cloud_event["id"])
    return PushedMessage(
        message_id=handler_message_id(message_id, attributes),
        data=data,
        attributes=attributes,
        publish_time=message.get("publishTime") or message.get("publish_time"),
        topic=topic,
    )


def handle_push(cloud_event: Any, log: logging.Logger, handle: Callable[[PushedMessage], Outcome]) -> None:
    """Decode the push, run `handle`, log its outcome; a malformed envelope is logged and acknowledged.

    A handler keeps the bad input it finds (quarantine) and returns; anything it raises propagates, so
    functions-framework answers 500 and Pub/Sub redelivers with backoff, then dead-letters.
    """
    try:
        message = decode_push(cloud_event)
    except MalformedPush as exc:
        # Not a Pub/Sub push at all: there is no message to keep, and a retry cannot fix it.
        log.error("rejected push", extra={"event_id": cloud_event["id"], "reason": str(exc)})
        return
    try:
        outcome = handle(message)
    except Exception as exc:
        severity = logging.WARNING if isinstance(exc, Transient) else logging.ERROR
        log.log(severity, "failed, Pub/Sub will redeliver",
                extra={"event_id": message.message_id, "reason": str(exc), "error": type(exc).__name__})
        raise
    severity = logging.WARNING if outcome.status == "quarantined" else logging.INFO
    log.log(severity, outcome.status, extra={"event_id": message.message_id, **outcome.log_fields()})
