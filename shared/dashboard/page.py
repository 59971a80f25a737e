"""The dashboard's HTML: the facts of shared/services/dashboard.py through the template, with the charts inlined."""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

from shared.dashboard import charts
from shared.dashboard.template import PAGE

DEFAULT_REFRESH_S = 30
MIN_REFRESH_S = 2
MAX_REFRESH_S = 3600
GOOD_STATES = ("finished", "built")
BAD_STATES = ("rejected", "object gone", "no eligible cases")


def refresh_seconds(asked: str | None) -> int:
    """The refresh period a `?refresh=` asks for: 0 (never), or clamped to MIN..MAX; the default if unreadable."""
    try:
        seconds = int(asked) if asked is not None else DEFAULT_REFRESH_S
    except ValueError:
        return DEFAULT_REFRESH_S
    return 0 if seconds <= 0 else min(max(seconds, MIN_REFRESH_S), MAX_REFRESH_S)


def state_badge(state: str | None) -> Markup:
    """A work item's state as a coloured label."""
    tone = "good" if state in GOOD_STATES else "bad" if state in BAD_STATES else "busy" if state == "running" else ""
    return Markup('<span class="state {}">{}</span>').format(tone, escape(state or "queued"))


@cache
def _template() -> Any:
    environment = Environment(autoescape=True, trim_blocks=False)
    environment.globals["state"] = state_badge
    return environment.from_string(PAGE)


def render_page(facts: dict[str, Any], refresh_s: int = DEFAULT_REFRESH_S) -> str:
    """The whole page for `facts`; it fetches itself again every `refresh_s` seconds (0: never)."""
    performance = facts["performance"]
    drawn = {
        "error_types": charts.error_types_chart(facts["statistics"].get("error_type_distribution") or {}),
        "quality": charts.quality_chart(facts["versions"]["shown"]),
        **{metric: charts.trend_chart(metric, performance["series"].get(metric, {}),
                                      [r for r in performance["regressions"] if r["metric"] == metric])
           for metric in ("wer", "cer")},
    }
    # The SVGs are matplotlib's own output, whose texts it escapes: markup to inline as it is.
    inlined = {name: Markup(svg) for name, svg in drawn.items()}  # noqa: S704  # nosec B704
    return str(_template().render(facts=facts, charts=inlined, refresh_s=refresh_s))
