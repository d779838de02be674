"""The primary face: the notification-handlers API of seeds 003 and 004."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import services
from chalicelib.api.http import Call, api_route, json_response
from chalicelib.api.pagination import page_request, paginated
from chalicelib.errors import NotFound
from chalicelib.models.handlers import HandlerOut

bp = Blueprint(__name__)


def _handler_id(raw: str) -> int:
    """Ids are positive integers; anything else cannot name a handler."""
    if not raw.isdigit() or int(raw) < 1 or len(raw) > 12:
        raise NotFound(f"notification handler {raw!r} not found")
    return int(raw)


@api_route(bp, "/notification-handlers", methods=["GET"])
def list_handlers(call: Call) -> Response:
    page = page_request(call.request)
    result = services.list_handlers(call.store, call.account, page.page, page.per_page)
    data = [HandlerOut.of(h).model_dump() for h in result.handlers]
    return json_response(paginated(call.request, data, result.total, page))


@api_route(bp, "/notification-handlers", methods=["POST"])
def create_handler(call: Call) -> Response:
    handler = services.create_handler(call.store, call.account, call.body())
    return json_response({"data": {"id": handler.id}}, 201)


@api_route(bp, "/notification-handlers/{handler_id}", methods=["GET"])
def get_handler(call: Call, handler_id: str) -> Response:
    handler = services.get_handler(call.store, call.account, _handler_id(handler_id))
    return json_response({"data": HandlerOut.of(handler).model_dump()})


@api_route(bp, "/notification-handlers/{handler_id}", methods=["POST", "PATCH"])
def update_handler(call: Call, handler_id: str) -> Response:
    number = _handler_id(handler_id)
    services.update_handler(call.store, call.account, number, call.body())
    return json_response({"data": {"id": number}})


@api_route(bp, "/notification-handlers/{handler_id}", methods=["DELETE"])
def delete_handler(call: Call, handler_id: str) -> Response:
    services.delete_handler(call.store, call.account, _handler_id(handler_id))
    return Response(body="", status_code=204)
