"""What each route declares about itself, for the generated OpenAPI document.

`api_route(..., doc=RouteDoc(...))` records these at import time (a list append); the
document itself is built only when `GET /openapi.json` asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from chalicelib.models.api import ErrorBody


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class RouteDoc:
    summary: str
    tag: str
    responses: Mapping[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: tuple[QueryParam, ...] = ()
    errors: type[BaseModel] = ErrorBody
    html: bool = False
    """The 200 answer is a page (text/html) for a person's browser, not JSON."""


@dataclass(frozen=True)
class DocumentedRoute:
    path: str
    method: str
    public: bool
    doc: RouteDoc | None


ROUTES: list[DocumentedRoute] = []
"""Every route registered through api_route, in registration order."""


PAGING = (
    QueryParam("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number."),
    QueryParam(
        "results_per_page",
        {"type": "integer", "enum": [10, 25, 50, 100, 250, 500, 1000], "default": 25},
        "Results per page.",
    ),
)
"""The page / results_per_page query parameters of every paginated list."""
