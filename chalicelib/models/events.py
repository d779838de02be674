"""Events: the catalog of event types, the publish request and the stored event."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Category = Literal["app", "alerts", "distribution", "system", "operational"]


class EventType(BaseModel):
    id: str
    name: str
    display_name: str
    category: Category
    description: str
    type_data: dict[str, str] = Field(default_factory=dict)
    """What the event's `type_data` holds, field by field (Herald's operational events)."""


def _object_id(name: str) -> str:
    """A stable 24-hex id for catalog entries the seeds give no id for."""
    return hashlib.sha256(f"herald-event-type:{name}".encode()).hexdigest()[:24]


def _entry(
    name: str,
    display: str,
    category: Category,
    description: str,
    ident: str | None = None,
    *,
    type_data: dict[str, str] | None = None,
) -> EventType:
    return EventType(
        id=ident or _object_id(name),
        name=name,
        display_name=display,
        category=category,
        description=description,
        type_data=type_data or {},
    )


_HANDLER_FIELDS = {
    "handler_id": "the handler's id",
    "handler_name": "the handler's name",
    "handler_type": "the handler's type (webhook, slack, ...)",
}


# The seed 000 ids are Scalingo's; their names are our reading of what each platform accepts.
EVENT_TYPES: tuple[EventType, ...] = (
    _entry(
        "deployment",
        "Deployment",
        "app",
        "A deployment finished (success or failure).",
        "5982f139d48c360021b1eb69",
    ),
    _entry(
        "app_crashed",
        "Application crashed",
        "app",
        "A container of the app crashed.",
        "59c52a9c7651ce001f62f578",
    ),
    _entry(
        "app_restarted", "Application restarted", "app", "The app was restarted.", "5b28be8e85232200126f373c"
    ),
    _entry(
        "app_scaled",
        "Application scaled",
        "app",
        "The app's containers were scaled.",
        "5b28bf02aa9a340012832362",
    ),
    _entry("app_deleted", "Application deleted", "app", "The app was deleted.", "5b28bf2485232200126f373e"),
    _entry("alert_triggered", "Alert triggered", "alerts", "A metric alert crossed its threshold."),
    _entry("alert_resolved", "Alert resolved", "alerts", "A metric alert went back under its threshold."),
    _entry("build_created", "Build created", "distribution", "A new build was uploaded."),
    _entry("build_processed", "Build processed", "distribution", "A build finished processing."),
    _entry("feedback_created", "Feedback created", "distribution", "A tester sent feedback."),
    _entry(
        "certificate_will_expire",
        "Certificate will expire",
        "distribution",
        "A signing certificate expires soon.",
    ),
    _entry("test", "Test notification", "system", "Sent by the test endpoints to check a handler."),
    _entry(
        "handler_disabled",
        "Handler disabled",
        "operational",
        "Herald disabled a handler: its destination is gone, or every delivery failed for days.",
        type_data={**_HANDLER_FIELDS, "reason": "why Herald disabled it", "disabled_at": "ISO 8601"},
    ),
    _entry(
        "delivery_exhausted",
        "Delivery exhausted its retries",
        "operational",
        "A delivery failed its last attempt and went to the dead-letter queue.",
        type_data={
            **_HANDLER_FIELDS,
            "event_id": "the event that was not delivered",
            "event_type": "its type",
            "attempts": "how many attempts were made",
            "http_status": "the last attempt's HTTP status, or null",
            "error": "the last attempt's error",
        },
    ),
    _entry(
        "handler_recovered",
        "Handler recovered",
        "operational",
        "A handler that was failing delivered again.",
        type_data={
            **_HANDLER_FIELDS,
            "failing_since": "ISO 8601: its first failure in the run that ended",
            "recovered_at": "ISO 8601",
        },
    ),
)
BY_NAME = {t.name: t for t in EVENT_TYPES}
BY_ID = {t.id: t for t in EVENT_TYPES}
PUBLISHABLE = tuple(t.name for t in EVENT_TYPES if t.category not in ("system", "operational"))
OPERATIONAL = tuple(t.name for t in EVENT_TYPES if t.category == "operational")
"""Herald's events about an account's handlers: its inbox and operational webhook get them."""


def event_type(name_or_id: str) -> EventType | None:
    return BY_NAME.get(name_or_id) or BY_ID.get(name_or_id)


def new_event_id() -> str:
    """An ObjectId-shaped id (time-ordered, 24 hex digits), like the seed 001 ids."""
    return f"{int(time.time()):08x}{os.urandom(8).hex()}"


class EventUser(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = Field(default=None, max_length=128)
    username: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=254)


class EventIn(BaseModel):
    """`POST /v1/events` and the ingest queue's message body."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64)
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    app: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
    )
    user: EventUser | None = None
    type_data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in PUBLISHABLE:
            raise ValueError(
                f"unknown event type {value!r}; see GET /v1/event_types ({', '.join(PUBLISHABLE)})"
            )
        return value


class Event(BaseModel):
    """An accepted event as stored and as delivered."""

    account: str
    id: str
    type: str
    app: str | None = None
    app_id: str | None = None
    user: dict[str, Any] | None = None
    type_data: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime

    @property
    def type_id(self) -> str:
        found = event_type(self.type)
        return found.id if found else self.type

    @property
    def is_alert(self) -> bool:
        found = event_type(self.type)
        return found is not None and found.category == "alerts"

    def payload(self) -> dict[str, Any]:
        """The seed 001 notification format (webhook bodies, the PaaS face's events): id,
        created_at, user, app_id, app_name, type, type_data."""
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(timespec="milliseconds"),
            "user": self.user,
            "app_id": self.app_id,
            "app_name": self.app,
            "type": self.type,
            "type_data": self.type_data,
        }
