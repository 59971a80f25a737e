"""Cloud Function (gen2), HTTP, run by Cloud Scheduler: write the exports to the bucket.

The metrics exports, report and plot go to `metadata/`, the cases and corrections to `learning_data/`.
"""

from __future__ import annotations

from typing import Any

import functions_framework
from flask import Request

from shared.config import Settings
from shared.data_manager import DataManager
from shared.metadata_tracker import MetadataTracker
from shared.observability import get_logger

log = get_logger("aggregate")
# Body fields a caller may set; anything else is refused so a typo is not silently ignored.
OPTIONS = {"plot_metric": str, "window": int, "threshold": float, "min_history": int, "regression_metrics": list}
_WORDS = {str: "a string", int: "an integer", float: "a number", list: "a list"}


def _options(body: Any) -> dict[str, Any]:
    """The report options of the JSON body; ValueError names what is wrong."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown fields {unknown}; known: {sorted(OPTIONS)}")
    for name, value in body.items():
        kind = OPTIONS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
            raise ValueError(f"{name} must be {_WORDS[kind]}")
    return dict(body)


@functions_framework.http
def aggregate(request: Request) -> tuple[dict[str, Any], int]:
    """POST (body `{}` or report options): write the exports; answers a JSON summary."""
    if request.method != "POST":
        # Only POST does work: a health check or a stray GET must not rewrite the exports.
        return {"error": "use POST with a JSON body, e.g. {}"}, 405
    try:
        options = _options(request.get_json(silent=True) if request.data else None)
        settings = Settings.from_env()
        summary = MetadataTracker(settings).export_metadata(**options)
    except ValueError as exc:
        log.warning("bad request", extra={"reason": str(exc)})
        return {"error": str(exc)}, 400
    cases = DataManager(settings).sync_to_gcs()
    summary["objects"].update({name: {"uri": uri} for name, uri in cases["objects"].items()})
    summary["learning_data"] = {"cases": cases["cases"], "corrections": cases["corrections"]}
    log.info("exported", extra={"objects": sorted(summary["objects"]), "regressions": summary["regressions"]})
    return summary, 200
