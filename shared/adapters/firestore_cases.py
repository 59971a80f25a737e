"""Firestore adapter for cases, the statistics they count and the payloads their sources reject.

The counters (`<prefix>stats_shards/<n>`) and the quarantine writer live in shared/adapters/firestore_counters.py,
shared with the metrics adapter. A case moves its counters through `increment_shards` in the same atomic write
as the case itself: a case created with a must-not-exist precondition, so a duplicate delivery fails the whole
write and counts nothing. A reject is kept and counted by `keep_quarantined`, once per id.

A case keeps the newest entries of its correction history in itself, at most shared/domain/cases.py's
`history_budget`; older entries move, in the same atomic write, to `<case>/correction_history/<number>` (numbered
from 1, oldest first) and the case counts them in `corrections_archived`. So no number of corrections outgrows the
1 MiB document, and every read puts the history back together: a case is returned with its whole `corrections`
list, as the port promises, and without `corrections_archived`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NamedTuple

from google.api_core.exceptions import AlreadyExists, Conflict, InvalidArgument
from google.cloud import firestore

from shared.adapters.clients import firestore_client
from shared.adapters.firestore_counters import (
    MODEL_COUNTERS,
    N_SHARDS,
    QUARANTINE,
    SHARDS,
    increment_shards,
    keep_quarantined,
    model_counter_rows,
)
from shared.config import Settings
from shared.domain import bucket_layout as layout
from shared.domain.case_snapshot import SOURCE_FIELDS
from shared.domain.cases import CounterDelta, entries_to_move_out, history_room
from shared.domain.firestore_limits import storage_size
from shared.domain.quarantine import needs_whole_copy, quarantine_record
from shared.errors import BadInput, UnstorableRecord
from shared.ports import Bucket, CaseStore

MAX_BATCH = 500  # Firestore's limit of writes in one commit
GET_ALL_BATCH = 500  # documents read per get_all round trip
# The commit time of a case's last single write (not set by bulk imports, which write the snapshot themselves):
# the case snapshot's tail reads the cases changed since its watermark by it (an index read in Firestore).
TAIL_FIELD = "tail_at"
# Where an imported case came from: a redelivered import knows its own lines from another's.
ORIGIN_FIELDS = ["import_id", "import_line"]
# The correction entries moved out of a case (its subcollection), and how many of them the case has there.
HISTORY = "correction_history"
ARCHIVED_FIELD = "corrections_archived"
# What one commit may carry (as storage_size counts it): below Firestore's 10 MiB request, and the emulator's 4 MiB
# gRPC message.
COMMIT_BYTES = 3 * 1024 * 1024
# One case's share of a commit: its document, the shard and its model counters.
_CASE_WRITE_BYTES = 2048


class _Split(NamedTuple):
    """A case as stored: its document, the history entries it moves out, and their storage_size."""

    stored: dict[str, Any]
    moved: list[tuple[int, dict[str, Any]]]
    stored_bytes: int
    moved_bytes: int


class _NewCase(NamedTuple):
    """A case to create: its id, its counters and the case split as stored."""

    case_id: str
    delta: CounterDelta
    split: _Split


@contextmanager
def _refused_as_unstorable() -> Iterator[None]:
    """A write Firestore refuses for what it holds is UnstorableRecord (bad input: kept, never retried).

    Refused by the server (InvalidArgument: an array in an array, a reserved name, a document over 1 MiB) or
    by the client while encoding (ValueError: an integer beyond 64 bits, an empty field name). The event
    validation refuses these first (shared/domain/firestore_limits.py); this is for what it does not foresee.
    """
    try:
        yield
    except BadInput:
        raise
    except InvalidArgument as exc:
        raise UnstorableRecord(f"Firestore cannot store this case: {exc.message}") from None
    except ValueError as exc:
        raise UnstorableRecord(f"Firestore cannot store this case: {exc}") from None


class FirestoreCaseStore(CaseStore):
    """Cases in `<prefix>failed_cases`, counters in `<prefix>stats_shards`, rejects in `<prefix>quarantine`."""

    def __init__(
        self, settings: Settings, client: firestore.Client | None = None, overflow: Bucket | None = None
    ) -> None:
        self.settings = settings
        self.overflow = overflow  # where a rejected payload too large for a document is kept whole
        self.client = client or firestore_client(settings.project, settings.firestore_database)
        self.cases = self.client.collection(settings.collection("failed_cases"))
        self.shards = self.client.collection(settings.collection(SHARDS))
        self.models = self.client.collection(settings.collection(MODEL_COUNTERS))
        self.rejects = self.client.collection(settings.collection(QUARANTINE))
        self.imports = self.client.collection(settings.collection("imports"))

    # -- writes ---------------------------------------------------------------------------------------------

    def create_case(self, case_id: str, case: dict[str, Any], delta: CounterDelta) -> bool:
        """Create-if-absent with its counters, atomically; False when the case already exists; UnstorableRecord
        (nothing written) when Firestore refuses what it holds."""
        stored, moved, _, _ = self._split(case, 0)
        try:
            with _refused_as_unstorable():
                batch = self.client.batch()
                batch.create(self.cases.document(case_id), {**stored, TAIL_FIELD: firestore.SERVER_TIMESTAMP})
                self._move_out(batch, case_id, moved)
                increment_shards(batch, self.shards, delta, self.models)
                batch.commit()
        except (AlreadyExists, Conflict):
            return False
        return True

    def create_cases(self, items: Sequence[tuple[str, dict[str, Any], CounterDelta]]) -> dict[str, dict[str, Any]]:
        """Create many cases (at most MAX_BATCH - 1) in as few atomic writes as Firestore's limits allow (one for a
        batch of new cases of a few model versions); the ids that already existed, each with the import and line
        that stored it (empty when no import did).

        Optimistic: a fresh batch commits in one round trip. When any case exists the commit fails whole, so
        the existing ids are read and the rest written again (repeated if a concurrent writer raced us). A case
        is written in one commit with its counters and the history it moves out; a case whose history alone is
        more than a commit holds (a restore of a very long one) has its moved-out entries written first, once
        it is known not to exist. UnstorableRecord (nothing of that commit written) when Firestore refuses what
        one of them holds.
        """
        existing: dict[str, dict[str, Any]] = {}
        prepared = [_NewCase(case_id, delta, self._split(case, 0)) for case_id, case, delta in items]
        oversize = [item for item in prepared if item.split.moved_bytes > COMMIT_BYTES]
        if oversize:
            existing |= self._origins([item.case_id for item in oversize])
            for item in oversize:
                if item.case_id not in existing:
                    self._write_history(item.case_id, item.split.moved)
        pending = [item._replace(split=item.split._replace(moved=[], moved_bytes=0))
                   if item.split.moved_bytes > COMMIT_BYTES else item
                   for item in prepared if item.case_id not in existing]
        while pending:
            chunk = self._chunk(pending)
            try:
                with _refused_as_unstorable():
                    batch = self.client.batch()
                    total = CounterDelta()
                    for item in chunk:
                        batch.create(self.cases.document(item.case_id), item.split.stored)
                        self._move_out(batch, item.case_id, item.split.moved)
                        total.add(item.delta)
                    increment_shards(batch, self.shards, total, self.models)
                    batch.commit()
                pending = pending[len(chunk):]
            except (AlreadyExists, Conflict):
                found = self._origins([item.case_id for item in chunk])
                existing |= found
                pending = [item for item in pending if item.case_id not in found]
        return existing

    def _origins(self, case_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The ids of these that exist, each with its import and line."""
        refs = [self.cases.document(case_id) for case_id in case_ids]
        return {snap.id: snap.to_dict() or {}
                for snap in self.client.get_all(refs, field_paths=ORIGIN_FIELDS) if snap.exists}

    @staticmethod
    def _chunk(pending: Sequence[_NewCase]) -> list[_NewCase]:
        """The longest head of `pending` one commit holds (its writes, counters included, and its bytes)."""
        chunk: list[_NewCase] = []
        models: set[str] = set()
        writes, size = 1, 0  # the counter shard
        for item in pending:
            new_models = [name for name, n in item.delta.model_versions.items() if n and name not in models]
            item_writes = 1 + len(item.split.moved) + len(new_models)
            item_size = item.split.stored_bytes + item.split.moved_bytes + _CASE_WRITE_BYTES
            if chunk and (writes + item_writes > MAX_BATCH or size + item_size > COMMIT_BYTES):
                break
            chunk.append(item)
            models.update(new_models)
            writes, size = writes + item_writes, size + item_size
        return chunk

    # -- the correction history ----------------------------------------------------------------------------

    def _history(self, case_id: str) -> firestore.CollectionReference:
        return self.cases.document(case_id).collection(HISTORY)

    @staticmethod
    def _split(case: dict[str, Any], archived: int) -> _Split:
        """The case document to store (the newest history, and ARCHIVED_FIELD once entries moved out) and the
        entries to move out now, numbered; `archived` entries of the case's whole history are out already. Each
        value's storage_size is counted once (an import splits every case it writes)."""
        history = list(case.get("corrections") or [])
        stored = {key: value for key, value in case.items() if key != ARCHIVED_FIELD}
        kept = history[archived:]
        rest = storage_size({key: value for key, value in stored.items() if key != "corrections"})
        sizes = [storage_size(entry) for entry in kept]
        move = entries_to_move_out(kept, history_room(rest), sizes)
        stored_bytes = rest
        if "corrections" in case:
            stored["corrections"] = kept[move:]
            stored_bytes += storage_size("corrections") + sum(sizes[move:])
        if archived + move:
            stored[ARCHIVED_FIELD] = archived + move
            stored_bytes += storage_size({ARCHIVED_FIELD: archived + move})
        moved = [(archived + n + 1, entry) for n, entry in enumerate(kept[:move])]
        return _Split(stored, moved, stored_bytes, sum(sizes[:move]))

    def _move_out(self, writer: Any, case_id: str, moved: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Write the moved-out entries through `writer` (in the write that shortens the case)."""
        for number, entry in moved:
            writer.set(self._history(case_id).document(f"{number:09d}"), {**entry, "number": number})

    def _write_history(self, case_id: str, moved: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Write the moved-out entries of a case not yet stored, in commits of at most COMMIT_BYTES."""
        start = 0
        while start < len(moved):
            end, size = start, 0
            while end < len(moved) and end - start < MAX_BATCH and (
                    end == start or size + storage_size(moved[end][1]) <= COMMIT_BYTES):
                size += storage_size(moved[end][1])
                end += 1
            with _refused_as_unstorable():
                batch = self.client.batch()
                self._move_out(batch, case_id, moved[start:end])
                batch.commit()
            start = end

    def _whole(self, case: dict[str, Any], case_id: str, transaction: Any = None) -> dict[str, Any]:
        """`case` as read, with the entries moved out of it back at the head of its history."""
        archived = int(case.pop(ARCHIVED_FIELD, 0) or 0)
        if archived:
            query = self._history(case_id).order_by("number").limit(archived)
            snapshots = query.get(transaction=transaction) if transaction is not None else query.stream()
            moved = [{k: v for k, v in (snap.to_dict() or {}).items() if k != "number"} for snap in snapshots]
            case["corrections"] = [*moved, *(case.get("corrections") or [])]
        return case

    def _read(self, snapshot: Any) -> dict[str, Any]:
        return self._whole(snapshot.to_dict() or {}, snapshot.id)

    def update_case(
        self, case_id: str, change: Callable[[dict[str, Any]], tuple[dict[str, Any], CounterDelta] | None]
    ) -> dict[str, Any] | None:
        """Read-modify-write one case in a transaction; `change` returns None for no change.

        Returns the updated case, or None when it does not exist. Counter shards are written with Increment
        and never read, so transactions contend only on the case itself.
        """
        ref = self.cases.document(case_id)
        outcome: dict[str, Any] = {}

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> None:
            snapshot = ref.get(transaction=transaction)
            outcome.clear()
            if not snapshot.exists:
                return
            raw = snapshot.to_dict() or {}
            archived = int(raw.get(ARCHIVED_FIELD, 0) or 0)
            case = self._whole(raw, case_id, transaction)
            result = change(case)
            outcome["case"] = case
            if result is None:
                return
            updates, delta = result
            written: dict[str, Any] = dict(updates)
            moved: list[tuple[int, dict[str, Any]]] = []
            if "corrections" in updates:
                stored, moved, _, _ = self._split({**case, **updates}, archived)
                written["corrections"] = stored["corrections"]
                if ARCHIVED_FIELD in stored:
                    written[ARCHIVED_FIELD] = stored[ARCHIVED_FIELD]
            transaction.update(ref, {**written, TAIL_FIELD: firestore.SERVER_TIMESTAMP})
            self._move_out(transaction, case_id, moved)
            increment_shards(transaction, self.shards, delta, self.models)
            outcome["case"] = {**case, **updates}

        run(self.client.transaction())
        return outcome.get("case")

    def quarantine(self, quarantine_id: str, raw: bytes, reason: str, source: str, **context: Any) -> bool:
        """Keep a rejected payload with its reason, once per id; counted as a quarantined event."""
        raw_uri = None
        if needs_whole_copy(raw) and self.overflow is not None:
            raw_uri = self.overflow.keep(layout.quarantine_copy_name(source, quarantine_id), raw)
        record = quarantine_record(raw, reason, source, raw_uri, **context)
        return keep_quarantined(self.client, self.settings, quarantine_id, record)

    def save_import(self, import_id: str, summary: dict[str, Any]) -> None:
        """Record a finished bulk import's result (replacing its checkpoints)."""
        record = {**summary, "state": "finished", "finished_at": firestore.SERVER_TIMESTAMP}
        self.imports.document(import_id).set(record)

    def import_result(self, import_id: str) -> dict[str, Any] | None:
        """A finished bulk import's result, or None."""
        record = self._import(import_id)
        return record if record is not None and record.get("state") != "running" else None

    def save_import_progress(self, import_id: str, progress: dict[str, Any]) -> None:
        """Record a running import's checkpoint."""
        self.imports.document(import_id).set({**progress, "state": "running", "saved_at": firestore.SERVER_TIMESTAMP})

    def import_progress(self, import_id: str) -> dict[str, Any] | None:
        """A running import's last checkpoint, or None."""
        record = self._import(import_id)
        return record if record is not None and record.get("state") == "running" else None

    def _import(self, import_id: str) -> dict[str, Any] | None:
        snapshot = self.imports.document(import_id).get()
        return snapshot.to_dict() if snapshot.exists else None

    # -- reads ----------------------------------------------------------------------------------------------

    def get_case(self, case_id: str) -> dict[str, Any] | None:
        """One case, or None."""
        snapshot = self.cases.document(case_id).get()
        return self._read(snapshot) if snapshot.exists else None

    def get_cases(self, case_ids: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The stored cases of these ids, in the order given, read GET_ALL_BATCH documents per round trip."""
        for start in range(0, len(case_ids), GET_ALL_BATCH):
            batch = case_ids[start:start + GET_ALL_BATCH]
            refs = [self.cases.document(case_id) for case_id in batch]
            found = {snap.id: self._read(snap) for snap in self.client.get_all(refs) if snap.exists}
            yield from (found[case_id] for case_id in batch if case_id in found)

    def cases_with_error_type(self, error_type: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Cases whose error_types contain `error_type`, newest first."""
        query = self.cases.where(filter=firestore.FieldFilter("error_types", "array_contains", error_type))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        return [self._read(s) for s in (query.limit(limit) if limit else query).stream()]

    def corrected_cases(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Cases that have a corrected transcript, newest first."""
        query = self.cases.where(filter=firestore.FieldFilter("corrected", "==", True))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        return [self._read(s) for s in (query.limit(limit) if limit else query).stream()]

    def stream_cases(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Every case (optionally created at or after `since`), streamed."""
        query: Any = self.cases
        if since is not None:
            query = query.where(filter=firestore.FieldFilter("created_at", ">=", since))
        for snapshot in query.stream():
            yield self._read(snapshot)

    def cases_changed_since(self, since: datetime | None) -> Iterator[dict[str, Any]]:
        """The cases written one at a time (events, corrections, the Python API) whose last such write committed
        at or after `since` (None: all of them), each with that commit time as `tail_at`."""
        floor = since or datetime(1970, 1, 1, tzinfo=UTC)
        query = self.cases.where(filter=firestore.FieldFilter(TAIL_FIELD, ">=", floor))
        # Only what a snapshot row is made of: not the correction history, which can be most of a document.
        for snapshot in query.select([*SOURCE_FIELDS, TAIL_FIELD]).stream():
            yield snapshot.to_dict()


    def counter_shards(self) -> list[dict[str, Any]]:
        """The statistics shards' documents."""
        # Lookups by key: a collection query costs a scan on the emulator as the database grows.
        refs = [self.shards.document(str(n)) for n in range(N_SHARDS)]
        shards = [s.to_dict() or {} for s in self.client.get_all(refs) if s.exists]
        return shards + model_counter_rows(self.models)

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined payloads with their reasons, newest first."""
        query = self.rejects.order_by("quarantined_at", direction=firestore.Query.DESCENDING).limit(limit)
        return [{"id": s.id, **(s.to_dict() or {})} for s in query.stream()]
