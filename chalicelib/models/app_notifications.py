"""Seed 002's app notifications: the request body, the `{status, data}` object, id mapping.

An app notification IS a notification handler of type slack or webhook, scoped to an
app (`Handler.app` = the path's applicationId) and subscribed to exactly the events
whose booleans are true (send_all_events and send_all_alerts off). This module only
translates between the two shapes; the rules stay in `chalicelib.services`.

Ids: the notification id is the handler id as 24 hex digits (handler 7 is
"000000000000000000000007"); the organization id is a stable 24-hex digest of the
account; the application id is the app's ObjectId-like id (`services.app_id`).
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from chalicelib.channels.fields import check_http_url
from chalicelib.errors import InvalidInput
from chalicelib.models.events import event_type
from chalicelib.models.handlers import Handler, mask_secret

NotificationType = Literal["slack", "webhook"]
NOTIFICATION_TYPES: tuple[str, ...] = ("slack", "webhook")

PATH_ID = re.compile(r"^(([a-fA-F0-9]{24})|([a-zA-Z0-9\-]{3,}))\Z")
"""organizationId, applicationId and notificationId in the path (seed 002)."""
APP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
"""What Herald accepts as an app name (`Handler.app`, `POST /v1/events`'s `app`)."""
OBJECT_ID = re.compile(r"^[a-fA-F0-9]{24}\Z")
MAX_HANDLER_ID = 10**12 - 1  # handler ids have at most 12 digits (storage keys)

# The seed's event booleans and the Herald event types they subscribe to.
EVENTS: dict[str, str] = {
    "buildCreated": "build_created",
    "buildProcessed": "build_processed",
    "feedbackCreated": "feedback_created",
    "certificateWillExpire": "certificate_will_expire",
}

CLIENT_FIELDS: dict[str, str] = {
    "name": "description",
    "settings.webhook": "setup.webhook.url",
    "settings.slack": "setup.slack.code",
    "settings.slack_team": "setup.slack.code",
    "settings.slack_channel": "setup.slack.code",
    "subscription.selected_event_ids": "events",
    "subscription.app": "applicationId",
}
"""This face's names of the domain's fields (domain -> face), so a refusal from the
services names what this face's client sent (a Slack install's fields, which come from
the OAuth exchange, are named by the code that was exchanged)."""

SLACK_EXCHANGE_FIELDS = {"code": "setup.slack.code", "redirect_uri": "setup.slack.redirectUri"}
"""This face's names of the Slack OAuth exchange's fields."""

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def notification_id(handler_id: int) -> str:
    return f"{handler_id:024x}"


def handler_id_of(raw: str) -> int | None:
    """The handler a notification id names; None when it cannot name one."""
    if not OBJECT_ID.match(raw):
        return None
    number = int(raw, 16)
    return number if 1 <= number <= MAX_HANDLER_ID else None


def organization_id(account: str) -> str:
    """The account as a stable 24-hex id (the path's organizationId is the client's label)."""
    return hashlib.sha256(f"herald-organization:{account}".encode()).hexdigest()[:24]


def is_notification(handler: Handler, app: str) -> bool:
    """Whether `handler` is one of `app`'s notifications (of a type this face shows)."""
    return handler.app == app and handler.type in NOTIFICATION_TYPES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NotificationEvents(_Strict):
    """Which events notify; an absent key is false."""

    buildCreated: StrictBool = False
    buildProcessed: StrictBool = False
    feedbackCreated: StrictBool = False
    certificateWillExpire: StrictBool = False

    def selected(self) -> list[str]:
        return [name for key, name in EVENTS.items() if getattr(self, key)]


class SlackSetup(_Strict):
    code: str | None = Field(default=None, min_length=1, max_length=256)
    redirectUri: str | None = Field(default=None, min_length=1, max_length=256)

    def given(self) -> bool:
        return self.code is not None or self.redirectUri is not None


class WebhookSetup(_Strict):
    url: str | None = Field(default=None, max_length=256)

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    def given(self) -> bool:
        return self.url is not None


class NotificationSetup(_Strict):
    """Write-only connection details: a client may send both objects (the seed's curl
    does, empty); only the one of the notification's type is read."""

    slack: SlackSetup = Field(default_factory=SlackSetup)
    webhook: WebhookSetup = Field(default_factory=WebhookSetup)


class SlackInstall(BaseModel):
    """What a Slack OAuth exchange gave: the incoming webhook and its labels."""

    webhook_url: str
    team: str = ""
    channel: str = ""


class NotificationIn(_Strict):
    """The body of PUT: the create body, with `setup` optional while the type stays the
    same (the current Slack install or webhook URL is kept)."""

    type: NotificationType
    events: NotificationEvents = Field(default_factory=NotificationEvents)
    description: str | None = Field(default=None, max_length=128)
    setup: NotificationSetup = Field(default_factory=NotificationSetup)

    @model_validator(mode="after")
    def _slack_setup_complete(self) -> NotificationIn:
        slack = self.setup.slack
        if self.type == "slack" and slack.given():
            for field in ("code", "redirectUri"):
                if getattr(slack, field) is None:
                    raise ValueError(f"setup.slack.{field}: required for type slack")
        return self

    def has_setup(self) -> bool:
        """Whether the body carries a connection for its own type."""
        return self.setup.slack.given() if self.type == "slack" else self.setup.webhook.given()

    def missing_setup(self) -> InvalidInput:
        """The refusal of a body that must connect but does not."""
        field = "setup.slack.code" if self.type == "slack" else "setup.webhook.url"
        return InvalidInput(field, f"required for type {self.type}")

    def name(self) -> str:
        return self.description or f"{self.type.capitalize()} notification"

    def settings(self, slack: SlackInstall | None) -> dict[str, str]:
        """The handler settings of the connection this body sets up, if any."""
        if self.type == "webhook":
            return {} if self.setup.webhook.url is None else {"webhook": self.setup.webhook.url}
        if slack is None:
            return {}
        fields = {"slack": slack.webhook_url, "slack_team": slack.team, "slack_channel": slack.channel}
        return {key: value for key, value in fields.items() if value}

    def command_fields(self, app: str, slack: SlackInstall | None) -> dict[str, Any]:
        """The fields of a `CreateHandler` / `UpdateHandler`: exactly the chosen events, and
        the connection (a Slack one comes from the OAuth exchange, not from the body)."""
        return {
            "type": self.type,
            "name": self.name(),
            "settings": self.settings(slack),
            "subscription": {
                "app": app,
                "send_all_events": False,
                "send_all_alerts": False,
                "selected_event_ids": self.events.selected(),
            },
        }


class NotificationCreate(NotificationIn):
    """The body of POST (seed 002): `setup` is optional, as the seed's schema says. Without
    the setup of its type the notification is stored and shown, and delivers nothing until
    a PUT supplies it (its answers say so in `message`)."""


SETUP_PENDING = "This notification has no {field} yet: it delivers nothing until an update (PUT) supplies it."


def pending_message(handler: Handler) -> str | None:
    """What an answer says about a notification still awaiting its setup."""
    if not handler.missing_settings():
        return None
    field = "setup.slack.code" if handler.type == "slack" else "setup.webhook.url"
    return SETUP_PENDING.format(field=field)


class ListQuery(BaseModel):
    """`GET .../notifications?page=&limit=`."""

    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1)
    limit: int = Field(default=50, ge=1, le=100)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(DATETIME_FORMAT)


def handler_events(handler: Handler) -> dict[str, bool]:
    """The booleans of the events `handler` would receive (send_all_events included:
    a handler made through another face is shown as what it actually gets)."""
    answer: dict[str, bool] = {}
    for key, name in EVENTS.items():
        found = event_type(name)
        selected = found is not None and found.id in handler.selected_event_ids
        answer[key] = selected or handler.send_all_events
    return answer


class NotificationOut(BaseModel):
    """Seed 002's notification object."""

    id: str
    organization: str
    application: str
    description: str
    type: str
    config: dict[str, dict[str, str]]
    events: dict[str, bool]
    createdAt: str
    updatedAt: str

    @classmethod
    def of(
        cls, handler: Handler, organization: str, application: str, token: str | None = None
    ) -> NotificationOut:
        """`token` is the webhook signing secret in full, given only when it is new;
        otherwise a webhook's token is masked."""
        settings = handler.settings
        config: dict[str, dict[str, str]]
        if handler.type == "slack":
            config = {
                "slack": {
                    "team": settings.get("slack_team", ""),
                    "channel": settings.get("slack_channel", ""),
                }
            }
        else:
            webhook = {"url": settings.get("webhook", "")}
            secret = token or (mask_secret(handler.signing_secret) if handler.signing_secret else None)
            if secret:
                webhook["token"] = secret
            config = {"webhook": webhook}
        return cls(
            id=notification_id(handler.id),
            organization=organization,
            application=application,
            description=handler.name,
            type=handler.type,
            config=config,
            events=handler_events(handler),
            createdAt=_iso(handler.created_at),
            updatedAt=_iso(handler.updated_at),
        )


class NotificationEnvelope(BaseModel):
    """`message` only for a notification awaiting its setup."""

    status: bool = True
    data: NotificationOut
    message: str | None = None

    def answer(self) -> dict[str, Any]:
        return self.model_dump(exclude={"message"} if self.message is None else set())


class NotificationPage(BaseModel):
    """A list's data, paginated the way the app-distribution API pages its lists."""

    items: list[NotificationOut]
    totalDocs: int
    limit: int
    page: int
    totalPages: int
    hasPrevPage: bool
    hasNextPage: bool
    prevPage: int | None
    nextPage: int | None

    @classmethod
    def of(cls, items: list[NotificationOut], total: int, page: int, limit: int) -> NotificationPage:
        pages = max(1, math.ceil(total / limit))
        return cls(
            items=items,
            totalDocs=total,
            limit=limit,
            page=page,
            totalPages=pages,
            hasPrevPage=page > 1,
            hasNextPage=page < pages,
            prevPage=page - 1 if page > 1 else None,
            nextPage=page + 1 if page < pages else None,
        )


class NotificationPageEnvelope(BaseModel):
    status: bool = True
    data: NotificationPage


class NotificationErrorDetail(BaseModel):
    code: int
    message: str


class NotificationError(BaseModel):
    """Every error of this face: `{"status": false, "error": {"code", "message"}}`."""

    status: bool = False
    error: NotificationErrorDetail
