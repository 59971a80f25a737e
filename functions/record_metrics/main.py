"""Cloud Function (gen2) on `training-metrics`: keep each metric record once, in its kind's collection."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.bootstrap import adapters
from shared.clock import utc_now
from shared.observability import get_logger
from shared.push import PushedMessage, handle_push
from shared.services.metrics import record_metric
from shared.services.outcome import Outcome

log = get_logger("record_metrics")


def _handle(message: PushedMessage) -> Outcome:
    a = adapters()
    return record_metric(message.data, message.message_id, message.publish_time, a.metrics, utc_now(),
                         objects=a.bucket, topic=message.topic or a.settings.topic_metrics)


@functions_framework.cloud_event
def record_metrics(cloud_event: Any) -> None:
    """Store the pushed record; bad input is quarantined and acknowledged, store errors raise (retry)."""
    handle_push(cloud_event, log, _handle)
