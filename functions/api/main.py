"""Cloud Function (gen2), HTTP, private: the Python API's read and admin operations as `{"op": ..., ...}` JSON calls,
and the dashboard page for a browser."""

from __future__ import annotations

import functions_framework
from flask import Request, Response

from shared.api import Answer, dispatch
from shared.config import Settings
from shared.domain.json_payload import decode_body
from shared.errors import BadRequest
from shared.observability import get_logger

log = get_logger("api")
USAGE = '{"error": "use POST with a JSON body, e.g. {\\"op\\": \\"get_statistics\\"}; open the URL in a browser ' \
        'for the dashboard"}'


@functions_framework.http
def api(request: Request) -> Response:
    """POST a JSON body `{"op": "get_statistics"}`; answers JSON (400 says what is wrong). A GET of `/` that asks
    for HTML (a browser) is answered the dashboard; `?refresh=SECONDS` sets how often it refreshes (0: never)."""
    if request.method == "GET" and wants_dashboard(request):
        return dashboard(request)
    if request.method != "POST":
        return Response(USAGE, 405, mimetype="application/json")
    try:
        body = decode_body(request.get_data(), BadRequest)
    except BadRequest as exc:  # not JSON, too large, nested too deep: refused before any op runs
        body, answer = None, Answer(400, {"error": exc.reason})
    else:
        answer = dispatch(body, Settings.from_env())
    op = body.get("op") if isinstance(body, dict) else None
    log.log(20 if answer.status < 400 else 30, "api call", extra={"op": op, "status": answer.status})
    return Response(answer.json(), answer.status, mimetype="application/json")


def wants_dashboard(request: Request) -> bool:
    """A GET of the root whose Accept header prefers HTML over JSON (a browser's does; curl's `*/*` does not, nor
    does a readiness probe, so neither pays for a page)."""
    preferred = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.path in ("", "/") and preferred == "text/html"


def dashboard(request: Request) -> Response:
    from shared import Dashboard
    from shared.dashboard.page import refresh_seconds

    page = Dashboard(settings=Settings.from_env()).render_html(refresh_seconds(request.args.get("refresh")))
    log.info("dashboard", extra={"status": 200})
    return Response(page, 200, mimetype="text/html", headers={"Cache-Control": "no-store"})
