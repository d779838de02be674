"""Inbox notifications as Herald writes them: the event's (internal notification channel)
and Herald's own (a handler disabled).

Title and body are cut here, with the renderer's visible marker, to what an inbox item
holds comfortably; the inbox store only stores, and imports no rendering.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.models.inbox import Notification, NotificationField, day_of, notification_id
from chalicelib.storage.inbox import InboxStore, expiry_of
from chalicelib.text import truncate

MAX_TITLE = 300
MAX_BODY = 4000


def new_notification(
    *,
    notification_id: str,
    kind: str,
    title: str,
    body: str,
    created_at: datetime,
    now: datetime,
    link: str | None = None,
    fields: list[tuple[str, str]] | None = None,
    event_id: str | None = None,
    handler_id: int | None = None,
) -> Notification:
    """An unread notification written today (`now`), sized to fit an item comfortably."""
    day = day_of(now)
    return Notification(
        id=notification_id,
        type=kind,
        title=truncate(title, MAX_TITLE),
        body=truncate(body, MAX_BODY),
        link=link,
        fields=[NotificationField(name=n, value=v) for n, v in fields or []],
        event_id=event_id,
        handler_id=handler_id,
        created_at=created_at,
        day=day,
        expires_at=expiry_of(day),
    )


def notify(
    inbox: InboxStore,
    account: str,
    title: str,
    body: str,
    *,
    kind: str,
    handler_id: int | None = None,
    now: datetime,
) -> Notification:
    """Tell an account something from Herald itself (e.g. that a handler was disabled)."""
    notification = new_notification(
        notification_id=notification_id(now),
        kind=kind,
        title=title,
        body=body,
        created_at=now,
        now=now,
        handler_id=handler_id,
    )
    inbox.add(account, notification)
    return notification
