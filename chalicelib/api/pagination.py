"""page / results_per_page pagination as the seed 003/004 API does it: meta and links."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from chalice.app import Request

from chalicelib.api.http import query_param
from chalicelib.errors import InvalidInput
from chalicelib.settings import get_settings

ALLOWED_PER_PAGE = (10, 25, 50, 100, 250, 500, 1000)
DEFAULT_PER_PAGE = 25


@dataclass(frozen=True)
class PageRequest:
    page: int
    per_page: int


def page_request(request: Request) -> PageRequest:
    page = _integer(query_param(request, "page"), "page", 1)
    if page < 1:
        raise InvalidInput([("page", "page: must be an integer of at least 1")])
    per_page = _integer(query_param(request, "results_per_page"), "results_per_page", DEFAULT_PER_PAGE)
    if per_page not in ALLOWED_PER_PAGE:
        allowed = ", ".join(str(n) for n in ALLOWED_PER_PAGE)
        raise InvalidInput([("results_per_page", f"results_per_page: must be one of {allowed}")])
    return PageRequest(page, per_page)


def _integer(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput([(name, f"{name}: must be an integer, not {raw!r}")]) from None


def request_url(request: Request) -> str:
    """The absolute URL the client called, without query: host, stage and path as it sent them."""
    headers = request.headers
    proto = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
    host = headers.get("host", "localhost")
    path = request.context.get("path") or request.path
    return f"{proto}://{host}{path}"


def base_url(request: Request) -> str:
    """Herald's public root as this client reaches it (HERALD_PUBLIC_URL wins): the
    request URL minus the route's own path, so a stage or base-path prefix is kept."""
    configured = get_settings().public_url
    if configured:
        return configured.rstrip("/")
    route = request.path
    for name, value in (request.uri_params or {}).items():
        route = route.replace("{" + name + "}", value)
    return request_url(request).removesuffix(route)


def paginated(request: Request, data: list[Any], total: int, page: PageRequest) -> dict[str, Any]:
    """`data`, `meta` and `links` for one page; next/prev are null at the ends."""
    total_pages = max(1, math.ceil(total / page.per_page))
    base = request_url(request)

    def link(number: int) -> str:
        query: dict[str, int] = {"page": number}
        if page.per_page != DEFAULT_PER_PAGE:
            query["results_per_page"] = page.per_page
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
