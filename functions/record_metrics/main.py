"""Cloud Function (gen2) on `training-metrics`: keep each metric record once, in its kind's collection."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.adapters.firestore_metrics import FirestoreMetricStore
from shared.adapters.gcs_exports import GcsObjectWriter
from shared.adapters.pubsub_push import MalformedPush, decode_push
from shared.config import Settings
from shared.observability import get_logger
from shared.services.metrics import record_metric, utc_now

log = get_logger("record_metrics")


@functions_framework.cloud_event
def record_metrics(cloud_event: Any) -> None:
    """Store the pushed record; bad input is quarantined and acknowledged, store errors raise (retry)."""
    try:
        message = decode_push(cloud_event)
    except MalformedPush as exc:
        # Not a Pub/Sub push at all: nothing to keep, and a retry cannot fix it.
        log.error("rejected push", extra={"event_id": cloud_event["id"], "reason": str(exc)})
        return
    settings = Settings.from_env()
    outcome = record_metric(
        message.data,
        message.message_id,
        message.publish_time,
        FirestoreMetricStore(settings),
        utc_now(),
        objects=GcsObjectWriter(settings),
        topic=message.topic or settings.topic_metrics,
    )
    log.log(
        30 if outcome.status == "quarantined" else 20,  # WARNING / INFO: a quarantine wants a look
        outcome.status,
        extra={"event_id": message.message_id, "kind": outcome.kind, "record_id": outcome.record_id,
               "model_version": outcome.model_version, "reason": outcome.reason},
    )
