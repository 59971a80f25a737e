"""The statistics counters in Firestore, and the one writer of `<prefix>quarantine`.

Counters live in `<prefix>stats_shards/<n>` (N_SHARDS documents, one picked at random per write, moved with
Increment and never read by a writer) and are summed by `DataManager.get_statistics()`. Every write that
counts rides in the same atomic write as the document it counts, created with a must-not-exist precondition:
a duplicate delivery fails the whole write and counts nothing.

Every source that rejects a payload (failure events, corrections, builds, training metrics) keeps it through
`keep_quarantined`, so each kept payload is one `quarantined` event, whichever adapter rejected it.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

from google.api_core.exceptions import AlreadyExists, Conflict
from google.cloud import firestore

from shared.config import Settings
from shared.domain.cases import CounterDelta

N_SHARDS = 16
SHARDS = "stats_shards"
QUARANTINE = "quarantine"


def increment_shards(writer: Any, shards_collection: firestore.CollectionReference, delta: CounterDelta) -> None:
    """Add `delta` to one random shard through `writer` (a batch or a transaction); nothing for an empty delta."""
    if delta.is_empty():
        return
    values: dict[str, Any] = {}
    for name, value in asdict(delta).items():
        if isinstance(value, dict):
            nested = {k: firestore.Increment(v) for k, v in value.items() if v}
            if nested:
                values[name] = nested
        elif value:
            values[name] = firestore.Increment(value)
    shard = shards_collection.document(str(random.randrange(N_SHARDS)))  # noqa: S311  # nosec B311 - spreads load, not a secret
    writer.set(shard, values, merge=True)


def keep_quarantined(client: firestore.Client, settings: Settings, quarantine_id: str, record: dict[str, Any]) -> bool:
    """Create `<prefix>quarantine/<quarantine_id>` and count it as one quarantined event, in one atomic write.

    False when the id already exists: a redelivered reject keeps nothing new and counts nothing.
    """
    batch = client.batch()
    doc = client.collection(settings.collection(QUARANTINE)).document(quarantine_id)
    batch.create(doc, {**record, "quarantined_at": firestore.SERVER_TIMESTAMP})
    increment_shards(batch, client.collection(settings.collection(SHARDS)), CounterDelta(quarantined=1))
    try:
        batch.commit()
    except (AlreadyExists, Conflict):
        return False
    return True
