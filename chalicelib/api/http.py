"""Request and response plumbing shared by every face: bodies, auth, errors, pagination.

View exceptions never reach Chalice middleware, so `api_route` is the one place that
authenticates, turns domain errors into JSON answers and keeps 500s from leaking detail.
"""

from __future__ import annotations

import functools
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from chalice.app import Blueprint, Request, Response

from chalicelib import apikeys, ratelimit
from chalicelib.api.docs import ROUTES, DocumentedRoute, RouteDoc
from chalicelib.errors import HeraldError, InternalError, InvalidInput, UnsupportedMediaType
from chalicelib.storage.dynamo import Store, get_store

logger = logging.getLogger("herald.api")

BODY_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data"]
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Call:
    """What a view needs from one request: the request, the caller's account, the store."""

    request: Request
    account: str
    store: Store

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


def error_response(error: HeraldError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return json_response(error.body(), error.status, headers)


ErrorRenderer = Callable[[HeraldError], Response]


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
    a `doc` describing the route for the OpenAPI document."""
    ROUTES.extend(DocumentedRoute(path, method, public, doc) for method in methods)

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def endpoint(**params: str) -> Response:
            request = bp.current_request
            try:
                store = get_store()
                if public:
                    account = ""
                    subject = "ip:" + str(request.context.get("identity", {}).get("sourceIp", "unknown"))
                    quota = ratelimit.check(store, subject, ratelimit.public_limit())
                else:
                    principal = apikeys.authenticate(store, request.headers.get("authorization"))
                    account = principal.account
                    quota = ratelimit.check(store, "key:" + principal.key_id, ratelimit.key_limit())
                response = view(Call(request, account, store), **params)
                if quota.limit:
                    response.headers.update(quota.headers())
                return response
            except ratelimit.RateLimited as limited:
                response = render_error(limited)
                response.headers.update({**limited.quota.headers(), "Retry-After": str(limited.retry_after)})
                return response
            except HeraldError as error:
                return render_error(error)
            except Exception:
                logger.exception("unhandled error on %s %s", request.method, path)
                return render_error(InternalError("internal error"))

        # Chalice would answer other content types with its own non-JSON 415; accept them
        # all and let parse_body refuse them in Herald's error format.
        bp.route(path, methods=methods, content_types=["*/*"])(endpoint)
        return view

    return register


def parse_body(request: Request) -> dict[str, Any]:
    """The request's fields from JSON, a urlencoded form or multipart/form-data alike."""
    raw = request.raw_body or b""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput([(None, f"the body must be at most {MAX_BODY_BYTES} bytes")])
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "application/json")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/json":
        return _json_object(raw)
    if mime == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise InvalidInput([(None, "the form body is not valid UTF-8")]) from None
        return _collect(pairs)
    if mime == "multipart/form-data":
        return _multipart(content_type, raw)
    raise UnsupportedMediaType(f"unsupported Content-Type {mime!r}; send one of {', '.join(BODY_TYPES)}")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput([(None, f"the body is not valid JSON: {exc}")]) from None
    if not isinstance(body, dict):
        raise InvalidInput([(None, "the JSON body must be an object")])
    return body


def _collect(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form fields to a dict; a repeated field (or `name[]`) becomes a list."""
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(value)
        elif name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    from python_multipart import parse_form
    from python_multipart.exceptions import FormParserError

    pairs: list[tuple[str, str]] = []
    files: list[str] = []

    def on_field(field: Any) -> None:
        name = (field.field_name or b"").decode("utf-8", "replace")
        pairs.append((name, (field.value or b"").decode("utf-8", "replace")))

    def on_file(file: Any) -> None:
        files.append((file.field_name or b"").decode("utf-8", "replace"))

    headers = {"Content-Type": content_type.encode(), "Content-Length": str(len(raw)).encode()}
    try:
        parse_form(headers, io.BytesIO(raw), on_field, on_file)
    except (FormParserError, ValueError) as exc:
        raise InvalidInput([(None, f"the multipart body could not be parsed: {exc}")]) from None
    if files:
        raise InvalidInput([(files[0], f"{files[0]}: file uploads are not accepted")])
    return _collect(pairs)
