"""WorkProgress: how far imports and builds got, from Python and through the `api` (`import_status`,
`build_status`, `recent_work`), so the CLI and the dashboard read progress without Firestore access."""

from __future__ import annotations

from typing import Any

from shared import bootstrap
from shared.config import Settings
from shared.errors import BadInput
from shared.facade_setup import deployment
from shared.services import work_progress

MAX_RECENT = 100


class WorkProgress:
    """Status of one import or build (by its object name, and generation: default the live one), and the recent."""

    def __init__(self, *, settings: Settings | None = None, adapters: bootstrap.Adapters | None = None) -> None:
        self.adapters = deployment("WorkProgress", settings=settings, adapters=adapters)
        self.settings = self.adapters.settings

    def import_status(self, name: str, generation: int | None = None) -> dict[str, Any]:
        """An import's state (queued, running, finished, rejected, object gone), `lines_done`, its counts and,
        once done, its result; `name` as uploaded (`day1.jsonl` or `imports/day1.jsonl`)."""
        a = self.adapters
        return work_progress.import_status(name, generation, a.progress, a.cases, a.bucket)

    def build_status(self, name: str, generation: int | None = None) -> dict[str, Any]:
        """A build's state (queued, running, built, no eligible cases, rejected, object gone), its `stage` and,
        once done, its result; `name` as uploaded (`weekly`, `weekly.json` or `dataset-requests/weekly.json`)."""
        return work_progress.build_status(name, generation, self.adapters.progress, self.adapters.bucket)

    def recent_work(self, limit: int = work_progress.RECENT_LIMIT) -> dict[str, list[dict[str, Any]]]:
        """The most recent imports and builds with their state, newest first, at most `limit` (1..100) of each."""
        if not 1 <= limit <= MAX_RECENT:
            raise BadInput(f"limit must be between 1 and {MAX_RECENT}, got {limit}")
        return work_progress.recent_work(self.adapters.progress, limit)
