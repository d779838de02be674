"""Seed 002's face: an app-distribution service's app notifications (Slack or webhook).

    POST   /v1/organizations/{organizationId}/apps/{applicationId}/notifications
    GET    /v1/organizations/{organizationId}/apps/{applicationId}/notifications?page=&limit=
    GET    /v1/organizations/{organizationId}/apps/{applicationId}/notifications/{notificationId}
    PUT    /v1/organizations/{organizationId}/apps/{applicationId}/notifications/{notificationId}
    DELETE /v1/organizations/{organizationId}/apps/{applicationId}/notifications/{notificationId}

Auth is `Authorization: Bearer <API key or exchanged token>`. The organization is the
caller's account: a 24-hex organizationId must be the account's own stable id (shown as
`data.organization`; another one is 404 3001), any other valid organizationId is a label
the client keeps. The application is an app of the account, named by applicationId (its
name, or its 24-hex id, shown as `data.application`; an unknown id is 404 3001): its
notifications are the account's slack and webhook handlers whose `app` is that name,
visible in the notification-handlers API too.

A notification is created with the seed's body; without `setup` (optional in the seed's
schema) it is stored and shown, delivers nothing, and its answers carry a top-level
`message` saying so until a PUT supplies the setup. PUT takes the same body and replaces
type, events and description (absent events are false, an absent description becomes
the default one); `setup` is write-only (answers show `config`), so it may be left out
while the type stays the same, which keeps the current Slack install or webhook URL.
DELETE answers the notification as it was. Slack's `setup.slack` is an OAuth v2 code
(and its redirect URI) that Herald exchanges for an incoming webhook.

Answers are `{"status": true, "data": ...}`; a list's data is `{items, totalDocs, limit,
page, totalPages, hasPrevPage, hasNextPage, prevPage, nextPage}`. Errors are
`{"status": false, "error": {"code": N, "message": "..."}}`:

| HTTP | code | message                                                                   |
|------|------|---------------------------------------------------------------------------|
| 400  | 5001 | "Invalid parameters: <field>: <problem>[; <field>: <problem>...]"         |
|      |      | (the body, the path ids, page / limit, Slack refusing the code)           |
| 401  | 4002 | "No auth token" (no Authorization header, or no token in it)              |
| 401  | 4004 | "Invalid Token" (unknown, revoked or expired key or token)                |
| 404  | 3001 | "Entity not found" (unknown id, another app's or account's notification)  |
| 409  | 5003 | "Conflict: <detail>" (the notification changed type meanwhile)            |
| 415  | 5002 | "Unsupported media type: <detail>"                                        |
| 429  | 5004 | "Too many requests: <detail>" (with Retry-After)                          |
| 502  | 6001 | "Slack unavailable: <detail>" (Slack unreachable or not answering JSON)   |
| 503  | 6002 | "Service unavailable: <detail>" (Slack setup not configured here)         |
| 500  | 5000 | "Internal error"                                                          |
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import services, slack_oauth
from chalicelib.api.docs import QueryParam, RouteDoc
from chalicelib.api.http import Call, api_route, json_response
from chalicelib.api.pagination import base_url
from chalicelib.errors import HeraldError, InvalidInput, NotFound, Unauthorized, fields_named
from chalicelib.models.app_notifications import (
    APP_NAME,
    CLIENT_FIELDS,
    NOTIFICATION_TYPES,
    OBJECT_ID,
    PATH_ID,
    SLACK_EXCHANGE_FIELDS,
    ListQuery,
    NotificationCreate,
    NotificationEnvelope,
    NotificationError,
    NotificationErrorDetail,
    NotificationIn,
    NotificationOut,
    NotificationPage,
    NotificationPageEnvelope,
    SlackInstall,
    handler_id_of,
    is_notification,
    organization_id,
    pending_message,
)
from chalicelib.models.commands import CreateHandler, UpdateHandler
from chalicelib.models.handlers import Handler

bp = Blueprint(__name__)

PATH = "/v1/organizations/{organizationId}/apps/{applicationId}/notifications"
ITEM_PATH = PATH + "/{notificationId}"

TAG = "app notifications (app distribution)"
PAGING = (
    QueryParam("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number."),
    QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}, "Items per page."),
)
NOT_FOUND = "Entity not found"
# HTTP status -> (code, title) for the errors that carry their detail after the title.
_CODES: dict[int, tuple[int, str]] = {
    400: (5001, "Invalid parameters"),
    405: (5005, "Method not allowed"),
    409: (5003, "Conflict"),
    415: (5002, "Unsupported media type"),
    429: (5004, "Too many requests"),
    502: (6001, "Slack unavailable"),
    503: (6002, "Service unavailable"),
}


def render_error(error: HeraldError) -> Response:
    """Any Herald error in seed 002's `{status: false, error: {code, message}}` shape."""
    headers: dict[str, str] | None = None
    if isinstance(error, Unauthorized) or error.status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
        code, message = (4002, "No auth token") if _no_token() else (4004, "Invalid Token")
    elif error.status == 404:
        code, message = 3001, NOT_FOUND
    elif error.status in _CODES:
        code, title = _CODES[error.status]
        details = [p.detail for p in error.problems] if isinstance(error, InvalidInput) else [error.detail]
        message = f"{title}: {'; '.join(details)}"
    else:  # 500 and anything unexpected: no detail leaves the server
        code, message = 5000, "Internal error"
    status = error.status if error.status in (401, 404, *_CODES) else 500
    body = NotificationError(error=NotificationErrorDetail(code=code, message=message))
    return json_response(body.model_dump(), status, headers)


def _no_token() -> bool:
    authorization = bp.current_request.headers.get("authorization") or ""
    _, _, token = authorization.strip().partition(" ")
    return not token.strip()


def _app(call: Call, organization_id_: str, application_id: str) -> str:
    """Check the path's ids; the app name the notifications belong to.

    Either form of the seed's pattern: a 24-hex organizationId must be the caller's
    organization id, a 24-hex applicationId an existing app's id (else 404 3001); a slug
    organizationId is the client's label, a slug applicationId the app's name."""
    for field, value in (("organizationId", organization_id_), ("applicationId", application_id)):
        if not PATH_ID.match(value):
            raise InvalidInput(field, f"must match {PATH_ID.pattern}")
    if OBJECT_ID.match(organization_id_) and organization_id_.lower() != organization_id(call.account):
        raise NotFound(f"organization {organization_id_!r} not found")
    if OBJECT_ID.match(application_id):
        name = call.stores.apps.app_named_by_id(call.account, application_id.lower())
        if name is None:
            raise NotFound(f"application {application_id!r} not found")
        return name
    if not APP_NAME.match(application_id):
        raise InvalidInput("applicationId", "must be at most 64 characters and start with a letter or digit")
    return application_id


def _handler_id(notification_id: str) -> int:
    if not PATH_ID.match(notification_id):
        raise InvalidInput("notificationId", f"must match {PATH_ID.pattern}")
    number = handler_id_of(notification_id)
    if number is None:
        raise NotFound(f"notification {notification_id!r} not found")
    return number


def _notification(call: Call, app: str, notification_id: str) -> Handler:
    """The app's notification, or 404 (unknown, another app's, another type)."""
    handler = services.get_handler(call.stores, call.account, _handler_id(notification_id))
    if not is_notification(handler, app):
        raise NotFound(f"notification {notification_id!r} not found")
    return handler


def _slack_install(request: NotificationIn) -> SlackInstall | None:
    """Exchange the Slack OAuth code, when the body sets up a Slack connection."""
    slack = request.setup.slack
    if request.type != "slack" or slack.code is None or slack.redirectUri is None:
        return None
    with fields_named(SLACK_EXCHANGE_FIELDS):
        return slack_oauth.exchange_code(slack.code, slack.redirectUri)


def _outs(call: Call, handlers: list[Handler], app: str, token: str | None = None) -> list[NotificationOut]:
    """The notifications' seed 002 objects; the app's id is looked up once, and only if needed."""
    if not handlers:
        return []
    application = services.app_id(call.stores, call.account, app)
    organization = organization_id(call.account)
    return [NotificationOut.of(h, organization, application, token) for h in handlers]


def _ok(call: Call, handler: Handler, app: str, token: str | None = None) -> Response:
    (notification,) = _outs(call, [handler], app, token)
    envelope = NotificationEnvelope(data=notification, message=pending_message(handler))
    return json_response(envelope.answer())


@api_route(
    bp,
    PATH,
    methods=["POST"],
    render_error=render_error,
    doc=RouteDoc(
        "Create an app notification (Slack or webhook)",
        TAG,
        {200: NotificationEnvelope, 502: NotificationError, 503: NotificationError},
        body=NotificationCreate,
        errors=NotificationError,
    ),
)
def create_notification(call: Call, organizationId: str, applicationId: str) -> Response:
    app = _app(call, organizationId, applicationId)
    request: NotificationCreate = services.parse(NotificationCreate, call.body())
    slack = _slack_install(request)
    fields = {**request.command_fields(app, slack), "awaiting_setup": not request.has_setup()}
    with fields_named(CLIENT_FIELDS):
        command = services.build_command(CreateHandler, fields)
        handler = services.create_handler(call.stores, call.account, command, base_url(call.request))
    token = handler.signing_secret if handler.type == "webhook" else None  # shown once
    return _ok(call, handler, app, token)


@api_route(
    bp,
    PATH,
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc(
        "List an app's notifications",
        TAG,
        {200: NotificationPageEnvelope},
        query=PAGING,
        errors=NotificationError,
    ),
)
def list_notifications(call: Call, organizationId: str, applicationId: str) -> Response:
    app = _app(call, organizationId, applicationId)
    query: ListQuery = services.parse(ListQuery, dict(call.request.query_params or {}))
    found = call.stores.handlers.list_app_handlers(
        call.account, app, NOTIFICATION_TYPES, query.page, query.limit
    )
    items = _outs(call, found.handlers, app)
    page = NotificationPage.of(items, found.total, query.page, query.limit)
    return json_response(NotificationPageEnvelope(data=page).model_dump())


@api_route(
    bp,
    ITEM_PATH,
    methods=["GET"],
    render_error=render_error,
    doc=RouteDoc("Get an app notification", TAG, {200: NotificationEnvelope}, errors=NotificationError),
)
def get_notification(call: Call, organizationId: str, applicationId: str, notificationId: str) -> Response:
    app = _app(call, organizationId, applicationId)
    return _ok(call, _notification(call, app, notificationId), app)


@api_route(
    bp,
    ITEM_PATH,
    methods=["PUT"],
    render_error=render_error,
    doc=RouteDoc(
        "Replace an app notification (setup may be left out while the type stays)",
        TAG,
        {200: NotificationEnvelope, 409: NotificationError, 502: NotificationError, 503: NotificationError},
        body=NotificationIn,
        errors=NotificationError,
    ),
)
def replace_notification(
    call: Call, organizationId: str, applicationId: str, notificationId: str
) -> Response:
    app = _app(call, organizationId, applicationId)
    current = _notification(call, app, notificationId)
    request: NotificationIn = services.parse(NotificationIn, call.body())
    if request.type != current.type and not request.has_setup():
        raise request.missing_setup()
    slack = _slack_install(request)
    with fields_named(CLIENT_FIELDS):
        command = services.build_command(UpdateHandler, request.command_fields(app, slack))
        secret = services.update_handler(
            call.stores, call.account, current.id, command, base_url(call.request)
        )
    return _ok(call, services.get_handler(call.stores, call.account, current.id), app, secret)


@api_route(
    bp,
    ITEM_PATH,
    methods=["DELETE"],
    render_error=render_error,
    doc=RouteDoc(
        "Delete an app notification (answers it as it was)",
        TAG,
        {200: NotificationEnvelope},
        errors=NotificationError,
    ),
)
def delete_notification(call: Call, organizationId: str, applicationId: str, notificationId: str) -> Response:
    app = _app(call, organizationId, applicationId)
    handler = _notification(call, app, notificationId)
    services.delete_handler(call.stores, call.account, handler.id)
    return _ok(call, handler, app)
