"""Seed 001's notifiers: the request body, the notifier object, and the PaaS face's other shapes.

A notifier IS a notification handler scoped to an app (`Handler.app` = the path's app),
visible in the notification-handlers API too. This module parses the PaaS's body and
builds the services' commands from it by `notifier_fields` (the domain's fields in this
face's names); the rules (settings of the type, URLs and addresses, SSRF, email
confirmation) are the services'.

- Ids: a notifier created through this face is `no-` + a UUID, as the seed's (a digest of
  the account and handler id, whose last group is the handler id: 7 is
  `no-xxxxxxxx-xxxx-8xxx-yxxx-000000000007`); handlers created before that, or through
  another face, are `no-<handler id>` ("no-7" is handler 7), and both forms name them.
- Platforms: `platform_id` names the handler type (see `chalicelib.models.platforms`);
  `type` (the platform's name) is accepted too.
- `type_data` per type: slack, webhook, discord, microsoft_teams, google_chat take
  `{"webhook_url"}`; email `{"emails": [...], "user_ids": [...]}`; telegram
  `{"token", "chat_id"}`; x `{"consumer_key", "consumer_secret", "access_token",
  "access_token_secret"}`; push_subscriber_id `{"push_subscriber_id"}`;
  internal_notification `{}`. Credentials are answered masked, as the primary face does,
  and a mask sent back changes nothing.
- Email: `emails` (up to 10 addresses) and `user_ids` (the account's one user, whose
  address is the account's, see `chalicelib.models.users`) are the handler's `email` and
  `email_user_ids` settings, comma-separated; each address is confirmed apart.
- Zero values mean "unchanged": Scalingo's Go client sends the whole notifier back with
  `""` ids, type and platform, `type_data: {}` (plus an empty `phone_number`) and year-1
  timestamps. Empty strings, null, `{}` and empty type_data values are absent fields;
  an empty event list is a real value (it clears the selection). `id`, `app_id`, `app`,
  `created_at` and `updated_at` are read-only and ignored; other unknown fields are 422.
- `selected_event_ids` takes event type ids or names (`selected_events`, the seed's
  deprecated list of names, too). On create, absent `send_all_events` and
  `send_all_alerts` are false and `active` is true, as on the PaaS.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.errors import InvalidInput
from chalicelib.models.addresses import comma_separated
from chalicelib.models.commands import Subscription, fields_from
from chalicelib.models.events import event_type
from chalicelib.models.handlers import Handler, masked
from chalicelib.models.platforms import BY_ID, BY_NAME
from chalicelib.models.users import user_address, user_id

NOTIFIER_PREFIX = "no-"
_NOTIFIER_ID = re.compile(r"^no-([1-9][0-9]{0,11})\Z")  # handler ids have at most 12 digits
BODY_ROOTS = ("notifier", "notifiers", "notifer", "notification")
"""The body's root key: the clients' `notifier`, and the seed's `notifiers`, `notifer` and
`notification` (the PATCH parameter table's root)."""

# type_data key -> handler settings field, per type (email's lists are joined by commas).
TYPE_DATA: dict[str, dict[str, str]] = {
    "email": {"emails": "email", "user_ids": "email_user_ids"},
    "webhook": {"webhook_url": "webhook"},
    "slack": {"webhook_url": "slack"},
    "discord": {"webhook_url": "discord"},
    "microsoft_teams": {"webhook_url": "microsoft_teams"},
    "google_chat": {"webhook_url": "google_chat"},
    "telegram": {"token": "telegram", "chat_id": "telegram_chat_id"},
    "x": {
        "consumer_key": "x_consumer_key",
        "consumer_secret": "x_consumer_secret",
        "access_token": "x_access_token",
        "access_token_secret": "x_access_token_secret",
    },
    "internal_notification": {},
    "push_subscriber_id": {"push_subscriber_id": "push_subscriber_id"},
}
LIST_TYPE_DATA = frozenset({"emails", "user_ids"})
"""type_data keys whose value is a list of strings."""

_GENERAL_FIELDS = {
    "type": "type",
    "name": "name",
    "enabled": "active",
    **{f"subscription.{field}": field for field in Subscription.model_fields},
}


def notifier_fields(handler_type: str) -> dict[str, str]:
    """This face's names of the domain's fields for a notifier of `handler_type`."""
    settings = {f"settings.{setting}": f"type_data.{key}" for key, setting in TYPE_DATA[handler_type].items()}
    return {**_GENERAL_FIELDS, **settings}


NOTIFIER_FIELDS: dict[str, str] = {k: v for t in TYPE_DATA for k, v in notifier_fields(t).items()}
"""This face's names of the domain's fields (domain -> face), whatever the type: to name a
refusal from the services in this face's terms."""


_NOTIFIER_UUID = re.compile(r"^no-([0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-([0-9a-f]{12}))\Z")
"""`no-` + a UUID (version 8) whose last 12 hex digits are the handler id."""


def notifier_uuid(account: str, handler_id: int) -> str:
    """The UUID of an account's notifier: a digest of (account, id), its last group the id,
    so it names the handler without an index and cannot be forged for another id."""
    digest = hashlib.sha256(f"herald-notifier:{account}:{handler_id}".encode()).hexdigest()
    variant = "89ab"[int(digest[16], 16) % 4]
    return f"{digest[:8]}-{digest[8:12]}-8{digest[13:16]}-{variant}{digest[17:20]}-{handler_id:012x}"


def notifier_id(handler: Handler) -> str:
    """`no-<uuid>` for notifiers created since ids are UUIDs, `no-<n>` for the earlier ones."""
    if handler.uuid_id:
        return f"{NOTIFIER_PREFIX}{notifier_uuid(handler.account, handler.id)}"
    return f"{NOTIFIER_PREFIX}{handler.id}"


def handler_id_of(raw: str, account: str) -> int | None:
    """The handler a notifier id names (either form); None when it cannot name one."""
    match = _NOTIFIER_ID.match(raw)
    if match:
        return int(match.group(1))
    match = _NOTIFIER_UUID.match(raw)
    if match is None:
        return None
    number = int(match.group(2), 16)
    if not 1 <= number < 10**12 or notifier_uuid(account, number) != match.group(1):
        return None
    return number


def unwrap(body: dict[str, Any]) -> dict[str, Any]:
    """The notifier fields under the body's root key (or the body itself without one)."""
    roots = [root for root in BODY_ROOTS if root in body]
    if not roots:
        return body
    if len(roots) > 1:
        raise InvalidInput(roots[1], "give the notifier once, under `notifier`")
    fields = body[roots[0]]
    if not isinstance(fields, dict):
        raise InvalidInput(roots[0], "must be an object")
    return fields


def _is_zero(value: Any) -> bool:
    return value is None or value in ("", {})


class NotifierIn(BaseModel):
    """A notifier as clients send it, to create or to update (partial)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    platform_id: str | None = Field(default=None, max_length=64)
    type: str | None = Field(default=None, max_length=64)
    name: str | None = None
    active: bool | None = None
    send_all_alerts: bool | None = None
    send_all_events: bool | None = None
    selected_event_ids: list[str] | None = None
    selected_events: list[str] | None = None
    type_data: dict[str, Any] | None = None
    # Read-only fields that clients send back: ignored.
    id: str | None = None
    app_id: str | None = None
    app: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _zero_values_are_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not _is_zero(v)}
        return data

    @field_validator("platform_id")
    @classmethod
    def _known_platform(cls, value: str | None) -> str | None:
        if value is not None and value not in BY_ID:
            raise ValueError("unknown notification platform; see GET /v1/notification_platforms")
        return value

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in BY_NAME:
            raise ValueError(f"must be one of: {', '.join(BY_NAME)}")
        return value

    @model_validator(mode="after")
    def _platform_matches_type(self) -> NotifierIn:
        if self.platform_id and self.type and BY_ID[self.platform_id].name != self.type:
            raise ValueError(f"type: platform {self.platform_id} is {BY_ID[self.platform_id].name!r}")
        return self

    def handler_type(self) -> str | None:
        """The handler type the body asks for, if it names one."""
        return BY_ID[self.platform_id].name if self.platform_id else self.type

    def create_command_fields(self, app: str) -> dict[str, Any]:
        """The fields of a `CreateHandler` for this notifier of `app`."""
        handler_type = self.handler_type()
        if handler_type is None:
            raise InvalidInput("platform_id", "required; see GET /v1/notification_platforms")
        values = {
            **self._values(handler_type),
            "app": app,
            "active": True if self.active is None else self.active,
            "send_all_events": bool(self.send_all_events),
            "send_all_alerts": bool(self.send_all_alerts),
        }
        return {**fields_from(values, notifier_fields(handler_type)), "uuid_id": True}

    def update_command_fields(self, current_type: str) -> dict[str, Any]:
        """The fields of an `UpdateHandler`; a new platform needs its type_data."""
        handler_type = self.handler_type() or current_type
        values = self._values(handler_type)
        if handler_type == current_type:
            del values["type"]
        return fields_from(values, notifier_fields(handler_type))

    def _values(self, handler_type: str) -> dict[str, Any]:
        """The given fields in this face's names (`type_data.<key>` for type_data's)."""
        events = self.selected_event_ids if self.selected_event_ids is not None else self.selected_events
        if events is not None:
            field = "selected_event_ids" if self.selected_event_ids is not None else "selected_events"
            for item in events:
                found = event_type(item)
                if found is not None and found.id not in BY_NAME[handler_type].available_event_ids:
                    raise InvalidInput(field, f"{item!r} is not available on {handler_type}")
        values = {
            "type": handler_type,
            "name": self.name,
            "active": self.active,
            "send_all_events": self.send_all_events,
            "send_all_alerts": self.send_all_alerts,
            "selected_event_ids": events,
            **self._type_data(handler_type),
        }
        return {face: value for face, value in values.items() if value is not None}

    def _type_data(self, handler_type: str) -> dict[str, str]:
        """type_data's values, keyed `type_data.<key>`; empty values are absent."""
        given: dict[str, str] = {}
        keys = TYPE_DATA[handler_type]
        for key, value in (self.type_data or {}).items():
            field = f"type_data.{key}"
            if value is None or value in ("", []):
                continue
            if key not in keys:
                problem = "unknown key" if key != "phone_number" else "not supported by Herald"
                raise InvalidInput(field, f"{problem} for platform {handler_type}")
            if key in LIST_TYPE_DATA:
                given[field] = _joined(field, value)
            elif isinstance(value, str):
                given[field] = value
            else:
                raise InvalidInput(field, "must be a string")
        return given


def _joined(field: str, value: Any) -> str:
    """A list of strings (or one string) as the comma-separated setting that holds it."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(field, "must be a list of strings")
    if any("," in v for v in value):
        raise InvalidInput(field, "give one value per list item")
    return ", ".join(value)


class NotifierBody(BaseModel):
    """The create and update body (for the OpenAPI document; `unwrap` reads it)."""

    notifier: NotifierIn


def _iso(moment: datetime) -> str:
    """ISO 8601 with milliseconds and offset, as the seed: 2018-05-14T11:46:42.077+00:00."""
    aware = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.isoformat(timespec="milliseconds")


def type_data_of(handler: Handler) -> dict[str, str | list[str]]:
    settings = masked(handler.settings)
    if handler.type == "email":
        user_ids = comma_separated(settings.get("email_user_ids", ""))
        users = {user_address(handler.account).lower()} if user_ids else set()
        emails = [a for a in handler.email_addresses() if a.lower() not in users]
        return {"emails": emails, "user_ids": user_ids}
    return {key: settings[field] for key, field in TYPE_DATA[handler.type].items() if field in settings}


class NotifierOut(BaseModel):
    """The seed 001 notifier object, attributes exactly."""

    id: str
    name: str
    active: bool
    type: str
    platform_id: str
    created_at: str
    updated_at: str
    send_all_alerts: bool
    send_all_events: bool
    selected_event_ids: list[str]
    app_id: str
    app: str
    type_data: dict[str, str | list[str]]

    @classmethod
    def of(cls, handler: Handler, app_id: str) -> NotifierOut:
        return cls(
            id=notifier_id(handler),
            name=handler.name,
            active=handler.is_enabled,
            type=handler.type,
            platform_id=BY_NAME[handler.type].id,
            created_at=_iso(handler.created_at),
            updated_at=_iso(handler.updated_at),
            send_all_alerts=handler.send_all_alerts,
            send_all_events=handler.send_all_events,
            selected_event_ids=list(handler.selected_event_ids),
            app_id=app_id,
            app=handler.app or "",
            type_data=type_data_of(handler),
        )


class NotifierEnvelope(BaseModel):
    notifier: NotifierOut


class NotifierList(BaseModel):
    notifiers: list[NotifierOut]


class SecretOut(BaseModel):
    """A webhook notifier's signing secret (`whsec_...`), which receivers verify with."""

    secret: str


class AppEventOut(BaseModel):
    """An app's event as the PaaS lists it: the seed 001 notification format."""

    id: str
    created_at: str
    user: dict[str, Any] | None
    app_id: str | None
    app_name: str | None
    type: str
    type_data: dict[str, Any]


class PaginationMeta(BaseModel):
    """The PaaS's `meta.pagination`."""

    prev_page: int | None
    current_page: int
    next_page: int | None
    total_pages: int
    total_count: int

    @classmethod
    def of(cls, page: int, per_page: int, total: int) -> PaginationMeta:
        pages = max(1, -(-total // per_page))
        return cls(
            prev_page=min(page - 1, pages) if page > 1 else None,
            current_page=page,
            next_page=page + 1 if page < pages else None,
            total_pages=pages,
            total_count=total,
        )


class ListMeta(BaseModel):
    pagination: PaginationMeta


class AppEventList(BaseModel):
    events: list[AppEventOut]
    meta: ListMeta


class AppEventEnvelope(BaseModel):
    event: AppEventOut


class ErrorMessage(BaseModel):
    """Every error but validation: `{"error": "..."}`; a 404 also names the resource."""

    error: str
    resource: str | None = None


class ValidationErrors(BaseModel):
    """422: `{"errors": {"field": ["message", ...]}}`."""

    errors: dict[str, list[str]]


class TokenOut(BaseModel):
    """`POST /v1/tokens/exchange`: a short-lived bearer token (a JWT with exp)."""

    token: str


class UserOut(BaseModel):
    """`GET /v1/users/self`: the account behind the caller's key, as a PaaS user."""

    id: str
    username: str
    email: str
    fullname: str

    @classmethod
    def of(cls, account: str) -> UserOut:
        return cls(id=user_id(account), username=account, email=user_address(account), fullname=account)


class UserEnvelope(BaseModel):
    user: UserOut


class Region(BaseModel):
    """`GET /v1/regions`: this Herald is the clients' one region."""

    name: str
    display_name: str
    api: str
    database_api: str
    dashboard: str
    ssh: str
    default: bool


class RegionList(BaseModel):
    regions: list[Region]
