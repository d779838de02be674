"""Herald's own events face: publish (`POST /v1/events`), the event type catalog, the
account's events with their deliveries, replays, and the account's dead letters."""

from __future__ import annotations

import re

from chalice.app import Blueprint, Response
from pydantic import BaseModel

from chalicelib import clock, services
from chalicelib.api.docs import PAGING, QueryParam, RouteDoc
from chalicelib.api.handlers import STATS_QUERY, handler_number, stats_window
from chalicelib.api.http import Call, api_route, json_response, query_param
from chalicelib.api.pagination import page_request, paginated
from chalicelib.delivery import report
from chalicelib.delivery.fanout import FanOutMode, Published, publish
from chalicelib.errors import InvalidInput, NotFound
from chalicelib.models.api import Data, ErrorBody, Page
from chalicelib.models.deliveries import AccountStats, EventDetail, EventOut, RedriveOut, ReplayOut
from chalicelib.models.events import EVENT_TYPES, PUBLISHABLE, EventIn, EventType

bp = Blueprint(__name__)
TAG = "events"
_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_APP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_REDRIVE = 1000
EVENT_FILTERS = (
    QueryParam("type", {"type": "string", "enum": list(PUBLISHABLE)}, "Only events of this type."),
    QueryParam("app", {"type": "string"}, "Only events of this app."),
)


class Accepted(BaseModel):
    """The answer to a published event: its id, how many handlers it matched (null while a
    large event's fan-out runs off the request path: `fan_out` is then "queued"; a publish
    of the same id answers the count once it is done)."""

    id: str
    matched: int | None
    duplicate: bool
    fan_out: FanOutMode

    @classmethod
    def of(cls, published: Published) -> Accepted:
        return cls(
            id=published.event_id,
            matched=published.matched,
            duplicate=published.duplicate,
            fan_out=published.fan_out,
        )


class EventTypes(BaseModel):
    event_types: list[EventType]


@api_route(
    bp, "/v1/events", methods=["POST"], doc=RouteDoc("Publish an event", TAG, {202: Accepted}, body=EventIn)
)
def publish_event(call: Call) -> Response:
    published = publish(call.stores, call.account, call.body())
    report.published(call.account, published)
    return json_response(Accepted.of(published).model_dump(), 202)


@api_route(
    bp,
    "/v1/event_types",
    methods=["GET"],
    public=True,
    doc=RouteDoc("The event type catalog", TAG, {200: EventTypes}),
)
def list_event_types(call: Call) -> Response:
    return json_response({"event_types": [t.model_dump() for t in EVENT_TYPES]})


def _event_id(raw: str) -> str:
    """An event id as publishing accepts it; anything else names no event."""
    if not _EVENT_ID.fullmatch(raw):
        raise NotFound(f"event {raw!r} not found")
    return raw


def _filters(call: Call) -> dict[str, str]:
    """The list's filters that were given, checked: a bad one is a 400 naming it."""
    given = {name: query_param(call.request, name) for name in ("type", "app")}
    filters = {name: value for name, value in given.items() if value}
    if "type" in filters and filters["type"] not in PUBLISHABLE:
        raise InvalidInput("type", f"unknown event type; one of: {', '.join(PUBLISHABLE)}")
    if "app" in filters and not _APP.fullmatch(filters["app"]):
        raise InvalidInput("app", "an app name is letters, digits, '_', '.' and '-', at most 64")
    return filters


@api_route(
    bp,
    "/v1/events",
    methods=["GET"],
    doc=RouteDoc(
        "The account's events, newest first", TAG, {200: Page[EventOut]}, query=PAGING + EVENT_FILTERS
    ),
)
def list_events(call: Call) -> Response:
    page = page_request(call.request)
    filters = _filters(call)
    found = call.stores.app_events.page(
        call.account,
        filters.get("app"),
        page.page,
        page.per_page,
        since=None,
        now=clock.now(),
        event_type=filters.get("type"),
    )
    data = [EventOut.of(event).model_dump() for event in found.events]
    return json_response(paginated(call.request, data, found.total, page, filters))


@api_route(
    bp,
    "/v1/events/{event_id}",
    methods=["GET"],
    doc=RouteDoc("An event and its delivery to each handler", TAG, {200: Data[EventDetail]}),
)
def get_event(call: Call, event_id: str) -> Response:
    from chalicelib.delivery.replay import event_deliveries

    found = event_deliveries(call.stores, call.account, _event_id(event_id))
    return json_response({"data": EventDetail.of_deliveries(found).model_dump()})


@api_route(
    bp,
    "/v1/events/{event_id}/replay",
    methods=["POST"],
    doc=RouteDoc("Replay an event to every handler it went to", TAG, {202: Data[ReplayOut]}),
)
def replay_event(call: Call, event_id: str) -> Response:
    from chalicelib.delivery.replay import replay_event

    replayed = replay_event(call.stores, call.account, _event_id(event_id), clock.now())
    return json_response({"data": ReplayOut(**vars(replayed)).model_dump()}, 202)


@api_route(
    bp,
    "/v1/events/{event_id}/deliveries/{handler_id}/replay",
    methods=["POST"],
    doc=RouteDoc("Replay an event to one handler", TAG, {202: Data[ReplayOut], 409: ErrorBody}),
)
def replay_delivery(call: Call, event_id: str, handler_id: str) -> Response:
    from chalicelib.delivery.replay import replay_event

    replayed = replay_event(
        call.stores, call.account, _event_id(event_id), clock.now(), handler_number(handler_id)
    )
    return json_response({"data": ReplayOut(**vars(replayed)).model_dump()}, 202)


@api_route(
    bp,
    "/v1/dead-letters/redrive",
    methods=["POST"],
    doc=RouteDoc(
        "Give the account's dead-lettered deliveries a fresh schedule",
        TAG,
        {200: Data[RedriveOut]},
        query=(
            QueryParam(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_REDRIVE, "default": MAX_REDRIVE},
                "At most this many deliveries.",
            ),
        ),
    ),
)
def redrive_dead_letters(call: Call) -> Response:
    from chalicelib.delivery.redrive import redrive

    raw = query_param(call.request, "limit") or str(MAX_REDRIVE)
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_REDRIVE):
        raise InvalidInput("limit", f"must be a whole number from 1 to {MAX_REDRIVE}")
    moved = redrive(call.stores, int(raw), account=call.account)
    return json_response({"data": RedriveOut(redriven=moved).model_dump()})


@api_route(
    bp,
    "/v1/stats",
    methods=["GET"],
    doc=RouteDoc(
        "The account's attempts per hour by outcome and mean latency, every handler together, "
        "over the last 24 or 168 hours",
        TAG,
        {200: Data[AccountStats]},
        query=STATS_QUERY,
    ),
)
def account_stats(call: Call) -> Response:
    stats = services.account_stats(call.stores, call.account, stats_window(call), clock.now())
    return json_response({"data": stats.model_dump(mode="json")})
