"""Cloud Function (gen2) on `transcription-failures`: keep each failure event as a case, exactly once."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.bootstrap import adapters
from shared.observability import get_logger
from shared.push import PushedMessage, handle_push
from shared.services.ingestion import record_failure as record
from shared.services.outcome import Outcome

log = get_logger("record_failure")


def _handle(message: PushedMessage) -> Outcome:
    return record(message.data, message.message_id, adapters().cases)


@functions_framework.cloud_event
def record_failure(cloud_event: Any) -> None:
    """Store the pushed failure event; bad input is quarantined and acknowledged, store errors are retried."""
    handle_push(cloud_event, log, _handle)
