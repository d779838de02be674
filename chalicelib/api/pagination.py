"""page / results_per_page pagination as the seed 003/004 API does it: meta and links."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from chalice.app import Request

from chalicelib.api.http import query_param
from chalicelib.errors import InvalidInput
from chalicelib.settings import ConfigurationError, get_settings

ALLOWED_PER_PAGE = (10, 25, 50, 100, 250, 500, 1000)
DEFAULT_PER_PAGE = 25


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int


def page_request(request: Request) -> PageRequest:
    page = _integer(query_param(request, "page"), "page", 1)
    if page < 1:
        raise InvalidInput("page", "must be an integer of at least 1")
    per_page = _integer(query_param(request, "results_per_page"), "results_per_page", DEFAULT_PER_PAGE)
    if per_page not in ALLOWED_PER_PAGE:
        allowed = ", ".join(str(n) for n in ALLOWED_PER_PAGE)
        raise InvalidInput("results_per_page", f"must be one of {allowed}")
    return PageRequest(page, per_page)


def ascii_digits(raw: str) -> bool:
    """Only 0-9 are digits here: int() would also take Arabic-Indic or full-width digits, '1_0'."""
    return raw.isascii() and raw.isdigit()


def _integer(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    if not ascii_digits(raw) or len(raw) > 9:
        raise InvalidInput(name, f"must be a whole number of at most 9 digits, not {raw!r}")
    return int(raw)


def request_url(request: Request) -> str:
    """The public URL of the route the client called, without query: the base URL and
    the route with its parameters, so no byte of it is taken from the request's headers."""
    route = request.path
    for name, value in (request.uri_params or {}).items():
        route = route.replace("{" + name + "}", quote(value, safe=""))
    return base_url(request) + route


def base_url(request: Request) -> str:
    """Herald's public root, the start of every link it builds. Never the Host or
    X-Forwarded-* headers, which any client can forge: HERALD_PUBLIC_URL, else the domain
    and base path API Gateway itself routed the request through (its requestContext).
    `chalice local` sets no domainName, so there a missing setting fails loudly."""
    configured = get_settings().public_url
    if configured:
        return configured
    domain = request.context.get("domainName")
    if not domain:
        raise ConfigurationError(
            "HERALD_PUBLIC_URL is not set and the request did not come through API Gateway: "
            "set it to build links (make dev does)"
        )
    return f"https://{domain}{_base_path(request)}"


def _base_path(request: Request) -> str:
    """What precedes the route in requestContext.path: the stage on the execute-api domain,
    the base path mapping on a custom domain. Segments are counted rather than compared,
    since the path keeps the client's percent-encoding of the parameters."""
    route_segments = len([part for part in request.path.split("/") if part])
    parts = str(request.context.get("path") or "").rstrip("/").split("/")
    return "/".join(parts[: max(1, len(parts) - route_segments)])


def paginated(
    request: Request, data: list[Any], total: int, page: PageRequest, filters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """`data`, `meta` and `links` for one page; next/prev are null at the ends. The links
    keep the list's `filters` (those given), so every page is of the same list."""
    total_pages = max(1, math.ceil(total / page.per_page))
    base = request_url(request)

    def link(number: int) -> str:
        query: dict[str, int | str] = {"page": number}
        if page.per_page != DEFAULT_PER_PAGE:
            query["results_per_page"] = page.per_page
        query |= filters or {}
        return f"{base}?{urlencode(query)}"

    return {
        "data": data,
        "meta": {
            "page": page.page,
            "results_per_page": page.per_page,
            "total": total,
            "total_pages": total_pages,
        },
        "links": {
            "first": link(1),
            "last": link(total_pages),
            "next": link(page.page + 1) if page.page < total_pages else None,
            "prev": link(min(page.page - 1, total_pages)) if page.page > 1 else None,
            "self": link(page.page),
        },
    }
