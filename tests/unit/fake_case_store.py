"""An in-memory CaseStore with the same create-if-absent semantics as the Firestore adapter."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from shared.domain.cases import CounterDelta
from shared.ports import CaseStore


class InMemoryCaseStore(CaseStore):
    """Cases, one summed counter and quarantined payloads in dicts."""

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, Any]] = {}
        self.counters = CounterDelta()
        self.rejects: dict[str, dict[str, Any]] = {}

    def create_case(self, case_id: str, case: dict[str, Any], delta: CounterDelta) -> bool:
        if case_id in self.cases:
            return False
        self.cases[case_id] = copy.deepcopy(case)
        self.counters.add(delta)
        return True

    def create_cases(self, items: Sequence[tuple[str, dict[str, Any], CounterDelta]]) -> set[str]:
        existing = {case_id for case_id, _, _ in items if case_id in self.cases}
        for case_id, case, delta in items:
            if case_id not in existing:
                self.create_case(case_id, case, delta)
        return existing

    def update_case(
        self, case_id: str, change: Callable[[dict[str, Any]], tuple[dict[str, Any], CounterDelta] | None]
    ) -> dict[str, Any] | None:
        if case_id not in self.cases:
            return None
        result = change(copy.deepcopy(self.cases[case_id]))
        if result is not None:
            updates, delta = result
            self.cases[case_id].update(updates)
            self.counters.add(delta)
        return self.cases[case_id]

    def quarantine(self, quarantine_id: str, raw: bytes, reason: str, source: str, **context: Any) -> bool:
        if quarantine_id in self.rejects:
            return False
        self.rejects[quarantine_id] = {"raw": raw, "reason": reason, "source": source, **context}
        self.counters.add(CounterDelta(quarantined=1))
        return True
