"""Events in: `POST /v1/events` and the event type catalog."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.http import Call, api_route, json_response
from chalicelib.delivery.fanout import publish
from chalicelib.models.events import EVENT_TYPES

bp = Blueprint(__name__)


@api_route(bp, "/v1/events", methods=["POST"])
def publish_event(call: Call) -> Response:
    published = publish(call.store, call.account, call.body())
    return json_response(
        {"id": published.event_id, "matched": published.matched, "duplicate": published.duplicate}, 202
    )


@api_route(bp, "/v1/event_types", methods=["GET"], public=True)
def list_event_types(call: Call) -> Response:
    return json_response({"event_types": [t.model_dump() for t in EVENT_TYPES]})
