"""An in-memory CaseStore with the same create-if-absent semantics as the Firestore adapter."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.cases import CounterDelta
from shared.errors import UnstorableRecord
from shared.ports import CaseStore

# Commit times of the fake start here and grow by a microsecond a write.
TAIL_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


# Why the store cannot hold a case (None: it can), as Firestore refuses a write for what it holds.
Refusal = Callable[[dict[str, Any]], str | None]


class InMemoryCaseStore(CaseStore):
    """Cases, one summed counter and quarantined payloads in dicts; `refuse` makes it refuse cases as Firestore
    does (UnstorableRecord, nothing of the write kept).

    Each write is atomic, as a Firestore commit is: an import writes two batches at once from its writer threads,
    and without the lock their counter additions interleave and lose updates (the counters then differ from a
    run's whose threads happened not to meet)."""

    def __init__(self, refuse: Refusal | None = None) -> None:
        self._write_lock = threading.RLock()
        self.cases: dict[str, dict[str, Any]] = {}
        self.counters = CounterDelta()
        self.rejects: dict[str, dict[str, Any]] = {}
        self._commits = 0
        self.refuse = refuse

    def _refused(self, cases: Sequence[dict[str, Any]]) -> None:
        for case in cases:
            reason = self.refuse(case) if self.refuse is not None else None
            if reason is not None:
                raise UnstorableRecord(f"Firestore cannot store this case: {reason}")

    def commit_time(self) -> datetime:
        """A commit time as Firestore's server timestamp gives it: later for every write."""
        self._commits += 1
        return TAIL_EPOCH + timedelta(microseconds=self._commits)

    def create_case(self, case_id: str, case: dict[str, Any], delta: CounterDelta) -> bool:
        self._refused([case])
        with self._write_lock:
            if case_id in self.cases:
                return False
            self.cases[case_id] = {**copy.deepcopy(case), "tail_at": self.commit_time()}
            self.counters.add(delta)
            return True

    def create_cases(self, items: Sequence[tuple[str, dict[str, Any], CounterDelta]]) -> dict[str, dict[str, Any]]:
        # As the Firestore adapter: a bulk write sets no tail_at (imports write the snapshot themselves).
        self._refused([case for _, case, _ in items])
        with self._write_lock:
            existing = {case_id: {k: v for k, v in self.cases[case_id].items() if k in ("import_id", "import_line")}
                        for case_id, _, _ in items if case_id in self.cases}
            for case_id, case, delta in items:
                if case_id not in existing:
                    self.cases[case_id] = copy.deepcopy(case)
                    self.counters.add(delta)
            return existing

    def update_case(
        self, case_id: str, change: Callable[[dict[str, Any]], tuple[dict[str, Any], CounterDelta] | None]
    ) -> dict[str, Any] | None:
        with self._write_lock:
            if case_id not in self.cases:
                return None
            result = change(copy.deepcopy(self.cases[case_id]))
            if result is not None:
                updates, delta = result
                self.cases[case_id].update(updates, tail_at=self.commit_time())
                self.counters.add(delta)
            return self.cases[case_id]

    def quarantine(self, quarantine_id: str, raw: bytes, reason: str, source: str, **context: Any) -> bool:
        with self._write_lock:
            if quarantine_id in self.rejects:
                return False
            self.rejects[quarantine_id] = {"raw": raw, "reason": reason, "source": source, **context}
            self.counters.add(CounterDelta(quarantined=1))
            return True


class FullCaseStore(InMemoryCaseStore):
    """InMemoryCaseStore plus the rest of the port the functions reach: reads, the tail, counter shards and
    finished imports."""

    def __init__(self, refuse: Refusal | None = None) -> None:
        super().__init__(refuse)
        self.imports: dict[str, dict[str, Any]] = {}

    def save_import(self, import_id: str, summary: dict[str, Any]) -> None:
        self.imports[import_id] = {**copy.deepcopy(summary), "state": "finished"}

    def import_result(self, import_id: str) -> dict[str, Any] | None:
        record = self.imports.get(import_id)
        return copy.deepcopy(record) if record is not None and record["state"] == "finished" else None

    def save_import_progress(self, import_id: str, progress: dict[str, Any]) -> None:
        self.imports[import_id] = {**copy.deepcopy(progress), "state": "running"}

    def import_progress(self, import_id: str) -> dict[str, Any] | None:
        record = self.imports.get(import_id)
        return copy.deepcopy(record) if record is not None and record["state"] == "running" else None

    def get_case(self, case_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.cases.get(case_id))

    def cases_with_error_type(self, error_type: str, limit: int | None = None) -> list[dict[str, Any]]:
        found = [case for case in self._newest_first() if error_type in (case.get("error_types") or [])]
        return found[:limit] if limit else found

    def corrected_cases(self, limit: int | None = None) -> list[dict[str, Any]]:
        found = [case for case in self._newest_first() if case.get("corrected") is True]
        return found[:limit] if limit else found

    def _newest_first(self) -> list[dict[str, Any]]:
        ordered = sorted(self.cases.values(), key=lambda case: case["created_at"], reverse=True)
        return [copy.deepcopy(case) for case in ordered]

    def stream_cases(self, since: datetime | None = None) -> Iterator[dict[str, Any]]:
        for case in list(self.cases.values()):
            if since is None or case["created_at"] >= since:
                yield copy.deepcopy(case)

    def cases_changed_since(self, since: datetime | None) -> Iterator[dict[str, Any]]:
        for case in list(self.cases.values()):
            if "tail_at" in case and (since is None or case["tail_at"] >= since):
                yield copy.deepcopy(case)


    def counter_shards(self) -> list[dict[str, Any]]:
        return [asdict(self.counters)]

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        return [{"id": key, **record} for key, record in list(self.rejects.items())[::-1][:limit]]
