"""Cloud Function (gen2) on `bucket-events`: an uploaded `dataset-requests/<name>.json` builds a dataset."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.bootstrap import adapters
from shared.observability import get_logger
from shared.push import PushedMessage, handle_push
from shared.services.dataset_builds import serve_notification
from shared.services.outcome import Outcome

log = get_logger("build_dataset")


def _handle(message: PushedMessage) -> Outcome:
    a = adapters()
    return serve_notification(message.attributes, a.settings, a.builds, a.cases, a.bucket, progress=a.progress,
                              open_bucket=a.bucket_named)


@functions_framework.cloud_event
def build_dataset(cloud_event: Any) -> None:
    """Build the requested dataset; other objects of the bucket are acknowledged untouched."""
    handle_push(cloud_event, log, _handle)
