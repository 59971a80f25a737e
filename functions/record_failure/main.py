"""Cloud Function (gen2) on `transcription-failures`: keep each failure event as a case, exactly once."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.bootstrap import adapters
from shared.observability import get_logger
from shared.push import handle_push
from shared.services.ingestion import record_failure as record

log = get_logger("record_failure")


@functions_framework.cloud_event
def record_failure(cloud_event: Any) -> None:
    """Store the pushed failure event; bad input is quarantined and acknowledged, store errors are retried."""
    a = adapters()
    root = a.settings.resolved_audio_root()
    handle_push(cloud_event, log, lambda message: record(message.data, message.message_id, a.cases,
                                                          audio_root=root))
