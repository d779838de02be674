"""The in-app inbox's notifications, as stored and answered, and their ids: written by the
delivery (the internal notification channel, Herald's own notices), read by the inbox face."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.models.api import DATETIME_FORMAT

Status = Literal["unread", "read"]
STATUSES: tuple[Status, ...] = ("unread", "read")


class NotificationField(BaseModel):
    name: str
    value: str


class Notification(BaseModel):
    """One inbox notification as stored (the key attributes are added on write)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    title: str
    body: str = ""
    link: str | None = None
    fields: list[NotificationField] = Field(default_factory=list)
    event_id: str | None = None
    handler_id: int | None = None
    read: bool = False
    created_at: datetime
    read_at: datetime | None = None
    day: str
    expires_at: int

    def public(self) -> dict[str, Any]:
        """The API shape (times in the seed format, like the handlers face)."""
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "body": self.body,
            "link": self.link,
            "fields": [f.model_dump() for f in self.fields],
            "event_id": self.event_id,
            "handler_id": self.handler_id,
            "read": self.read,
            "datetime": self.created_at.strftime(DATETIME_FORMAT),
            "read_datetime": self.read_at.strftime(DATETIME_FORMAT) if self.read_at else None,
        }


@dataclass(frozen=True)
class Counts:
    unread: int
    total: int

    @property
    def read(self) -> int:
        return self.total - self.unread


@dataclass(frozen=True)
class InboxPage:
    notifications: list[Notification]
    total: int
    """How many match the requested status (all, unread or read)."""
    counts: Counts


def notification_id(created_at: datetime, seed: str | None = None) -> str:
    """24 hex digits: creation time in ms, then a digest of `seed` (the same seed gives the
    same id, which makes redelivery idempotent) or random bits."""
    millis = int(created_at.timestamp() * 1000)
    tail = hashlib.sha256(seed.encode()).hexdigest()[:12] if seed is not None else os.urandom(6).hex()
    return f"{millis:012x}{tail}"


def is_notification_id(value: str) -> bool:
    return len(value) == 24 and all(c in "0123456789abcdef" for c in value)


def day_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%d")
