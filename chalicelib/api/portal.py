"""The delivery portal: portal links for one account, and the page and assets that use them.

    POST /v1/portal/sessions                 201 {"data": {url, token, expires_at}} (API key only)
    GET  /portal                             the page (HTML, strict CSP; the token rides in #token=)
    GET  /portal/assets/{version}/{name}     its modules and style sheet, cached for a year

The page is a client of the JSON API like any other: it holds no data and no delivery logic.
Its files live in chalicelib/portal/ and ship in the Lambda package with the code.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from chalice.app import Blueprint, Response
from pydantic import BaseModel

from chalicelib import apikeys, clock
from chalicelib.api.docs import RouteDoc
from chalicelib.api.http import Call, api_route
from chalicelib.api.pagination import base_url
from chalicelib.channels import SETTINGS
from chalicelib.errors import Forbidden, NotFound
from chalicelib.models.api import Data
from chalicelib.settings import get_settings

bp = Blueprint(__name__)
TAG = "portal"
FILES = Path(__file__).resolve().parent.parent / "portal"
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class PortalSessionOut(BaseModel):
    url: str
    """The page, with the token in its fragment (browsers never send a fragment to a server)."""
    token: str
    expires_at: str


@api_route(
    bp,
    "/v1/portal/sessions",
    methods=["POST"],
    doc=RouteDoc("A portal link for the API key's account (short-lived)", TAG, {201: Data[PortalSessionOut]}),
)
def create_session(call: Call) -> Response:
    """A portal token cannot make another: a link would otherwise outlive its expiry."""
    if call.via_portal:
        raise Forbidden("a portal link cannot make portal links; use the account's API key")
    token, expires_at = apikeys.create_portal_session(call.stores, call.account, clock.now())
    answer = PortalSessionOut(
        url=portal_url(base_url(call.request), token),
        token=token,
        expires_at=expires_at.isoformat(timespec="seconds"),
    )
    return Response(
        body=json.dumps({"data": answer.model_dump()}),
        status_code=201,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def portal_url(root: str, token: str) -> str:
    return f"{root}/portal#token={token}"


def content_security_policy() -> str:
    """Scripts, styles and requests from Herald only; no inline code; framed only by the
    stage's HERALD_PORTAL_FRAME_ANCESTORS."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        f"img-src 'self' data:; frame-ancestors {get_settings().portal_frame_ancestors}; "
        "base-uri 'none'; form-action 'none'"
    )


@functools.cache
def _assets() -> dict[str, bytes]:
    """The page's modules and style sheet by name, read once per container."""
    return {path.name: path.read_bytes() for path in FILES.iterdir() if path.suffix in ASSET_TYPES}


@functools.cache
def assets_version() -> str:
    """One hash of every asset: a new release gets new URLs, so each can be cached for good."""
    digest = hashlib.sha256()
    for name, body in sorted(_assets().items()):
        digest.update(name.encode() + b"\0" + body)
    return digest.hexdigest()[:12]


def handler_types() -> dict[str, dict[str, list[str]]]:
    """What the form needs of each type, from the same settings models the API validates with."""
    return {
        name: {
            "required": list(model.required_fields()),
            "optional": list(model.optional_fields()),
            "secret": list(model.secret_fields()),
            "url": list(model.url_fields()),
        }
        for name, model in SETTINGS.items()
    }


@functools.cache
def _page() -> str:
    """index.html with its asset version and the handler types (a JSON data block, which
    no browser runs; `<` is escaped so no value can close the element)."""
    types = json.dumps(handler_types(), separators=(",", ":")).replace("<", "\\u003c")
    template = (FILES / "index.html").read_text()
    return template.replace("{{version}}", assets_version()).replace("{{types}}", types)


@api_route(
    bp,
    "/portal",
    methods=["GET"],
    public=True,
    doc=RouteDoc("The delivery portal (open the URL of a portal link)", TAG, {}, html=True),
)
def page(call: Call) -> Response:
    return Response(
        body=_page(),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": content_security_policy(),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@api_route(
    bp,
    "/portal/assets/{version}/{name}",
    methods=["GET"],
    public=True,
    doc=RouteDoc("A module or style sheet of the portal", TAG, {}),
)
def asset(call: Call, version: str, name: str) -> Response:
    body = _assets().get(name)
    if body is None or version != assets_version():
        raise NotFound(f"no portal asset {name!r} in this release")
    return Response(
        body=body.decode(),
        status_code=200,
        headers={
            "Content-Type": ASSET_TYPES[Path(name).suffix],
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
