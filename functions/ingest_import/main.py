"""Cloud Function (gen2) on `bucket-events`: an uploaded `imports/<name>.jsonl` is ingested line by line."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.adapters.gcs import BucketStore
from shared.adapters.pubsub_push import PushedMessage, handle_push
from shared.bootstrap import case_store
from shared.config import Settings
from shared.observability import get_logger
from shared.services.bulk_import import is_import_notification, run_import

log = get_logger("ingest_import")


def _handle(message: PushedMessage) -> dict[str, Any]:
    settings = Settings.from_env()
    if not is_import_notification(message.attributes, settings):
        return {"status": "ignored", "object": message.attributes.get("objectId")}
    result = run_import(
        message.attributes["objectId"],
        message.attributes.get("objectGeneration"),
        case_store(settings),
        BucketStore(settings),
    )
    return {key: result[key] for key in ("status", "object", "lines", "accepted", "duplicates", "rejected")}


@functions_framework.cloud_event
def ingest_import(cloud_event: Any) -> None:
    """Import the notified object; other objects of the bucket are acknowledged untouched."""
    handle_push(cloud_event, log, _handle)
