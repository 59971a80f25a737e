"""Cloud Storage adapter for exports: each object in a single upload, so a reader never sees half of it."""

from __future__ import annotations

from shared.adapters.clients import storage_client
from shared.config import Settings


class GcsObjectWriter:
    """Whole objects in the deployment's bucket."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def put(self, name: str, data: bytes, content_type: str) -> str:
        """Write (or replace) `name` in one upload; GCS makes the new generation visible only when complete."""
        bucket = storage_client(self.settings.project).bucket(self.settings.bucket)
        bucket.blob(name).upload_from_string(data, content_type=content_type)
        return f"gs://{self.settings.bucket}/{name}"
