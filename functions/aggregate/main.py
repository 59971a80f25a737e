"""Cloud Function (gen2), HTTP, run by Cloud Scheduler: write the exports to the bucket.

The metrics exports, report and plot go to `metadata/`, the cases and corrections to `learning_data/`.
"""

from __future__ import annotations

from typing import Any

import functions_framework
from flask import Request

from shared.bootstrap import adapters
from shared.clock import utc_now
from shared.domain.json_payload import decode_body
from shared.errors import BadRequest, SttdataError, http_status
from shared.observability import get_logger
from shared.services.scheduled_exports import run_exports

log = get_logger("aggregate")


@functions_framework.http
def aggregate(request: Request) -> tuple[dict[str, Any], int]:
    """POST (body `{}` or report options): write the exports; answers a JSON summary."""
    if request.method != "POST":
        # Only POST does work: a health check or a stray GET must not rewrite the exports.
        return {"error": "use POST with a JSON body, e.g. {}"}, 405
    a = adapters()
    try:
        summary = run_exports(decode_body(request.get_data(), BadRequest), a.metrics, a.cases, a.bucket, utc_now())
    except SttdataError as exc:
        log.warning("bad request", extra={"reason": exc.reason})
        return {"error": exc.reason}, http_status(exc)
    log.info("exported", extra={"objects": sorted(summary["objects"]), "regressions": summary["regressions"]})
    return summary, 200
