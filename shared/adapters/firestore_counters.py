"""The statistics counters in Firestore, and the one writer of `<prefix>quarantine`.

Counters live in `<prefix>stats_shards/<n>` (N_SHARDS documents, one picked at random per write, moved with
Increment and never read by a writer) and are summed by `DataManager.get_statistics()`. Every write that
counts rides in the same atomic write as the document it counts, created with a must-not-exist precondition:
a duplicate delivery fails the whole write and counts nothing.

Cases per model version are not keys of the shards (each new model version would add a key to every shard, and
a document holds 1 MiB and 40,000 index entries): each model version has its own N_SHARDS counter documents,
`<prefix>model_counters/<sha256 of the name, 32 hex>-<n>` = {model_version, cases}, written in the same atomic
write. A reader gets them with one query capped at MAX_MODEL_COUNTER_DOCS documents (a model version with k cases
has at most min(k, N_SHARDS) of them). Shards written before this layout may still hold a `model_versions` map;
`summarize` adds both, so nothing has to be migrated.

Every source that rejects a payload (failure events, corrections, builds, training metrics) keeps it through
`keep_quarantined`, so each kept payload is one `quarantined` event, whichever adapter rejected it. A record
carries `expire_at`, `quarantine_retention_days` after it was kept (none when that is 0): Firestore's TTL policy
on that field (infra/) deletes it then, as the bucket's lifecycle deletes its whole copy under quarantine/. The
count stays: `quarantined_events` is how many were ever kept.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from google.api_core.exceptions import AlreadyExists, Conflict
from google.cloud import firestore

from shared.clock import utc_now
from shared.config import Settings
from shared.domain.cases import CounterDelta

N_SHARDS = 16
SHARDS = "stats_shards"
QUARANTINE = "quarantine"
EXPIRE_FIELD = "expire_at"  # the quarantine's TTL field
MODEL_COUNTERS = "model_counters"
# Read cap of the per-model counters: 1,250 model versions with cases in every shard (more with fewer cases).
MAX_MODEL_COUNTER_DOCS = 20_000


def model_counter_id(model_version: str, shard: int) -> str:
    """The document id of `model_version`'s counter shard `shard` (a name may hold `/` or be 1,500 bytes long)."""
    return f"{hashlib.sha256(model_version.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}-{shard}"


def delta_without_models(delta: CounterDelta) -> CounterDelta:
    """`delta` without its per-model counts (those go to their own documents)."""
    return CounterDelta(**{**asdict(delta), "model_versions": {}})


def increment_shards(
    writer: Any, shards_collection: firestore.CollectionReference, delta: CounterDelta,
    models_collection: firestore.CollectionReference | None = None,
) -> None:
    """Add `delta` to one random shard through `writer` (a batch or a transaction), its per-model counts to the
    same shard number of each model version's counters in `models_collection`; nothing for an empty delta."""
    if delta.is_empty():
        return
    n = random.randrange(N_SHARDS)  # noqa: S311  # nosec B311 - spreads load, not a secret
    models = {name: count for name, count in delta.model_versions.items() if count}
    if models:
        if models_collection is None:
            raise ValueError("per-model counts need the model counters' collection")
        for name, count in models.items():
            writer.set(models_collection.document(model_counter_id(name, n)),
                       {"model_version": name, "cases": firestore.Increment(count)}, merge=True)
    values: dict[str, Any] = {}
    for name, value in asdict(delta_without_models(delta)).items():
        if isinstance(value, dict):
            nested = {k: firestore.Increment(v) for k, v in value.items() if v}
            if nested:
                values[name] = nested
        elif value:
            values[name] = firestore.Increment(value)
    if values:
        writer.set(shards_collection.document(str(n)), values, merge=True)


def model_counter_rows(models_collection: firestore.CollectionReference) -> list[dict[str, Any]]:
    """The per-model counter documents as shards to be summed (`{"model_versions": {name: cases}}` each), read
    with one query of at most MAX_MODEL_COUNTER_DOCS documents."""
    query = models_collection.select(["model_version", "cases"]).limit(MAX_MODEL_COUNTER_DOCS)
    rows = []
    for snapshot in query.stream():
        doc = snapshot.to_dict() or {}
        if isinstance(doc.get("model_version"), str):
            rows.append({"model_versions": {doc["model_version"]: int(doc.get("cases", 0))}})
    return rows


def keep_quarantined(client: firestore.Client, settings: Settings, quarantine_id: str, record: dict[str, Any]) -> bool:
    """Create `<prefix>quarantine/<quarantine_id>` and count it as one quarantined event, in one atomic write.

    False when the id already exists: a redelivered reject keeps nothing new and counts nothing.
    """
    batch = client.batch()
    doc = client.collection(settings.collection(QUARANTINE)).document(quarantine_id)
    kept = {**record, "quarantined_at": firestore.SERVER_TIMESTAMP}
    if settings.quarantine_retention_days > 0:
        kept[EXPIRE_FIELD] = utc_now() + timedelta(days=settings.quarantine_retention_days)
    batch.create(doc, kept)
    increment_shards(batch, client.collection(settings.collection(SHARDS)), CounterDelta(quarantined=1))
    try:
        batch.commit()
    except (AlreadyExists, Conflict):
        return False
    return True
