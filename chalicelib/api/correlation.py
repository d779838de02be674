"""Request logs and the correlation id: one JSON line per request, and an `X-Request-Id`
header on every answer (errors, 404s of the catch-all routes and the OpenAPI document
included), so a client quoting it finds its request's lines.

The id is the caller's `X-Request-Id` when it is a short token (so a caller's own tracing
id follows the request), else API Gateway's request id, else a new random one. The line
names the route's path template, never the path itself (an email confirmation's path is
its token) nor the query string.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Request, Response

from chalicelib import logs

HEADER = "X-Request-Id"
_CALLER_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

logger = logging.getLogger("herald.api.request")


def request_id(request: Request) -> str:
    given = request.headers.get(HEADER.lower()) if request.headers else None
    if given is not None and _CALLER_ID.fullmatch(given):
        return str(given)
    gateway = (request.context or {}).get("requestId")
    return str(gateway) if gateway else uuid.uuid4().hex


def register(app: Chalice) -> None:
    """Wrap every HTTP request of `app` (Chalice runs middleware for every route)."""

    @app.middleware("http")
    def correlate(request: Request, get_response: Callable[[Request], Response]) -> Response:
        correlation_id = request_id(request)
        started = time.perf_counter()
        with logs.bound(correlation_id=correlation_id):
            response = get_response(request)
            response.headers[HEADER] = correlation_id
            fields: dict[str, Any] = {
                "method": request.method,
                "route": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000),
            }
            level = logging.ERROR if response.status_code >= 500 else logging.INFO
            logger.log(level, "request", extra={"fields": fields})
        return response
