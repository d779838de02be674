"""Events in: `POST /v1/events` and the event type catalog."""

from __future__ import annotations

from chalice.app import Blueprint, Response
from pydantic import BaseModel

from chalicelib.api.docs import RouteDoc
from chalicelib.api.http import Call, api_route, json_response
from chalicelib.delivery.fanout import FanOutMode, Published, publish
from chalicelib.models.events import EVENT_TYPES, EventIn, EventType

bp = Blueprint(__name__)
TAG = "events"


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
