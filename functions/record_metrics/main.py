"""Cloud Function (gen2) on `training-metrics`: keep each metric record once, in its kind's collection."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.adapters.firestore_metrics import FirestoreMetricStore
from shared.adapters.gcs import BucketStore
from shared.adapters.pubsub_push import PushedMessage, handle_push
from shared.config import Settings
from shared.observability import get_logger
from shared.services.metrics import Outcome, record_metric, utc_now

log = get_logger("record_metrics")


def _handle(message: PushedMessage) -> Outcome:
    settings = Settings.from_env()
    return record_metric(
        message.data,
        message.message_id,
        message.publish_time,
        FirestoreMetricStore(settings),
        utc_now(),
        objects=BucketStore(settings),
        topic=message.topic or settings.topic_metrics,
    )


@functions_framework.cloud_event
def record_metrics(cloud_event: Any) -> None:
    """Store the pushed record; bad input is quarantined and acknowledged, store errors raise (retry)."""
    handle_push(cloud_event, log, _handle)
