"""The dashboard's charts, drawn on the server as inline SVG with matplotlib (so the page fetches nothing).

matplotlib's object API on an Agg canvas (no pyplot), as shared/domain/trend_plot.py: concurrent requests of one
instance share no figure state. Text stays text in the SVG (`svg.fonttype: none`): smaller, and readable by a
test or a screen reader. Every chart is drawn at one size whatever its data, "no data yet" when it has none.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SIZE_IN = (6.4, 3.0)  # 614 x 288 CSS pixels: two charts side by side on a laptop screen
MOST_ERROR_TYPES = 12
PASSED, FAILED, UNKNOWN, REGRESSION = "#2e7d32", "#c62828", "#9e9e9e", "#d32f2f"


def _figure() -> tuple[Figure, Any]:
    figure = Figure(figsize=SIZE_IN, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _no_data(axes: Any, what: str) -> None:
    axes.text(0.5, 0.5, what, ha="center", va="center", transform=axes.transAxes, color="#777")
    axes.set_xticks([])
    axes.set_yticks([])


def _svg(figure: Figure, label: str) -> str:
    """The figure as an <svg> element to inline (no XML prolog), labelled for assistive technology."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": label}):
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    svg = text[text.index("<svg"):]
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_attribute(label)}" ', 1)


def _attribute(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def error_types_chart(distribution: Mapping[str, int]) -> str:
    """Horizontal bars of the cases per error type, the most frequent on top."""
    figure, axes = _figure()
    ranked = sorted(distribution.items(), key=lambda kv: (-kv[1], kv[0]))[:MOST_ERROR_TYPES]
    if ranked:
        names, counts = zip(*reversed(ranked), strict=True)
        bars = axes.barh(names, counts, color="#1565c0")
        axes.bar_label(bars, padding=3, fontsize=8)
        axes.set_xlabel("cases")
        axes.margins(x=0.12)
        others = len(distribution) - len(ranked)
        axes.set_title("Error types" + (f" (top {len(ranked)}, {others} more)" if others > 0 else ""))
    else:
        _no_data(axes, "no cases yet")
        axes.set_title("Error types")
    return _svg(figure, "error types")


def trend_chart(metric: str, series: Mapping[str, Sequence[Mapping[str, Any]]],
                regressions: Sequence[Mapping[str, Any]]) -> str:
    """`metric` over time, one line per model version; each regression circled in red."""
    figure, axes = _figure()
    label = metric.upper()
    if any(series.values()):
        for model, points in series.items():
            axes.plot([datetime.fromisoformat(p["recorded_at"]) for p in points], [p["value"] for p in points],
                      marker="o", markersize=3, linewidth=1.4, label=model)
        marked = [r for r in regressions if r.get("recorded_at")]
        if marked:
            axes.scatter([datetime.fromisoformat(r["recorded_at"]) for r in marked], [r["value"] for r in marked],
                         s=110, facecolors="none", edgecolors=REGRESSION, linewidths=2, zorder=3,
                         label=f"regression ({len(marked)})")
        axes.legend(loc="best", fontsize=8)
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        figure.autofmt_xdate()
    else:
        _no_data(axes, "no evaluations yet")
    axes.set_title(f"{label} per model version (lower is better)")
    return _svg(figure, f"{metric} trend")


def quality_chart(shown_versions: Sequence[Mapping[str, Any]]) -> str:
    """The overall quality score of each version, oldest to newest: green passed, red failed; the current one
    outlined."""
    figure, axes = _figure()
    entries = [v for v in reversed(shown_versions) if v.get("quality_score") is not None]
    if entries:
        colours = [PASSED if v.get("quality_passed") else FAILED if v.get("quality_passed") is False else UNKNOWN
                   for v in entries]
        positions = range(len(entries))
        bars = axes.bar(positions, [v["quality_score"] for v in entries], color=colours,
                        edgecolor=["black" if v.get("current") else "none" for v in entries], linewidth=2)
        axes.bar_label(bars, fmt="%.3f", padding=2, fontsize=7)
        axes.set_xticks(list(positions), [_short(v["version_id"]) for v in entries], rotation=30, ha="right",
                        fontsize=7)
        axes.set_ylim(0, 1.08)
        axes.set_ylabel("overall score")
    else:
        _no_data(axes, "no versions yet")
    axes.set_title("Quality of the dataset versions (outlined: current)")
    return _svg(figure, "version quality")


def _short(version_id: str, most: int = 22) -> str:
    return version_id if len(version_id) <= most else version_id[: most - 1] + "…"
