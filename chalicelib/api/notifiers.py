"""Seed 001's face: a PaaS's per-app notifiers, and the auth and discovery routes its clients call.

    GET    /v1/apps/{app}/notifiers                      {"notifiers": [...]}
    POST   /v1/apps/{app}/notifiers                      201 {"notifier": {...}}
    GET    /v1/apps/{app}/notifiers/{notifier_id}        {"notifier": {...}}
    PATCH  /v1/apps/{app}/notifiers/{notifier_id}        {"notifier": {...}}
    POST   /v1/apps/{app}/notifiers/{notifier_id}/test   {"notifier": {...}} once the test was delivered
    GET    /v1/apps/{app}/notifiers/{notifier_id}/secret         {"secret": "whsec_..."} (webhooks)
    POST   /v1/apps/{app}/notifiers/{notifier_id}/rotate_secret  {"secret": new}; the old one signs 24 h more
    DELETE /v1/apps/{app}/notifiers/{notifier_id}        204
    POST   /v1/apps/{app}/events                         202, as POST /v1/events, for that app
    GET    /v1/apps/{app}/events?page=&per_page=&from=   {"events": [...], "meta": {"pagination": {...}}}
    GET    /v1/apps/{app}/events/{event_id}              {"event": {...}}
    POST   /v1/tokens/exchange                           {"token": "<JWT>"} for Basic auth with the API key
    GET    /v1/users/self                                {"user": {...}}
    GET    /v1/regions                                   {"regions": [{... "api": this Herald}]}

A notifier is a handler of the caller's account scoped to the app (see
`chalicelib.models.notifiers`); apps are created on first use. The PaaS's clients
(Scalingo's npm package and Go client) exchange the API key for a JWT at
`/v1/tokens/exchange` (HTTP Basic, the key as password) and send it as
`Authorization: Bearer`, which every route accepts, as it accepts the API key itself.

Errors are the PaaS's: 422 `{"errors": {"field": ["message"]}}` for invalid fields, 400
`{"error": ...}` for a body that is not a JSON object, 404 `{"resource": "notifier",
"error": "not found"}`, `{"error": ...}` for 401, 409, 415, 429, 502 (the test
notification was not delivered), 503 and 500.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import timedelta
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib import apikeys, clock, services
from chalicelib.api.docs import QueryParam, RouteDoc
from chalicelib.api.events import Accepted
from chalicelib.api.http import Call, api_route, caller_address, json_response, query_param
from chalicelib.api.pagination import ascii_digits, base_url
from chalicelib.delivery.fanout import publish
from chalicelib.errors import HeraldError, InvalidInput, NotFound, Unauthorized, fields_named
from chalicelib.models.app_notifications import APP_NAME
from chalicelib.models.commands import CreateHandler, UpdateHandler
from chalicelib.models.events import Event, EventIn
from chalicelib.models.handlers import Handler
from chalicelib.models.notifiers import (
    NOTIFIER_FIELDS,
    AppEventEnvelope,
    AppEventList,
    AppEventOut,
    ErrorMessage,
    ListMeta,
    NotifierBody,
    NotifierEnvelope,
    NotifierIn,
    NotifierList,
    NotifierOut,
    PaginationMeta,
    Region,
    RegionList,
    SecretOut,
    TokenOut,
    UserEnvelope,
    UserOut,
    ValidationErrors,
    handler_id_of,
    unwrap,
)

bp = Blueprint(__name__)
TAG = "notifiers (PaaS)"
EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")  # what POST /v1/events accepts as an id
PATH = "/v1/apps/{app}/notifiers"
ITEM_PATH = PATH + "/{notifier_id}"


class ResourceNotFound(NotFound):
    """A 404 that names its resource, as the PaaS's clients print it."""

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource} not found")
        self.resource = resource


class NotDelivered(HeraldError):
    """The test notification did not reach the notifier's target."""

    status = 502
    title = "Bad gateway"


def render_error(error: HeraldError) -> Response:
    """Any Herald error in the PaaS's shapes; refusals name the notifier's fields."""
    if isinstance(error, InvalidInput) and any(problem.field for problem in error.problems):
        errors: dict[str, list[str]] = {}
        for problem in error.problems:
            errors.setdefault(problem.field or "base", []).append(problem.message)
        return json_response({"errors": errors}, 422)
    if isinstance(error, InvalidInput):
        return json_response({"error": "; ".join(problem.message for problem in error.problems)}, 400)
    body: dict[str, Any] = {"error": error.detail}  # a 500's detail never carries its cause
    if error.status == 404:
        body = {"resource": error.resource} if isinstance(error, ResourceNotFound) else {}
        body["error"] = "not found"
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return json_response(body, error.status, headers)


ERRORS = {422: ValidationErrors}


def _app(app: str) -> str:
    """The path's app name; a name Herald cannot hold names no app."""
    if not APP_NAME.match(app):
        raise ResourceNotFound("app")
    return app


def _notifier(call: Call, app: str, raw_id: str) -> Handler:
    """The app's notifier, or 404 (unknown, malformed, another app's or account's)."""
    number = handler_id_of(raw_id, call.account)
    try:
        handler = None if number is None else services.get_handler(call.stores, call.account, number)
    except NotFound:
        handler = None
    if handler is None or handler.app != app:
        raise ResourceNotFound("notifier")
    return handler


def _out(call: Call, handler: Handler, app: str) -> dict[str, Any]:
    return NotifierOut.of(handler, services.app_id(call.stores, call.account, app)).model_dump()


@api_route(
    bp,
    PATH,
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc("List an app's notifiers", TAG, {200: NotifierList}, errors=ErrorMessage),
)
def list_notifiers(call: Call, app: str) -> Response:
    name = _app(app)
    found = call.stores.handlers.app_handlers(call.account, name)
    app_id = services.app_id(call.stores, call.account, name) if found else ""
    return json_response({"notifiers": [NotifierOut.of(h, app_id).model_dump() for h in found]})


@api_route(
    bp,
    PATH,
    methods=["POST"],
    render_error=render_error,
    doc=RouteDoc(
        "Add a notifier to an app",
        TAG,
        {201: NotifierEnvelope, **ERRORS},
        body=NotifierBody,
        errors=ErrorMessage,
    ),
)
def create_notifier(call: Call, app: str) -> Response:
    name = _app(app)
    request: NotifierIn = services.parse(NotifierIn, unwrap(call.body()))
    with fields_named(NOTIFIER_FIELDS):
        command = services.build_command(CreateHandler, request.create_command_fields(name))
        handler = services.create_handler(call.stores, call.account, command, base_url(call.request))
    return json_response({"notifier": _out(call, handler, name)}, 201)


@api_route(
    bp,
    ITEM_PATH,
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc("Get a notifier", TAG, {200: NotifierEnvelope}, errors=ErrorMessage),
)
def get_notifier(call: Call, app: str, notifier_id: str) -> Response:
    name = _app(app)
    return json_response({"notifier": _out(call, _notifier(call, name, notifier_id), name)})


@api_route(
    bp,
    ITEM_PATH,
    methods=["PATCH"],
    render_error=render_error,
    doc=RouteDoc(
        "Update a notifier (zero values leave fields unchanged)",
        TAG,
        {200: NotifierEnvelope, **ERRORS},
        body=NotifierBody,
        errors=ErrorMessage,
    ),
)
def update_notifier(call: Call, app: str, notifier_id: str) -> Response:
    name = _app(app)
    current = _notifier(call, name, notifier_id)
    request: NotifierIn = services.parse(NotifierIn, unwrap(call.body()))
    with fields_named(NOTIFIER_FIELDS):
        command = services.build_command(UpdateHandler, request.update_command_fields(current.type))
        services.update_handler(call.stores, call.account, current.id, command, base_url(call.request))
    handler = services.get_handler(call.stores, call.account, current.id)
    return json_response({"notifier": _out(call, handler, name)})


@api_route(
    bp,
    ITEM_PATH + "/test",
    methods=["POST"],
    render_error=render_error,
    doc=RouteDoc(
        "Send a test notification now", TAG, {200: NotifierEnvelope, 502: ErrorMessage}, errors=ErrorMessage
    ),
)
def test_notifier(call: Call, app: str, notifier_id: str) -> Response:
    from chalicelib.delivery.trial import send_test  # the channels' code: only when testing
    from chalicelib.models.deliveries import Outcome

    name = _app(app)
    handler = _notifier(call, name, notifier_id)
    caller = UserOut.of(call.account)
    user = {"username": caller.username, "email": caller.email, "id": caller.id}
    result = send_test(
        call.stores, handler, app_id=services.app_id(call.stores, call.account, name), user=user
    )
    if result.outcome != Outcome.SENT:
        raise NotDelivered(f"the test notification was not delivered: {result.error or result.outcome}")
    return json_response({"notifier": _out(call, handler, name)})


def _webhook(call: Call, app: str, notifier_id: str) -> Handler:
    """The app's webhook notifier: only webhooks sign what they send."""
    handler = _notifier(call, _app(app), notifier_id)
    if handler.type != "webhook" or not handler.signing_secret:
        raise InvalidInput("type", "only webhook notifiers have a signing secret")
    return handler


@api_route(
    bp,
    ITEM_PATH + "/secret",
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc("A webhook notifier's signing secret", TAG, {200: SecretOut, **ERRORS}, errors=ErrorMessage),
)
def get_secret(call: Call, app: str, notifier_id: str) -> Response:
    secret = _webhook(call, app, notifier_id).signing_secret
    return json_response(SecretOut(secret=secret or "").model_dump())


@api_route(
    bp,
    ITEM_PATH + "/rotate_secret",
    methods=["POST"],
    render_error=render_error,
    doc=RouteDoc(
        "Rotate a webhook notifier's signing secret (the old one signs 24 h more)",
        TAG,
        {200: SecretOut, **ERRORS},
        errors=ErrorMessage,
    ),
)
def rotate_secret(call: Call, app: str, notifier_id: str) -> Response:
    handler = _webhook(call, app, notifier_id)
    secret = services.rotate_secret(call.stores, call.account, handler.id)
    return json_response(SecretOut(secret=secret).model_dump())


@api_route(
    bp,
    ITEM_PATH,
    methods=["DELETE"],
    render_error=render_error,
    doc=RouteDoc("Remove a notifier", TAG, {204: None}, errors=ErrorMessage),
)
def delete_notifier(call: Call, app: str, notifier_id: str) -> Response:
    handler = _notifier(call, _app(app), notifier_id)
    services.delete_handler(call.stores, call.account, handler.id)
    return Response(body="", status_code=204)


@api_route(
    bp,
    "/v1/apps/{app}/events",
    methods=["POST"],
    render_error=render_error,
    doc=RouteDoc(
        "Publish an event of an app", TAG, {202: Accepted, **ERRORS}, body=EventIn, errors=ErrorMessage
    ),
)
def publish_app_event(call: Call, app: str) -> Response:
    """As `POST /v1/events`, the app taken from the path (the body may sit under `event`)."""
    name = _app(app)
    body = call.body()
    if isinstance(body.get("event"), dict) and len(body) == 1:
        body = body["event"]
    published = publish(call.stores, call.account, {**body, "app": name})
    return json_response(Accepted.of(published).model_dump(), 202)


EVENTS_PER_PAGE = 30
MAX_EVENTS_PER_PAGE = 100
MAX_FROM_HOURS = 72
EVENT_PAGING = (
    QueryParam("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number."),
    QueryParam(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": MAX_EVENTS_PER_PAGE, "default": EVENTS_PER_PAGE},
        "Events per page.",
    ),
    QueryParam(
        "from", {"type": "integer", "minimum": 1, "maximum": MAX_FROM_HOURS}, "Only the last N hours."
    ),
)


def _bounded(call: Call, name: str, default: int | None, high: int) -> int | None:
    """A whole number query parameter between 1 and `high` (ASCII digits only)."""
    raw = query_param(call.request, name)
    if raw is None or raw == "":
        return default
    if not ascii_digits(raw) or len(raw) > 9 or not 1 <= int(raw) <= high:
        raise InvalidInput(name, f"must be a whole number from 1 to {high}, not {raw!r}")
    return int(raw)


def _event_out(event: Event) -> AppEventOut:
    return AppEventOut.model_validate(event.payload())


@api_route(
    bp,
    "/v1/apps/{app}/events",
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc(
        "List an app's events, newest first",
        TAG,
        {200: AppEventList, **ERRORS},
        query=EVENT_PAGING,
        errors=ErrorMessage,
    ),
)
def list_app_events(call: Call, app: str) -> Response:
    name = _app(app)
    page = _bounded(call, "page", 1, 10**9 - 1) or 1
    per_page = _bounded(call, "per_page", EVENTS_PER_PAGE, MAX_EVENTS_PER_PAGE) or EVENTS_PER_PAGE
    hours = _bounded(call, "from", None, MAX_FROM_HOURS)
    now = clock.now()
    since = None if hours is None else now - timedelta(hours=hours)
    found = call.stores.app_events.page(call.account, name, page, per_page, since=since, now=now)
    answer = AppEventList(
        events=[_event_out(e) for e in found.events],
        meta=ListMeta(pagination=PaginationMeta.of(page, per_page, found.total)),
    )
    return json_response(answer.model_dump())


@api_route(
    bp,
    "/v1/apps/{app}/events/{event_id}",
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc("Get an app's event", TAG, {200: AppEventEnvelope}, errors=ErrorMessage),
)
def get_app_event(call: Call, app: str, event_id: str) -> Response:
    name = _app(app)
    event = call.stores.deliveries.get_event(call.account, event_id) if EVENT_ID.match(event_id) else None
    if event is None or event.app != name:
        raise ResourceNotFound("event")
    return json_response({"event": _event_out(event).model_dump()})


def _basic_password(authorization: str | None) -> str:
    """The API key from `Authorization: Basic` (the password, or the user if no password)."""
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("send the API key as the password of HTTP Basic auth")
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed HTTP Basic credentials") from None
    key = password or user
    if not key:
        raise Unauthorized("send the API key as the password of HTTP Basic auth")
    return key


@api_route(
    bp,
    "/v1/tokens/exchange",
    methods=["POST"],
    public=True,
    render_error=render_error,
    doc=RouteDoc(
        "Exchange an API key for a bearer token",
        TAG,
        {200: TokenOut, 401: ErrorMessage},
        errors=ErrorMessage,
    ),
)
def exchange_token(call: Call) -> Response:
    key = _basic_password(call.request.headers.get("authorization"))
    token = apikeys.exchange_for_token(call.stores, key, source=caller_address(call.request))
    return json_response({"token": token})


@api_route(
    bp,
    "/v1/users/self",
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc("The caller, as a PaaS user", TAG, {200: UserEnvelope}, errors=ErrorMessage),
)
def current_user(call: Call) -> Response:
    return json_response({"user": UserOut.of(call.account).model_dump()})


@api_route(
    bp,
    "/v1/regions",
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc("Regions: this Herald", TAG, {200: RegionList}, errors=ErrorMessage),
)
def list_regions(call: Call) -> Response:
    url = base_url(call.request)
    region = Region(
        name="local",
        display_name="Herald",
        api=url,
        database_api=url,
        dashboard=url,
        ssh="",
        default=True,
    )
    return json_response({"regions": [region.model_dump()]})
