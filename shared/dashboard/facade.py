"""Dashboard: the dashboard's facts from Python and through the `api` (`dashboard_facts`), and its page (the
`api`'s answer to a browser's `GET /`)."""

from __future__ import annotations

from typing import Any

from shared import bootstrap
from shared.clock import utc_now
from shared.config import Settings
from shared.facade_setup import deployment
from shared.services import dashboard
from shared.topology import build_topology


class Dashboard:
    """Live totals, error types, WER/CER per model with regressions, versions and recent work of a deployment."""

    def __init__(self, *, settings: Settings | None = None, adapters: bootstrap.Adapters | None = None) -> None:
        self.adapters = deployment("Dashboard", settings=settings, adapters=adapters)
        self.settings = self.adapters.settings

    def dashboard_facts(self) -> dict[str, Any]:
        """What the page shows, as JSON: `statistics` (as get_statistics), `dead_letters` (the backlog's counts),
        `performance` (WER/CER per model version, regressions, best model), `versions` (newest, their quality,
        the current one's lineage) and `recent_work` (imports and builds with their progress)."""
        a = self.adapters
        return dashboard.dashboard_facts(a.cases, a.metrics, a.bucket, a.progress, a.dead_letters,
                                         build_topology(self.settings), utc_now())

    def render_html(self, refresh_s: int | None = None) -> str:
        """The page, refreshing itself every `refresh_s` seconds (default 30; 0: never)."""
        from shared.dashboard.page import DEFAULT_REFRESH_S, render_page

        return render_page(self.dashboard_facts(), DEFAULT_REFRESH_S if refresh_s is None else refresh_s)
