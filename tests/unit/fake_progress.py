"""An in-memory ProgressBoard: records merged note by note, every note kept in order for tests to read."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.ports import ProgressBoard

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class InMemoryProgressBoard(ProgressBoard):
    """Records by (kind, work id); `notes` is every note as written; `failing` makes every note raise."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.notes: list[tuple[str, str, dict[str, Any]]] = []
        self.failing: Exception | None = None

    def note(self, kind: str, work_id: str, fields: dict[str, Any]) -> None:
        if self.failing is not None:
            raise self.failing
        self.notes.append((kind, work_id, copy.deepcopy(fields)))
        stamp = EPOCH + timedelta(seconds=len(self.notes))
        record = self.records.setdefault((kind, work_id), {})
        record.update({**copy.deepcopy(fields), "kind": kind, "work_id": work_id, "updated_at": stamp})

    def get(self, kind: str, work_id: str) -> dict[str, Any] | None:
        found = self.records.get((kind, work_id))
        return copy.deepcopy(found) if found is not None else None

    def recent(self, kind: str, limit: int) -> list[dict[str, Any]]:
        mine = [record for (k, _), record in self.records.items() if k == kind]
        return copy.deepcopy(sorted(mine, key=lambda r: r["updated_at"], reverse=True)[:limit])
