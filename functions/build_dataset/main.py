"""Cloud Function (gen2) on `bucket-events`: an uploaded `dataset-requests/<name>.json` builds a dataset."""

from __future__ import annotations

from typing import Any

import functions_framework

from shared.adapters.firestore_builds import FirestoreBuildLedger
from shared.adapters.gcs import BucketStore
from shared.adapters.pubsub_push import PushedMessage, handle_push
from shared.bootstrap import case_store
from shared.config import Settings
from shared.observability import get_logger
from shared.services.dataset_builds import is_build_request, run_build_request

log = get_logger("build_dataset")

# What the log line of a build keeps of its result (the whole result is in dataset_results/ and Firestore).
_LOGGED = ("status", "object", "dataset_id", "version_id", "total_samples", "split_sizes", "reason")


def _handle(message: PushedMessage) -> dict[str, Any]:
    settings = Settings.from_env()
    if not is_build_request(message.attributes, settings):
        return {"status": "ignored", "object": message.attributes.get("objectId")}
    store = case_store(settings)
    result = run_build_request(
        message.attributes["objectId"],
        message.attributes.get("objectGeneration"),
        ledger=FirestoreBuildLedger(settings),
        cases=store,
        bucket=BucketStore(settings),
        quarantine=store,
    )
    return {key: result[key] for key in _LOGGED if key in result}


@functions_framework.cloud_event
def build_dataset(cloud_event: Any) -> None:
    """Build the requested dataset; other objects of the bucket are acknowledged untouched."""
    handle_push(cloud_event, log, _handle)
