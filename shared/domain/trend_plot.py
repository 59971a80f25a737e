"""Render a metric's trend to PNG bytes, flagged anomalies marked; the caller stores them.

Uses matplotlib's object API on an Agg canvas (no pyplot), so nothing touches a display
or pyplot's global figure state, and concurrent requests in one instance do not collide.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from shared.domain.anomalies import Anomaly
from shared.domain.trends import Trend

DEFAULT_SIZE_PX = (1000, 500)
DPI = 100


def render_trend_png(
    trend: Trend,
    anomalies: Sequence[Anomaly] = (),
    *,
    title: str | None = None,
    size_px: tuple[int, int] = DEFAULT_SIZE_PX,
) -> bytes:
    """PNG of the trend's values over time with anomalies circled in red."""
    width, height = size_px
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    points = trend.points
    # Time on the x axis when every point is dated; otherwise the evaluation order.
    dated = bool(points) and all(point.recorded_at is not None for point in points)
    xs: list[Any] = [point.recorded_at for point in points] if dated else list(range(len(points)))
    if points:
        axes.plot(xs, [point.value for point in points], marker="o", markersize=3, linewidth=1.2,
                  label=trend.metric)
        # Anomalies index the trend's points; one from another series would mark the wrong spot.
        flagged = [a for a in anomalies if 0 <= a.index < len(points) and points[a.index].value == a.value]
        if flagged:
            axes.scatter([xs[a.index] for a in flagged], [a.value for a in flagged], s=90,
                         facecolors="none", edgecolors="red", linewidths=1.8, zorder=3,
                         label=f"anomaly ({len(flagged)})")
        axes.legend(loc="best")
    else:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    direction = "lower is better" if trend.lower_is_better else "higher is better"
    axes.set_title(title or f"{trend.metric} over time ({direction})")
    axes.set_xlabel("recorded at" if dated else "evaluation")
    axes.set_ylabel(trend.metric)
    axes.grid(True, alpha=0.3)
    if dated:
        figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
