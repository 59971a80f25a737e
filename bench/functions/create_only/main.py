"""The least a storing function can do: one Firestore create per push. The floor for record_failure's write."""

import os
from typing import Any

import functions_framework
from google.cloud import firestore

_client: firestore.Client | None = None


@functions_framework.cloud_event
def create_only(cloud_event: Any) -> None:
    """Create one document keyed by the message id, with the time Firestore stored it."""
    global _client
    if _client is None:
        _client = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    prefix = os.environ.get("STT_COLLECTION_PREFIX", "")
    _client.collection(f"{prefix}created").document(str(cloud_event["id"])).create(
        {"message_id": str(cloud_event["id"]), "created_at": firestore.SERVER_TIMESTAMP}
    )
