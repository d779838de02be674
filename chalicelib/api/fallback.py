"""Answers for what no route serves, in Herald's JSON and the shape of the face the path
belongs to: 404 for an unknown path, 405 with `Allow` for another method of a known path.

Without these, Chalice answers a foreign method with its own error shape and an unknown
path with API Gateway's 403 "Missing Authentication Token", which `chalice local` even
returns with the caller's Authorization header in it.
"""

from __future__ import annotations

from collections.abc import Callable

from chalice.app import Chalice, Response

from chalicelib.api import app_notifications, notifiers
from chalicelib.api.docs import ROUTES
from chalicelib.api.http import ErrorRenderer, error_response
from chalicelib.errors import HeraldError, NotFound

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
MAX_SEGMENTS = 16
"""Catch-all routes cover paths of up to this many segments."""

_FACES: tuple[tuple[tuple[str, ...], ErrorRenderer], ...] = (
    (("/v1/organizations/",), app_notifications.render_error),
    (
        ("/v1/apps/", "/v1/notification_platforms", "/v1/tokens/", "/v1/users/", "/v1/regions"),
        notifiers.render_error,
    ),
)
"""Path prefixes of the secondary faces; everything else answers in the primary face's shape."""

FALLBACK = "herald_fallback"
"""Attribute that marks the views registered here (they are not part of the documented API)."""


class MethodNotAllowed(HeraldError):
    status = 405
    title = "Method not allowed"


def render_for(path: str) -> ErrorRenderer:
    for prefixes, render in _FACES:
        if path.startswith(prefixes):
            return render
    return error_response


def register(app: Chalice) -> None:
    """Add a 405 view for the other methods of every documented path, then catch-alls."""
    allowed: dict[str, list[str]] = {}
    for route in ROUTES:
        allowed.setdefault(route.path, []).append(route.method)
    for path, methods in allowed.items():
        others = [m for m in METHODS if m not in methods]
        if others:
            _route(app, path, others, _not_allowed(app, path, sorted(methods)))
    for depth in range(1, MAX_SEGMENTS + 1):
        path = "".join(f"/{{s{i}}}" for i in range(depth))
        _route(app, path, list(METHODS), _unknown(app))


def _route(app: Chalice, path: str, methods: list[str], view: Callable[..., Response]) -> None:
    setattr(view, FALLBACK, True)
    view.__name__ = f"fallback_{len(app.routes)}"
    app.route(path, methods=methods, content_types=["*/*"])(view)


def _not_allowed(app: Chalice, path: str, methods: list[str]) -> Callable[..., Response]:
    def view(**_: str) -> Response:
        error = MethodNotAllowed(f"{_method(app)} is not allowed on {path}; use {', '.join(methods)}")
        response = render_for(path)(error)
        response.headers["Allow"] = ", ".join(methods)
        return response

    return view


def _unknown(app: Chalice) -> Callable[..., Response]:
    def view(**segments: str) -> Response:
        path = "/" + "/".join(segments[f"s{i}"] for i in range(len(segments)))
        return render_for(path)(NotFound(f"no route for {_method(app)} {path}"))

    return view


def _method(app: Chalice) -> str:
    return app.current_request.method if app.current_request else ""
