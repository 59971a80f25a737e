"""Firestore adapter for the progress of long work: `<prefix>import_progress/<id>`, `<prefix>build_progress/<id>`.

One collection per kind, so "the most recent of a kind" is one single-field `updated_at` query (an index
Firestore keeps by itself), never a composite index.
"""

from __future__ import annotations

from typing import Any

from google.cloud import firestore

from shared.adapters.clients import firestore_client
from shared.config import Settings
from shared.ports import ProgressBoard

KINDS = ("import", "build")


class FirestoreProgressBoard(ProgressBoard):
    """Progress records, one document per work id, merged note by note."""

    def __init__(self, settings: Settings, client: firestore.Client | None = None) -> None:
        self.settings = settings
        self.client = client or firestore_client(settings.project, settings.firestore_database)

    def _collection(self, kind: str) -> Any:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of work {kind!r}; known: {KINDS}")
        return self.client.collection(self.settings.collection(f"{kind}_progress"))

    def note(self, kind: str, work_id: str, fields: dict[str, Any]) -> None:
        """Merge `fields` into the work's record, stamped with the server's time."""
        record = {**fields, "kind": kind, "work_id": work_id, "updated_at": firestore.SERVER_TIMESTAMP}
        self._collection(kind).document(work_id).set(record, merge=True)

    def get(self, kind: str, work_id: str) -> dict[str, Any] | None:
        """The work's record, or None."""
        snapshot = self._collection(kind).document(work_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    def recent(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The records of `kind` noted most recently, newest first."""
        query = self._collection(kind).order_by("updated_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [snapshot.to_dict() or {} for snapshot in query.stream()]
