"""Cloud Function (gen2), HTTP, private: the Python API's read and admin operations as `{"op": ..., ...}` JSON calls."""

from __future__ import annotations

import functions_framework
from flask import Request, Response

from shared.api import Answer, dispatch
from shared.config import Settings
from shared.domain.json_payload import decode_body
from shared.errors import BadRequest
from shared.observability import get_logger

log = get_logger("api")


@functions_framework.http
def api(request: Request) -> Response:
    """POST a JSON body `{"op": "get_statistics"}`; answers JSON (400 says what is wrong)."""
    if request.method != "POST":
        return Response(
            '{"error": "use POST with a JSON body, e.g. {\\"op\\": \\"get_statistics\\"}"}',
            405,
            mimetype="application/json",
        )
    try:
        body = decode_body(request.get_data(), BadRequest)
    except BadRequest as exc:  # not JSON, too large, nested too deep: refused before any op runs
        body, answer = None, Answer(400, {"error": exc.reason})
    else:
        answer = dispatch(body, Settings.from_env())
    op = body.get("op") if isinstance(body, dict) else None
    log.log(20 if answer.status < 400 else 30, "api call", extra={"op": op, "status": answer.status})
    return Response(answer.json(), answer.status, mimetype="application/json")
