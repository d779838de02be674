"""Seed 000's face: the notification platforms catalog, public like the PaaS's.

    GET /v1/notification_platforms                   {"notification_platforms": [...]}
    GET /v1/notification_platforms/search?name=NAME  {"notification_platforms": [...]} (zero or one)
    GET /v1/notification_platforms/{platform_id}     {"notification_platform": {...}}

Errors are the PaaS's, as on its notifiers (`chalicelib.api.notifiers.render_error`).
The static `search` segment wins over `{platform_id}`, in API Gateway and in Chalice's
local router alike (no platform id is "search").
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.docs import QueryParam, RouteDoc
from chalicelib.api.http import Call, api_route, json_response, query_param
from chalicelib.api.notifiers import ResourceNotFound, render_error
from chalicelib.errors import InvalidInput
from chalicelib.models.notifiers import ErrorMessage, ValidationErrors
from chalicelib.models.platforms import BY_ID, PLATFORMS, PlatformEnvelope, PlatformList, search

bp = Blueprint(__name__)
TAG = "notification platforms (PaaS)"
NAME = QueryParam("name", {"type": "string"}, "The platform's name, e.g. slack.")


@api_route(
    bp,
    "/v1/notification_platforms",
    methods=["GET"],
    public=True,
    render_error=render_error,
    doc=RouteDoc("List notification platforms", TAG, {200: PlatformList}, errors=ErrorMessage),
)
def list_platforms(call: Call) -> Response:
    return json_response({"notification_platforms": [p.model_dump() for p in PLATFORMS]})


@api_route(
    bp,
    "/v1/notification_platforms/search",
    methods=["GET"],
    public=True,
    render_error=render_error,
    doc=RouteDoc(
        "Search notification platforms by name",
        TAG,
        {200: PlatformList, 422: ValidationErrors},
        query=(NAME,),
        errors=ErrorMessage,
    ),
)
def search_platforms(call: Call) -> Response:
    name = (query_param(call.request, "name") or "").strip()
    if not name:
        raise InvalidInput("name", "required, e.g. ?name=slack")
    return json_response({"notification_platforms": [p.model_dump() for p in search(name)]})


@api_route(
    bp,
    "/v1/notification_platforms/{platform_id}",
    methods=["GET"],
    public=True,
    render_error=render_error,
    doc=RouteDoc("Get a notification platform", TAG, {200: PlatformEnvelope}, errors=ErrorMessage),
)
def get_platform(call: Call, platform_id: str) -> Response:
    platform = BY_ID.get(platform_id)
    if platform is None:
        raise ResourceNotFound("notification_platform")
    return json_response({"notification_platform": platform.model_dump()})
