"""Use case of the scheduled `aggregate` run: every export to the bucket, the metrics' and the cases'."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.errors import BadRequest
from shared.ports import Bucket, CaseStore, MetricStore
from shared.services.case_exports import export_cases
from shared.services.case_snapshot import maintain_snapshot
from shared.services.metric_exports import export_metadata

# Options a caller may set; anything else is refused so a typo is not silently ignored.
OPTIONS = {"plot_metric": str, "window": int, "threshold": float, "min_history": int, "regression_metrics": list}
_WORDS = {str: "a string", int: "an integer", float: "a number", list: "a list"}


def export_options(body: Any) -> dict[str, Any]:
    """The report options of a request body (None: the defaults); BadRequest names what is wrong."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - set(OPTIONS))
    if unknown:
        raise BadRequest(f"unknown fields {unknown}; known: {sorted(OPTIONS)}")
    for name, value in body.items():
        kind = OPTIONS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise BadRequest(f"{name} must be {_WORDS[kind]}")
    return dict(body)


def run_exports(body: Any, metrics: MetricStore, cases: CaseStore, bucket: Bucket, now: datetime) -> dict[str, Any]:
    """Write the metric exports, report and plot (`metadata/`), bring the case snapshot up to date, then append
    the cases it changed to the `learning_data/` exports; a summary."""
    summary = export_metadata(metrics, bucket, now, **export_options(body))
    summary["snapshot"] = snapshot = maintain_snapshot(cases, bucket, now)
    exported = export_cases(cases, bucket, now, snapshot["part_names"])
    summary["objects"].update({name: {"uri": uri} for name, uri in exported["objects"].items()})
    summary["learning_data"] = {key: exported[key] for key in ("cases", "corrections", "skipped", "mode", "lines")
                                if key in exported}
    return summary
