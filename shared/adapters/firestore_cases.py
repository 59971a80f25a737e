"""Firestore adapter for cases and quarantined payloads."""

from __future__ import annotations

from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from shared.adapters.clients import firestore_client
from shared.config import Settings


class FirestoreCaseStore:
    """Cases in `<prefix>failed_cases`, rejected payloads in `<prefix>quarantine`."""

    def __init__(self, settings: Settings, client: firestore.Client | None = None) -> None:
        self.settings = settings
        self.client = client or firestore_client(settings.project)

    def create_case(self, case_id: str, case: dict[str, Any]) -> bool:
        """Create-if-absent: a redelivered event finds the document and changes nothing."""
        doc = self.client.collection(self.settings.collection("failed_cases")).document(case_id)
        try:
            doc.create({**case, "created_at": firestore.SERVER_TIMESTAMP})
        except AlreadyExists:
            return False
        return True

    def quarantine(self, quarantine_id: str, record: dict[str, Any]) -> bool:
        """Keep a rejected payload once, keyed by the delivery's message id."""
        doc = self.client.collection(self.settings.collection("quarantine")).document(quarantine_id)
        try:
            doc.create({**record, "quarantined_at": firestore.SERVER_TIMESTAMP})
        except AlreadyExists:
            return False
        return True
