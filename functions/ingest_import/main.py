"""Cloud Function (gen2) on `bucket-events`: an uploaded `imports/<name>.jsonl` is ingested line by line."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.bootstrap import adapters
from shared.observability import get_logger
from shared.push import PushedMessage, handle_push
from shared.services.bulk_import import serve_notification
from shared.services.outcome import Outcome

log = get_logger("ingest_import")


def _handle(message: PushedMessage) -> Outcome:
    a = adapters()
    return serve_notification(message.attributes, a.settings, a.cases, a.bucket, progress=a.progress)


@functions_framework.cloud_event
def ingest_import(cloud_event: Any) -> None:
    """Import the notified object; other objects of the bucket are acknowledged untouched."""
    handle_push(cloud_event, log, _handle)
