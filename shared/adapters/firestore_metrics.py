"""Firestore adapter for metric records, their quarantine and the performance snapshots."""

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
from shared.config import Settings
from shared.domain.trends import as_utc
from shared.services.metrics import KIND_COLLECTIONS, POINT_FIELDS, Snapshot, UnstorableRecord

SNAPSHOTS = "metric_snapshots"
SNAPSHOT_HEADER = "performance"
# Points per snapshot chunk: ~300 bytes of JSON each at worst, so a compressed chunk stays far below 1 MiB.
CHUNK_POINTS = 1000


class FirestoreMetricStore:
    """Records in `<prefix>performance_history`, `model_versions`, `learning_progress`, `inference_stats`."""

    def __init__(self, settings: Settings, client: firestore.Client | None = None) -> None:
        self.settings = settings
        self.client = client or firestore_client(settings.project)

    def collection(self, kind: str) -> firestore.CollectionReference:
        """The collection of a record kind."""
        return self.client.collection(self.settings.collection(KIND_COLLECTIONS[kind]))

    def create(self, kind: str, record_id: str, document: dict[str, Any]) -> bool:
        """Create-if-absent: a redelivered record finds its document and changes nothing."""
        doc = self.collection(kind).document(record_id)
        try:
            doc.create({**document, "stored_at": firestore.SERVER_TIMESTAMP})
        except AlreadyExists:
            return False
        except InvalidArgument as exc:
            raise UnstorableRecord(f"Firestore cannot store this record: {exc.message}") from None
        except ValueError as exc:
            # Raised while encoding, before any request: integers beyond 64 bits, empty field names.
            raise UnstorableRecord(f"Firestore cannot store this record: {exc}") from None
        return True

    def quarantine(self, quarantine_id: str, record: dict[str, Any]) -> bool:
        """Keep a rejected payload once in `<prefix>quarantine` (shared with the other sources)."""
        doc = self.client.collection(self.settings.collection("quarantine")).document(quarantine_id)
        try:
            doc.create({**record, "quarantined_at": firestore.SERVER_TIMESTAMP})
        except AlreadyExists:
            return False
        return True

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

    def load_snapshot(self) -> Snapshot | None:
        """The snapshot the header names; None when there is none or it was replaced while reading."""
        for _ in range(2):  # a header flip between the two reads: read the new header once
            header = self._snapshots().document(SNAPSHOT_HEADER).get()
            if not header.exists:
                return None
            meta = header.to_dict() or {}
            refs = [self._snapshots().document(f"{SNAPSHOT_HEADER}-{meta['generation']}-{i}")
                    for i in range(int(meta["chunks"]))]
            chunks = {doc.id: doc.to_dict() for doc in self.client.get_all(refs) if doc.exists}
            if len(chunks) == len(refs):
                points: list[dict[str, Any]] = []
                for ref in refs:
                    points.extend(orjson.loads(zlib.decompress(chunks[ref.id]["data"])))
                return Snapshot(points, as_utc(meta.get("watermark")), str(meta["generation"]))
        return None

    def save_snapshot(self, snapshot: Snapshot) -> str:
        """Chunks of the new generation first, then the header flip, then the old chunks go."""
        generation = uuid.uuid4().hex
        old = self._snapshots().document(SNAPSHOT_HEADER).get()
        batch = self.client.batch()
        starts = range(0, max(len(snapshot.points), 1), CHUNK_POINTS)
        for i, start in enumerate(starts):
            data = zlib.compress(orjson.dumps(snapshot.points[start : start + CHUNK_POINTS]), 1)
            batch.set(self._snapshots().document(f"{SNAPSHOT_HEADER}-{generation}-{i}"), {"data": data})
            if (i + 1) % 20 == 0:  # keep each commit well under the 10 MiB request limit
                batch.commit()
                batch = self.client.batch()
        batch.commit()
        self._snapshots().document(SNAPSHOT_HEADER).set(
            {"generation": generation, "chunks": len(starts), "count": len(snapshot.points),
             "watermark": snapshot.watermark, "built_at": firestore.SERVER_TIMESTAMP}
        )
        if old.exists:
            meta = old.to_dict() or {}
            chunks = int(meta.get("chunks", 0))
            for start in range(0, chunks, 400):  # a batch holds at most 500 writes
                batch = self.client.batch()
                for i in range(start, min(start + 400, chunks)):
                    batch.delete(self._snapshots().document(f"{SNAPSHOT_HEADER}-{meta['generation']}-{i}"))
                batch.commit()
        return generation
