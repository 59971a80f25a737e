"""Cloud Function (gen2) on `transcription-failures`: keep each failure event as a case, exactly once."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.adapters.pubsub_push import PushedMessage, handle_push
from shared.bootstrap import case_store
from shared.config import Settings
from shared.observability import get_logger
from shared.services.ingestion import Outcome
from shared.services.ingestion import record_failure as record

log = get_logger("record_failure")


def _handle(message: PushedMessage) -> Outcome:
    return record(message.data, message.message_id, case_store(Settings.from_env()))


@functions_framework.cloud_event
def record_failure(cloud_event: Any) -> None:
    """Store the pushed failure event; bad input is quarantined and acknowledged, store errors are retried."""
    handle_push(cloud_event, log, _handle)
