"""The primary face: the notification-handlers API of seeds 003 and 004."""

from __future__ import annotations

import html
from datetime import UTC, timedelta

from chalice.app import Blueprint, Response

from chalicelib import clock, services
from chalicelib.api.bodies import without_nulls
from chalicelib.api.docs import PAGING, QueryParam, RouteDoc
from chalicelib.api.http import Call, api_route, html_response, json_response, query_param
from chalicelib.api.pagination import ascii_digits, base_url, page_request, paginated
from chalicelib.errors import InvalidInput, NotFound, fields_named
from chalicelib.models.api import CreatedId, Data, Page
from chalicelib.models.commands import CreateHandler, UpdateHandler, fields_from
from chalicelib.models.deliveries import (
    AttemptOut,
    AttemptStatus,
    Confirmation,
    DeliveryStats,
    Outcome,
    RecoverIn,
    RecoverOut,
    TestOutcome,
)
from chalicelib.models.handlers import (
    HANDLER_FIELDS,
    SETTING_FIELDS,
    HandlerCreate,
    HandlerOut,
    HandlerUpdate,
    is_empty,
    without_empty_foreign_fields,
)

bp = Blueprint(__name__)
TAG = "notification-handlers"


def handler_number(raw: str) -> int:
    """Ids are positive integers in ASCII digits; other digits name no handler, nor alias one."""
    if not ascii_digits(raw) or int(raw) < 1 or len(raw) > 12:
        raise NotFound(f"notification handler {raw!r} not found")
    return int(raw)


@api_route(
    bp,
    "/notification-handlers",
    methods=["GET"],
    doc=RouteDoc("List notification handlers", TAG, {200: Page[HandlerOut]}, query=PAGING),
)
def list_handlers(call: Call) -> Response:
    page = page_request(call.request)
    result = services.list_handlers(call.stores, call.account, page.page, page.per_page)
    data = [HandlerOut.of(h).model_dump() for h in result.handlers]
    return json_response(paginated(call.request, data, result.total, page))


@api_route(
    bp,
    "/notification-handlers",
    methods=["POST"],
    doc=RouteDoc("Create a notification handler", TAG, {201: Data[CreatedId]}, body=HandlerCreate),
)
def create_handler(call: Call) -> Response:
    request: HandlerCreate = services.parse(HandlerCreate, without_nulls(call.body()))
    with fields_named(HANDLER_FIELDS):
        command = services.build_command(CreateHandler, fields_from(request.given_fields(), HANDLER_FIELDS))
        handler = services.create_handler(call.stores, call.account, command, base_url(call.request))
    data: dict[str, object] = {"id": handler.id}
    if handler.type == "webhook":  # shown once: receivers verify signatures with it
        data["secret"] = handler.signing_secret
    return json_response({"data": data}, 201)


@api_route(
    bp,
    "/notification-handlers/{handler_id}",
    methods=["GET"],
    doc=RouteDoc("Get a notification handler", TAG, {200: Data[HandlerOut]}),
)
def get_handler(call: Call, handler_id: str) -> Response:
    handler = services.get_handler(call.stores, call.account, handler_number(handler_id))
    return json_response({"data": HandlerOut.of(handler).model_dump()})


@api_route(
    bp,
    "/notification-handlers/{handler_id}",
    methods=["POST", "PATCH"],
    doc=RouteDoc("Update a notification handler (partial)", TAG, {200: Data[CreatedId]}, body=HandlerUpdate),
)
def update_handler(call: Call, handler_id: str) -> Response:
    number = handler_number(handler_id)
    body = without_nulls(call.body())
    if "type" not in body and any(k in SETTING_FIELDS and is_empty(v) for k, v in body.items()):
        # A form of every type without `type`: its empty fields are those of the other types.
        body = without_empty_foreign_fields(
            body, services.get_handler(call.stores, call.account, number).type
        )
    request: HandlerUpdate = services.parse(HandlerUpdate, body)
    with fields_named(HANDLER_FIELDS):
        command = services.build_command(UpdateHandler, fields_from(request.given_fields(), HANDLER_FIELDS))
        secret = services.update_handler(call.stores, call.account, number, command, base_url(call.request))
    data: dict[str, object] = {"id": number}
    if secret is not None:
        data["secret"] = secret
    return json_response({"data": data})


@api_route(
    bp,
    "/notification-handlers/{handler_id}",
    methods=["DELETE"],
    doc=RouteDoc("Delete a notification handler", TAG, {204: None}),
)
def delete_handler(call: Call, handler_id: str) -> Response:
    services.delete_handler(call.stores, call.account, handler_number(handler_id))
    return Response(body="", status_code=204)


@api_route(
    bp,
    "/notification-handlers/{handler_id}/rotate-secret",
    methods=["POST"],
    doc=RouteDoc("Rotate the webhook signing secret (24 h overlap)", TAG, {200: Data[CreatedId]}),
)
def rotate_secret(call: Call, handler_id: str) -> Response:
    number = handler_number(handler_id)
    secret = services.rotate_secret(call.stores, call.account, number)
    return json_response({"data": {"id": number, "secret": secret}})


@api_route(
    bp,
    "/notification-handlers/{handler_id}/test",
    methods=["POST"],
    doc=RouteDoc("Send a test notification now", TAG, {200: Data[TestOutcome]}),
)
def test_handler(call: Call, handler_id: str) -> Response:
    from chalicelib.delivery.trial import send_test  # the channels' code: only when testing

    handler = services.get_handler(call.stores, call.account, handler_number(handler_id))
    result = send_test(call.stores, handler)
    outcome = TestOutcome(
        ok=result.outcome == Outcome.SENT,
        outcome=result.outcome,
        http_status=result.http_status,
        error=result.error,
        duration_ms=result.duration_ms,
    )
    return json_response({"data": outcome.model_dump(mode="json")})


ATTEMPT_FILTERS = (
    QueryParam(
        "status",
        {"type": "string", "enum": [s.value for s in AttemptStatus]},
        "Only attempts of this outcome.",
    ),
    QueryParam("event_id", {"type": "string"}, "Only attempts to deliver this event."),
)


def _attempt_filters(call: Call) -> dict[str, str]:
    """The log's filters that were given; an unknown status is a 400 naming it."""
    given = {name: query_param(call.request, name) for name in ("status", "event_id")}
    filters = {name: value for name, value in given.items() if value}
    statuses = [s.value for s in AttemptStatus]
    if filters.get("status", statuses[0]) not in statuses:
        raise InvalidInput("status", f"must be one of: {', '.join(statuses)}")
    return filters


@api_route(
    bp,
    "/notification-handlers/{handler_id}/deliveries",
    methods=["GET"],
    doc=RouteDoc(
        "Delivery attempts, newest first", TAG, {200: Page[AttemptOut]}, query=PAGING + ATTEMPT_FILTERS
    ),
)
def list_deliveries(call: Call, handler_id: str) -> Response:
    handler = services.get_handler(call.stores, call.account, handler_number(handler_id))
    page = page_request(call.request)
    filters = _attempt_filters(call)
    result = services.list_attempts(
        call.stores,
        handler,
        page.page,
        page.per_page,
        status=filters.get("status"),
        event_id=filters.get("event_id"),
    )
    data = [attempt.public().model_dump(mode="json") for attempt in result.attempts]
    return json_response(paginated(call.request, data, result.total, page, filters))


STATS_WINDOWS = (24, 168)
"""The windows a chart offers: the last day and the last week, hour by hour."""
STATS_QUERY = (QueryParam("hours", {"type": "integer", "enum": list(STATS_WINDOWS), "default": 24}),)


def stats_window(call: Call) -> int:
    """The `hours` a stats request asks for (24 unless given): one of STATS_WINDOWS."""
    hours = query_param(call.request, "hours") or "24"
    if hours not in {str(window) for window in STATS_WINDOWS}:
        raise InvalidInput("hours", f"must be one of {', '.join(map(str, STATS_WINDOWS))}")
    return int(hours)


@api_route(
    bp,
    "/notification-handlers/{handler_id}/stats",
    methods=["GET"],
    doc=RouteDoc(
        "Attempts per hour by outcome and latency, over the last 24 or 168 hours",
        TAG,
        {200: Data[DeliveryStats]},
        query=STATS_QUERY,
    ),
)
def delivery_stats(call: Call, handler_id: str) -> Response:
    handler = services.get_handler(call.stores, call.account, handler_number(handler_id))
    stats = services.delivery_stats(call.stores, handler, stats_window(call), clock.now())
    return json_response({"data": stats.model_dump(mode="json")})


RECOVER_WINDOW = timedelta(hours=24)


@api_route(
    bp,
    "/notification-handlers/{handler_id}/recover",
    methods=["POST"],
    doc=RouteDoc(
        "Queue again every delivery that failed since a moment (default: 24 h ago)",
        TAG,
        {202: Data[RecoverOut]},
        body=RecoverIn,
    ),
)
def recover(call: Call, handler_id: str) -> Response:
    from chalicelib.delivery.replay import recover_handler

    number = handler_number(handler_id)
    request: RecoverIn = services.parse(RecoverIn, call.body())
    now = clock.now()
    since = request.since or now - RECOVER_WINDOW
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since > now:
        raise InvalidInput("since", "must not be in the future")
    recovered = recover_handler(call.stores, call.account, number, since, now)
    answer = RecoverOut(
        handler_id=recovered.handler_id,
        since=since.isoformat(timespec="seconds"),
        requeued=recovered.event_ids,
    )
    return json_response({"data": answer.model_dump()}, 202)


CONFIRM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Confirm your address</title></head>
<body><main><h1>Confirm your address</h1>
<p>Someone asked Herald to send notifications to this address. If it was you, confirm:</p>
<form method="post"><button type="submit">Confirm this address</button></form>
<p>If it was not you, close this page: nothing will be sent.</p></main></body></html>
"""


@api_route(
    bp,
    "/email-confirmations/{token}",
    methods=["GET"],
    public=True,
    doc=RouteDoc("The page of the link mailed to an address: a button that confirms it", TAG, {}, html=True),
)
def confirmation_page(call: Call, token: str) -> Response:
    """The mailed link only shows a button: mail scanners that open every link (Outlook's
    Safe Links and the like) must not confirm an address in its owner's place."""
    return html_response(CONFIRM_PAGE)


@api_route(
    bp,
    "/email-confirmations/{token}",
    methods=["POST"],
    public=True,
    doc=RouteDoc("Confirm an email handler's address", TAG, {200: Data[Confirmation]}),
)
def confirm_email(call: Call, token: str) -> Response:
    """The page's button (or a client): the address starts receiving the handler's mail.
    A browser (Accept: text/html) gets a page, success or not."""
    if "text/html" not in (call.request.headers.get("accept") or ""):
        return json_response({"data": services.confirm_email(call.stores, token).model_dump()})
    try:
        confirmed = services.confirm_email(call.stores, token)
    except NotFound as exc:
        return html_response(_page("Not confirmed", f"{exc.detail}."), 404)
    return html_response(_page("Confirmed", f"{confirmed.email} will receive these notifications."))


def _page(title: str, text: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><main><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></main></body></html>"
    )
