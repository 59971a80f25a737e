"""Firestore adapter for metric records, their quarantine and the performance snapshots.

Every performance record is written together with a small copy of its point in `<prefix>performance_recent`
(one commit, one server timestamp): the trend's tail query reads that small collection, never the whole
history, and each snapshot prunes the entries it already holds.

A rejected record is kept in `<prefix>quarantine` by `keep_quarantined` (shared/adapters/firestore_counters.py),
the writer every source shares: in the same atomic write it counts one `quarantined` event in the statistics
shards (`<prefix>stats_shards`), so `DataManager.get_statistics()["quarantined_events"]` includes metric rejects.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson
from google.api_core.exceptions import AlreadyExists, InvalidArgument
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.adapters.clients import firestore_client
from shared.adapters.firestore_counters import keep_quarantined
from shared.config import Settings
from shared.domain.metric_history import KIND_COLLECTIONS, POINT_FIELDS, SNAPSHOT_OVERLAP, Snapshot
from shared.domain.trends import as_utc
from shared.errors import UnstorableRecord
from shared.ports import MetricStore

SNAPSHOTS = "metric_snapshots"
SNAPSHOT_HEADER = "performance"
# Performance points stored since the published snapshot (minus SNAPSHOT_OVERLAP), one document per record.
RECENT = "performance_recent"
# Headers written before the recent collection existed do not promise it is complete: they are ignored.
SNAPSHOT_FORMAT = 2
# Points per snapshot chunk: ~300 bytes of JSON each at worst, so a compressed chunk stays far below 1 MiB.
CHUNK_POINTS = 1000


class FirestoreMetricStore(MetricStore):
    """Records in `<prefix>performance_history`, `model_versions`, `learning_progress`, `inference_stats`."""

    def __init__(self, settings: Settings, client: firestore.Client | None = None) -> None:
        self.settings = settings
        self.client = client or firestore_client(settings.project, settings.firestore_database)

    def collection(self, kind: str) -> firestore.CollectionReference:
        """The collection of a record kind."""
        return self.client.collection(self.settings.collection(KIND_COLLECTIONS[kind]))

    def create(self, kind: str, record_id: str, document: dict[str, Any]) -> bool:
        """Create-if-absent: a redelivered record finds its document and changes nothing."""
        doc = self.collection(kind).document(record_id)
        try:
            batch = self.client.batch()
            batch.create(doc, {**document, "stored_at": firestore.SERVER_TIMESTAMP})
            if kind == "performance":
                # One commit, so one stored_at; a redelivery fails the create and writes neither document.
                point = {name: document.get(name) for name in POINT_FIELDS if name != "stored_at"}
                batch.set(self._recent().document(record_id), {**point, "stored_at": firestore.SERVER_TIMESTAMP})
            batch.commit()
        except AlreadyExists:
            return False
        except InvalidArgument as exc:
            raise UnstorableRecord(f"Firestore cannot store this record: {exc.message}") from None
        except ValueError as exc:
            # Raised while encoding, before any request: integers beyond 64 bits, empty field names.
            raise UnstorableRecord(f"Firestore cannot store this record: {exc}") from None
        return True

    def quarantine(self, quarantine_id: str, record: dict[str, Any]) -> bool:
        """Keep a rejected payload once in `<prefix>quarantine` (shared with the other sources), counted as a
        quarantined event; False (nothing counted) when this id is already kept."""
        return keep_quarantined(self.client, self.settings, quarantine_id, record)

    def records(self, kind: str) -> Iterator[dict[str, Any]]:
        """Every stored record of `kind`."""
        for snapshot in self.collection(kind).stream():
            yield snapshot.to_dict() or {}

    def performance_points(self, since: datetime | None) -> list[dict[str, Any]]:
        """POINT_FIELDS of performance records stored at or after `since` (None: all of them)."""
        query: Any = self.collection("performance").select(list(POINT_FIELDS))
        if since is not None:
            query = query.where(filter=FieldFilter("stored_at", ">=", since))
        return [snapshot.to_dict() or {} for snapshot in query.stream()]

    def recent_points(self, since: datetime, *, after: bool = False) -> list[dict[str, Any]]:
        """Points of the performance records stored at or after `since` (after it: `after`), from the recent ones."""
        query = self._recent().where(filter=FieldFilter("stored_at", ">" if after else ">=", since))
        return [snapshot.to_dict() or {} for snapshot in query.stream()]

    def recent_count(self, since: datetime, until: datetime) -> int:
        """How many recent points were stored from `since` to `until`: one aggregation, no document read."""
        query = self._recent().where(filter=FieldFilter("stored_at", ">=", since)).where(
            filter=FieldFilter("stored_at", "<=", until))
        return int(query.count().get()[0][0].value)

    def _recent(self) -> firestore.CollectionReference:
        return self.client.collection(self.settings.collection(RECENT))

    def records_of_version(
        self, kind: str, version_id: str, fields: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Records of `kind` whose model_version is `version_id`."""
        query: Any = self.collection(kind).where(filter=FieldFilter("model_version", "==", version_id))
        if fields is not None:
            query = query.select(list(fields))
        return [snapshot.to_dict() or {} for snapshot in query.stream()]

    def _snapshots(self) -> firestore.CollectionReference:
        return self.client.collection(self.settings.collection(SNAPSHOTS))

    def _header(self) -> firestore.DocumentReference:
        return self._snapshots().document(SNAPSHOT_HEADER)

    def snapshot_generation(self) -> str | None:
        """The generation the header names now (one small read), None without a usable snapshot."""
        header = self._header().get()
        meta = (header.to_dict() or {}) if header.exists else {}
        return str(meta["generation"]) if meta.get("format") == SNAPSHOT_FORMAT else None

    def load_snapshot(self) -> Snapshot | None:
        """The snapshot the header names; None when there is none or it was replaced while reading."""
        for _ in range(2):  # a header flip between the two reads: read the new header once
            header = self._header().get()
            meta = (header.to_dict() or {}) if header.exists else {}
            if meta.get("format") != SNAPSHOT_FORMAT:
                return None  # none, or written before the recent collection: a full read rebuilds it
            refs = [self._snapshots().document(f"{SNAPSHOT_HEADER}-{meta['generation']}-{i}")
                    for i in range(int(meta["chunks"]))]
            chunks = {doc.id: doc.get("data") for doc in self.client.get_all(refs) if doc.exists}
            if len(chunks) == len(refs):
                points: list[dict[str, Any]] = []
                for ref in refs:
                    points.extend(orjson.loads(zlib.decompress(chunks[ref.id])))
                return Snapshot(points, as_utc(meta.get("watermark")), str(meta["generation"]),
                                meta.get("overlap_count"))
        return None

    def save_snapshot(self, snapshot: Snapshot) -> str:
        """Chunks first, then the header flip (never to an older watermark), then old chunks and recent points go."""
        generation = uuid.uuid4().hex
        batch = self.client.batch()
        starts = range(0, max(len(snapshot.points), 1), CHUNK_POINTS)
        for i, start in enumerate(starts):
            data = zlib.compress(orjson.dumps(snapshot.points[start : start + CHUNK_POINTS]), 1)
            batch.set(self._chunk(generation, i), {"data": data})
            if (i + 1) % 20 == 0:  # keep each commit well under the 10 MiB request limit
                batch.commit()
                batch = self.client.batch()
        batch.commit()
        header = {"generation": generation, "chunks": len(starts), "count": len(snapshot.points),
                  "watermark": snapshot.watermark, "overlap_count": snapshot.overlap_count,
                  "format": SNAPSHOT_FORMAT, "built_at": firestore.SERVER_TIMESTAMP}
        published, replaced = self._flip(self.client.transaction(), header)
        if not published:  # a concurrent refresh published a newer snapshot: it stays, ours goes
            self._delete_chunks(generation, len(starts))
            return str(replaced["generation"])
        if replaced.get("generation"):
            self._delete_chunks(str(replaced["generation"]), int(replaced.get("chunks", 0)))
        if snapshot.watermark is not None:
            self._prune_recent(snapshot.watermark - SNAPSHOT_OVERLAP)
        return generation

    def _chunk(self, generation: str, index: int) -> firestore.DocumentReference:
        return self._snapshots().document(f"{SNAPSHOT_HEADER}-{generation}-{index}")

    def _flip(self, transaction: firestore.Transaction, header: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Publish `header` unless the current one has a later watermark; (published, the other header)."""

        @firestore.transactional
        def flip(tx: firestore.Transaction) -> tuple[bool, dict[str, Any]]:
            current = self._header().get(transaction=tx)
            meta = (current.to_dict() or {}) if current.exists else {}
            theirs, ours = as_utc(meta.get("watermark")), header["watermark"]
            if meta.get("format") == SNAPSHOT_FORMAT and theirs is not None and (ours is None or ours < theirs):
                return False, meta
            tx.set(self._header(), header)
            return True, meta

        return flip(transaction)

    def _delete_chunks(self, generation: str, chunks: int) -> None:
        for start in range(0, chunks, 400):  # a batch holds at most 500 writes
            batch = self.client.batch()
            for i in range(start, min(start + 400, chunks)):
                batch.delete(self._chunk(generation, i))
            batch.commit()

    def _prune_recent(self, before: datetime) -> int:
        """Delete recent points stored before `before` (the published snapshot holds them); how many."""
        query = self._recent().where(filter=FieldFilter("stored_at", "<", before)).select([])
        refs = [snapshot.reference for snapshot in query.stream()]
        for start in range(0, len(refs), 400):
            batch = self.client.batch()
            for ref in refs[start : start + 400]:
                batch.delete(ref)
            batch.commit()
        return len(refs)
