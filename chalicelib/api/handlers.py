"""The primary face: the notification-handlers API of seeds 003 and 004."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import services
from chalicelib.api.http import Call, api_route, json_response
from chalicelib.api.pagination import base_url, page_request, paginated
from chalicelib.delivery.trial import send_test
from chalicelib.errors import NotFound
from chalicelib.models.deliveries import Outcome
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
    handler = services.create_handler(call.store, call.account, call.body(), base_url(call.request))
    data: dict[str, object] = {"id": handler.id}
    if handler.type == "webhook":  # shown once: receivers verify signatures with it
        data["secret"] = handler.signing_secret
    return json_response({"data": data}, 201)


@api_route(bp, "/notification-handlers/{handler_id}", methods=["GET"])
def get_handler(call: Call, handler_id: str) -> Response:
    handler = services.get_handler(call.store, call.account, _handler_id(handler_id))
    return json_response({"data": HandlerOut.of(handler).model_dump()})


@api_route(bp, "/notification-handlers/{handler_id}", methods=["POST", "PATCH"])
def update_handler(call: Call, handler_id: str) -> Response:
    number = _handler_id(handler_id)
    secret = services.update_handler(call.store, call.account, number, call.body(), base_url(call.request))
    data: dict[str, object] = {"id": number}
    if secret is not None:
        data["secret"] = secret
    return json_response({"data": data})


@api_route(bp, "/notification-handlers/{handler_id}", methods=["DELETE"])
def delete_handler(call: Call, handler_id: str) -> Response:
    services.delete_handler(call.store, call.account, _handler_id(handler_id))
    return Response(body="", status_code=204)


@api_route(bp, "/notification-handlers/{handler_id}/rotate-secret", methods=["POST"])
def rotate_secret(call: Call, handler_id: str) -> Response:
    number = _handler_id(handler_id)
    secret = services.rotate_secret(call.store, call.account, number)
    return json_response({"data": {"id": number, "secret": secret}})


@api_route(bp, "/notification-handlers/{handler_id}/test", methods=["POST"])
def test_handler(call: Call, handler_id: str) -> Response:
    handler = services.get_handler(call.store, call.account, _handler_id(handler_id))
    result = send_test(call.store, handler)
    return json_response(
        {
            "data": {
                "ok": result.outcome == Outcome.SENT,
                "outcome": result.outcome.value,
                "http_status": result.http_status,
                "error": result.error,
                "duration_ms": result.duration_ms,
            }
        }
    )


@api_route(bp, "/notification-handlers/{handler_id}/deliveries", methods=["GET"])
def list_deliveries(call: Call, handler_id: str) -> Response:
    handler = services.get_handler(call.store, call.account, _handler_id(handler_id))
    page = page_request(call.request)
    result = call.store.list_attempts(call.account, handler, page.page, page.per_page)
    data = [attempt.public() for attempt in result.attempts]
    return json_response(paginated(call.request, data, result.total, page))


@api_route(bp, "/email-confirmations/{token}", methods=["GET"], public=True)
def confirm_email(call: Call, token: str) -> Response:
    """The link mailed to a new email handler's address: it switches the handler on."""
    return json_response({"data": services.confirm_email(call.store, token)})
