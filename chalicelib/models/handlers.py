"""Notification handlers: the request bodies, the stored item and the seed 003/004 response shape."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from chalicelib.channels import SETTINGS
from chalicelib.models.addresses import email_addresses
from chalicelib.models.api import DATETIME_FORMAT
from chalicelib.models.commands import HandlerType, RateLimit, Subscription, known_event_ids
from chalicelib.models.events import Event

# Read from each type's settings model (chalicelib/channels/<type>_settings.py).
TYPE_FIELDS = {name: model.required_fields() for name, model in SETTINGS.items()}
"""The flat settings fields each type requires (seeds 003/004)."""
ALLOWED_FIELDS = {name: tuple(model.model_fields) for name, model in SETTINGS.items()}
"""Its required fields and the optional, display-only ones (a Slack install's team and channel)."""
SETTING_FIELDS: tuple[str, ...] = (
    *(f for model in SETTINGS.values() for f in model.required_fields()),
    *(f for model in SETTINGS.values() for f in model.optional_fields()),
)
URL_FIELDS = frozenset(f for model in SETTINGS.values() for f in model.url_fields())
SECRET_FIELDS = frozenset(f for model in SETTINGS.values() for f in model.secret_fields())
HANDLER_FIELDS: dict[str, str] = {
    "type": "type",
    "name": "name",
    "enabled": "is_enabled",
    "rate_limit_per_second": "rate_limit_per_second",
    **{f"subscription.{field}": field for field in Subscription.model_fields},
    **{f"settings.{field}": field for field in SETTING_FIELDS},
}
"""This face's names of the domain's fields (domain -> face), for commands and refusals."""
_MASKED = re.compile(r"^\*{4}[^*]{0,4}\Z")


def mask_secret(value: str) -> str:
    """Show only the last four characters of a credential (none if it is short)."""
    return "****" + value[-4:] if len(value) > 8 else "****"


def is_masked(value: str) -> bool:
    """True for a value that is a mask we returned: clients echoing it back change nothing."""
    return bool(_MASKED.match(value))


def masked(settings: dict[str, str]) -> dict[str, str]:
    """Settings as answers show them: credentials masked."""
    return {k: mask_secret(v) if k in SECRET_FIELDS else v for k, v in settings.items()}


def _every_setting() -> type[BaseModel]:
    """One optional field per setting of every type, in SETTING_FIELDS order, checked as
    its type's settings model says (whether it belongs to the handler's type is checked
    by the request models below)."""
    owner = {field: model for model in SETTINGS.values() for field in model.model_fields}
    fields: dict[str, Any] = {field: owner[field].request_field(field) for field in SETTING_FIELDS}
    return create_model("_EverySetting", __config__=ConfigDict(defer_build=True), **fields)


if TYPE_CHECKING:
    _EverySetting = BaseModel
else:  # mypy cannot follow a base class built at run time
    _EverySetting = _every_setting()


class _SettingValues(_EverySetting):
    model_config = ConfigDict(str_strip_whitespace=True, defer_build=True)


def setting_values(given: dict[str, str]) -> dict[str, str]:
    """The settings checked as their channels' settings models say (whitespace stripped),
    without echoed-back masks; a field no channel has is kept for the type check to refuse.
    Raises pydantic's ValidationError."""
    checked = _SettingValues.model_validate(given).model_dump(exclude_none=True)
    values = {field: checked.get(field, value) for field, value in given.items()}
    return {f: v for f, v in values.items() if not (f in SECRET_FIELDS and is_masked(v))}


class _SettingsFields(_EverySetting):
    """The flat settings fields of every type, and the subscription, shared by create and update."""

    # Built on first use rather than at import: only creates and updates need them.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    send_all_events: bool | None = None
    send_all_alerts: bool | None = None
    selected_event_ids: list[str] | None = None
    rate_limit_per_second: RateLimit | None = None
    app: str | None = Field(default=None, max_length=64, pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]*)?$")

    @field_validator("selected_event_ids", mode="before")
    @classmethod
    def _event_list(cls, value: object) -> object:
        """Forms send one comma-separated value or repeated fields; JSON sends a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("selected_event_ids")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else known_event_ids(value)

    def given_fields(self) -> dict[str, Any]:
        """The fields present in the request, settings without echoed-back masks."""
        given = self.model_dump(exclude_none=True, exclude=set(SETTING_FIELDS))
        return {**given, **self.given_settings()}

    def given_settings(self) -> dict[str, str]:
        """The settings fields present in the request, minus echoed-back masks."""
        given = {f: getattr(self, f) for f in SETTING_FIELDS if getattr(self, f) is not None}
        return {f: v for f, v in given.items() if not (f in SECRET_FIELDS and is_masked(v))}


def is_empty(value: Any) -> bool:
    """A form field sent without a value."""
    return isinstance(value, str) and not value.strip()


def without_empty_foreign_fields(body: dict[str, Any], handler_type: str) -> dict[str, Any]:
    """The body without the empty settings fields of other types than `handler_type`.

    A dashboard form posts the fields of every type, those of the other types empty:
    those are no settings at all. A non-empty field of another type, or an empty one of
    this type, stays for validation to refuse."""
    allowed = ALLOWED_FIELDS.get(handler_type, ())
    return {
        key: value
        for key, value in body.items()
        if not (key in SETTING_FIELDS and key not in allowed and is_empty(value))
    }


def _drop_empty_foreign_fields(data: Any) -> Any:
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return without_empty_foreign_fields(data, data["type"].strip())
    return data


def misplaced_fields(handler_type: str, settings: dict[str, str]) -> list[str]:
    return [f for f in settings if f not in ALLOWED_FIELDS[handler_type]]


def missing_fields(handler_type: str, settings: dict[str, str]) -> list[str]:
    return [f for f in TYPE_FIELDS[handler_type] if f not in settings]


class HandlerCreate(_SettingsFields):
    name: str = Field(min_length=1, max_length=128)
    type: HandlerType
    is_enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _form_of_every_type(cls, data: Any) -> Any:
        return _drop_empty_foreign_fields(data)

    @model_validator(mode="after")
    def _fields_match_type(self) -> HandlerCreate:
        settings = self.given_settings()
        for field in misplaced_fields(self.type, settings):
            raise ValueError(f"{field}: not available for type {self.type}")
        for field in missing_fields(self.type, settings):
            raise ValueError(f"{field}: required for type {self.type}")
        return self


class HandlerUpdate(_SettingsFields):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    type: HandlerType | None = None
    is_enabled: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _form_of_every_type(cls, data: Any) -> Any:
        return _drop_empty_foreign_fields(data)

    @model_validator(mode="after")
    def _complete_when_type_changes(self) -> HandlerUpdate:
        if self.type is not None:
            settings = self.given_settings()
            for field in misplaced_fields(self.type, settings):
                raise ValueError(f"{field}: not available for type {self.type}")
        return self


class Handler(BaseModel):
    """A handler as stored: settings in full, secrets included."""

    account: str
    id: int
    type: HandlerType
    name: str
    settings: dict[str, str]
    is_enabled: bool = True
    send_all_events: bool = True
    send_all_alerts: bool = True
    selected_event_ids: list[str] = Field(default_factory=list)
    app: str | None = None
    signing_secret: str | None = None
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = None
    disabled_reason: str | None = None
    confirmed_emails: list[str] = Field(default_factory=list)
    """An email handler's addresses that followed their confirmation link (or all of them,
    when confirmation is off); the others receive nothing yet."""
    failing_since: datetime | None = None
    last_datetime: datetime | None = None
    uuid_id: bool = False
    """Created through the PaaS face since its ids are UUIDs: answered as `no-<uuid>`."""
    rate_limit_per_second: float | None = None
    """Overrides the platform's send rate for this handler's destination (None: the default)."""
    created_at: datetime
    updated_at: datetime

    def missing_settings(self) -> list[str]:
        """The type's required settings it does not have yet (created awaiting its setup)."""
        return missing_fields(self.type, self.settings)

    def email_addresses(self) -> list[str]:
        return email_addresses(self.settings.get("email", ""))

    def recipients(self) -> list[str]:
        """The addresses an email handler mails: its confirmed ones."""
        confirmed = {address.lower() for address in self.confirmed_emails}
        return [address for address in self.email_addresses() if address.lower() in confirmed]

    @property
    def email_confirmed(self) -> bool:
        """Every address confirmed (True for the other types)."""
        return self.type != "email" or len(self.recipients()) == len(self.email_addresses())

    def accepts(self, event: Event) -> bool:
        """Whether this handler subscribes to `event` (enabled, app scope, event selection,
        a confirmed address for email, and a complete setup)."""
        if not self.is_enabled or (self.app and self.app != event.app):
            return False
        if self.type == "email" and not self.recipients():
            return False
        if self.missing_settings():
            return False
        if event.type_id in self.selected_event_ids:
            return True
        return self.send_all_alerts if event.is_alert else self.send_all_events

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, plus the previous one while its 24 h overlap lasts."""
        secrets = [self.signing_secret] if self.signing_secret else []
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and expires > now:
            secrets.append(self.previous_secret)
        return secrets


class HandlerOut(BaseModel):
    """The seed 003/004 handler object plus its subscription fields; credentials masked."""

    id: int
    type: str
    name: str
    settings: dict[str, str]
    is_enabled: bool
    last_datetime: str | None
    datetime: str
    send_all_events: bool
    send_all_alerts: bool
    selected_event_ids: list[str]
    app: str | None
    disabled_reason: str | None
    email_confirmed: bool
    rate_limit_per_second: float | None

    @classmethod
    def of(cls, handler: Handler) -> HandlerOut:
        return cls(
            id=handler.id,
            type=handler.type,
            name=handler.name,
            settings=masked(handler.settings),
            is_enabled=handler.is_enabled,
            last_datetime=_format(handler.last_datetime),
            datetime=handler.created_at.strftime(DATETIME_FORMAT),
            send_all_events=handler.send_all_events,
            send_all_alerts=handler.send_all_alerts,
            selected_event_ids=handler.selected_event_ids,
            app=handler.app or None,
            disabled_reason=handler.disabled_reason,
            email_confirmed=handler.email_confirmed,
            rate_limit_per_second=handler.rate_limit_per_second,
        )


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime(DATETIME_FORMAT)
