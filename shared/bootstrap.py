"""The one place that wires the real adapters to the use cases (functions and the Python API call it)."""

from __future__ import annotations

from shared.adapters.firestore_cases import FirestoreCaseStore
from shared.adapters.gcs import BucketStore
from shared.config import Settings


def case_store(settings: Settings) -> FirestoreCaseStore:
    """Cases, counters and quarantine in Firestore; oversize rejects kept whole in the bucket."""
    return FirestoreCaseStore(settings, overflow=BucketStore(settings))
