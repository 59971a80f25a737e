"""Cloud Function (gen2) on `transcription-failures`: keep each failure event as a case."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.adapters.firestore_cases import FirestoreCaseStore
from shared.adapters.pubsub_push import MalformedPush, decode_push
from shared.config import Settings
from shared.observability import get_logger
from shared.services.record_failure import record_failure as record

log = get_logger("record_failure")


@functions_framework.cloud_event
def record_failure(cloud_event: Any) -> None:
    """Store the pushed event; bad input is quarantined and acknowledged, store errors raise (retry)."""
    try:
        message = decode_push(cloud_event)
    except MalformedPush as exc:
        # Not a Pub/Sub push at all: nothing to keep, and a retry cannot fix it.
        log.error("rejected push", extra={"event_id": cloud_event["id"], "reason": str(exc)})
        return
    outcome = record(message.data, message.message_id, FirestoreCaseStore(Settings.from_env()))
    log.info(
        outcome.status,
        extra={"event_id": message.message_id, "case_id": outcome.case_id, "reason": outcome.reason},
    )
