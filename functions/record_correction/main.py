"""Cloud Function (gen2) on `transcription-corrections`: add a correction to its case, keeping the history."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.bootstrap import adapters
from shared.observability import get_logger
from shared.push import handle_push
from shared.services.ingestion import record_correction as correct

log = get_logger("record_correction")


@functions_framework.cloud_event
def record_correction(cloud_event: Any) -> None:
    """Apply the pushed correction; bad input or an unknown case is quarantined, store errors are retried."""
    handle_push(cloud_event, log, lambda message: correct(message.data, message.message_id, adapters().cases))
