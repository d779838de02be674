"""Request and response plumbing shared by every face: auth, limits, errors.

View exceptions never reach Chalice middleware, so `api_route` is the one place that
authenticates, turns domain errors into JSON answers and keeps 500s from leaking detail.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice.app import Blueprint, Request, Response

from chalicelib import apikeys, logs, ratelimit
from chalicelib.api.bodies import parse_body
from chalicelib.api.docs import ROUTES, DocumentedRoute, RouteDoc
from chalicelib.errors import HeraldError, InternalError, Unauthorized
from chalicelib.storage.stores import Stores, get_stores

logger = logging.getLogger("herald.api")


@dataclass(frozen=True)
class Call:
    """What a view needs from one request: the request, the caller's account, the stores."""

    request: Request
    account: str
    stores: Stores
    via_portal: bool = False
    """The caller holds a portal link's token rather than an API key."""

    def body(self) -> dict[str, Any]:
        return parse_body(self.request)


def query_param(request: Request, name: str) -> str | None:
    params = request.query_params
    if params is None:
        return None
    value: str | None = params.get(name)
    return value


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


PAGE_POLICY = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
"""A Content-Security-Policy for Herald's few HTML pages: no script, no style, no frames;
their forms post back to Herald only."""


def html_response(page: str, status: int = 200) -> Response:
    """A small HTML page for a person (every value in it escaped by the caller)."""
    return Response(
        body=page,
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def error_response(error: HeraldError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return json_response(error.body(), error.status, headers)


ErrorRenderer = Callable[[HeraldError], Response]


def caller_address(request: Request) -> str:
    """The caller's address as API Gateway saw it (headers cannot forge it)."""
    return "ip:" + str(request.context.get("identity", {}).get("sourceIp", "unknown"))


def _refuse_repeated_authorization(request: Request) -> None:
    """Two Authorization headers are refused, never "first wins" or "last wins": API Gateway
    puts the last in `headers` and all of them in `multiValueHeaders`; `chalice local` joins
    them with commas (herald_local.chalice_local), which the parsers of credentials refuse."""
    repeated = request.to_original_event().get("multiValueHeaders") or {}
    if sum(len(values or ()) for name, values in repeated.items() if name.lower() == "authorization") > 1:
        raise Unauthorized("send one Authorization header, with one credential")


def api_route(
    bp: Blueprint,
    path: str,
    methods: list[str],
    *,
    public: bool = False,
    render_error: ErrorRenderer = error_response,
    doc: RouteDoc | None = None,
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register `view(call, **path_params)` on `bp` with auth and error translation.

    Each face passes its own `render_error` so its clients see errors in its shape, and
    a `doc` describing the route for the OpenAPI document. Once a request is counted, its
    answer carries the X-RateLimit-* headers, whatever its status."""
    ROUTES.extend(DocumentedRoute(path, method, public, doc) for method in methods)

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def endpoint(**params: str) -> Response:
            request = bp.current_request
            quota = None
            try:
                stores = get_stores()
                _refuse_repeated_authorization(request)
                via_portal = False
                if public:
                    account = ""
                    quota = ratelimit.check(stores.rates, caller_address(request), ratelimit.public_limit())
                else:
                    principal = apikeys.authenticate(
                        stores, request.headers.get("authorization"), source=caller_address(request)
                    )
                    account, via_portal = principal.account, principal.portal
                    logs.bind(account=account)
                    limit = ratelimit.portal_limit() if principal.portal else ratelimit.key_limit()
                    quota = ratelimit.check(stores.rates, "key:" + principal.key_id, limit)
                response = view(Call(request, account, stores, via_portal), **params)
            except ratelimit.RateLimited as limited:
                response = render_error(limited)
                response.headers.update(limited.headers())
            except HeraldError as error:
                response = render_error(error)
            except Exception:
                logger.exception("unhandled error on %s %s", request.method, path)
                response = render_error(InternalError("internal error"))
            if quota is not None and quota.limit:
                response.headers.update(quota.headers())
            return response

        # Chalice would answer other content types with its own non-JSON 415; accept them
        # all and let parse_body refuse them in Herald's error format.
        bp.route(path, methods=methods, content_types=["*/*"])(endpoint)
        return view

    return register
