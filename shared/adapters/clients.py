"""Google clients, created lazily and once per instance (never at import time)."""

from __future__ import annotations

from functools import cache

from google.cloud import firestore, pubsub_v1, storage


@cache
def firestore_client(project: str, database: str = "(default)") -> firestore.Client:
    """The Firestore client of `project`'s `database` (honours FIRESTORE_EMULATOR_HOST)."""
    return firestore.Client(project=project, database=database)


@cache
def storage_client(project: str) -> storage.Client:
    """The Cloud Storage client of `project` (honours STORAGE_EMULATOR_HOST)."""
    return storage.Client(project=project)


@cache
def publisher_client() -> pubsub_v1.PublisherClient:
    """The Pub/Sub publisher (honours PUBSUB_EMULATOR_HOST), batching up to 500 messages or 50 ms."""
    return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=500, max_latency=0.05))


@cache
def subscriber_client() -> pubsub_v1.SubscriberClient:
    """The Pub/Sub subscriber (honours PUBSUB_EMULATOR_HOST), for pulls from the dead-letter subscriptions."""
    return pubsub_v1.SubscriberClient()
