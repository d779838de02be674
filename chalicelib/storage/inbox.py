"""The in-app inbox: internal notifications per account, unread first, with live counters.

Key shapes, all under PK `INBOX#<account>`:

| item            | SK                 | notes                                              |
|-----------------|--------------------|----------------------------------------------------|
| unread          | `U#<id>`           | the notification; `expires_at` TTL                 |
| read            | `R#<id>`           | the same notification once read, with `read_at`    |
| day counter     | `CNT#<yyyymmdd>`   | `unread`, `total` of the items written that day    |

Ids start with the creation time in milliseconds (12 hex digits), so a descending
Query over `R#`..`U$` returns unread newest first, then read newest first: "unread
first" is the key order itself. Marking read is one transaction that deletes `U#<id>`,
puts `R#<id>` and decrements its day's unread counter; adding puts `U#<id>` and bumps
the counter in the same transaction, so the counters never need counting items.

Retention: an item expires at the end of the UTC day it was written plus
RETENTION_SECONDS, exactly when its day counter expires. DynamoDB's TTL deletes both
some time later; until then reads ignore anything whose `expires_at` has passed, so
the items listed and the counters summed always agree.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.models.api import DATETIME_FORMAT
from chalicelib.storage import keys
from chalicelib.storage.table import RETENTION_SECONDS, ConditionFailed, Key, Request, Table

logger = logging.getLogger("herald.inbox")

UNREAD_PREFIX = "U#"
READ_PREFIX = "R#"
COUNTER_PREFIX = "CNT#"
_ITEMS_LOW = "R#"
_ITEMS_HIGH = "U$"  # sorts right after every "U#..." key

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


# --- ids, days and expiry -------------------------------------------------------------


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


def expiry_of(day: str) -> int:
    """When the items written on `day` (and its counter) expire: the end of that UTC day
    plus the retention period."""
    start = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
    return int((start + timedelta(days=1)).timestamp()) + RETENTION_SECONDS


class InboxStore(Protocol):
    """An account's inbox: notifications unread first, counted per day."""

    def add(self, account: str, notification: Notification) -> bool:
        """Put an unread notification and count it; False (nothing written) when that id
        is already in the inbox, read or unread."""
        ...

    def mark_read(self, account: str, notification_id: str, now: datetime) -> Notification | None:
        """Mark one notification read; idempotent. None when there is no such live one."""
        ...

    def get(self, account: str, notification_id: str, now: datetime) -> Notification | None:
        """The live notification, read or unread."""
        ...

    def counts(self, account: str, now: datetime) -> Counts:
        """Unread and total live notifications."""
        ...

    def list_page(
        self, account: str, status: Status | None, page: int, per_page: int, *, now: datetime
    ) -> InboxPage:
        """Page `page`: unread first, then read, newest first within each."""
        ...


def _key(account: str, prefix: str, ident: str) -> Key:
    return keys.inbox_pk(account), keys.inbox_sk(prefix, ident)


class DynamoInboxStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def add(self, account: str, notification: Notification) -> bool:
        """One transaction: the item if absent, no read copy of it, and its day's counter."""
        pk, sk = _key(account, UNREAD_PREFIX, notification.id)
        item = {"PK": pk, "SK": sk, **notification.model_dump(mode="json", exclude_none=True)}
        return self._transact(
            [
                self.table.put_request(item, condition="attribute_not_exists(SK)"),
                self.table.check_request(
                    _key(account, READ_PREFIX, notification.id), "attribute_not_exists(SK)"
                ),
                self._counter_change(account, notification.day, unread=1, total=1),
            ]
        )

    def mark_read(self, account: str, notification_id: str, now: datetime) -> Notification | None:
        """The transaction only applies while `U#<id>` still exists, so two concurrent
        calls move the item and decrement the counter once between them."""
        unread = self._get(_key(account, UNREAD_PREFIX, notification_id), now)
        if unread is None:
            return self._get(_key(account, READ_PREFIX, notification_id), now)
        read = unread.model_copy(update={"read": True, "read_at": now})
        pk, sk = _key(account, READ_PREFIX, notification_id)
        item = {"PK": pk, "SK": sk, **read.model_dump(mode="json", exclude_none=True)}
        moved = self._transact(
            [
                {
                    "Delete": self.table.delete_request(
                        _key(account, UNREAD_PREFIX, notification_id),
                        condition="attribute_exists(SK) AND expires_at > :now",
                        values={":now": int(now.timestamp())},
                    )
                },
                self.table.put_request(item, condition="attribute_not_exists(SK)"),
                self._counter_change(account, unread.day, unread=-1, total=0),
            ]
        )
        if moved:
            return read
        return self._get(_key(account, READ_PREFIX, notification_id), now)  # marked meanwhile

    def _counter_change(self, account: str, day: str, *, unread: int, total: int) -> Request:
        return {
            "Update": self.table.update_request(
                _key(account, COUNTER_PREFIX, day),
                "ADD unread :unread, #total :total SET expires_at = :exp",
                names={"#total": "total"},
                values={":unread": unread, ":total": total, ":exp": expiry_of(day)},
            )
        }

    def _transact(self, requests: list[Request]) -> bool:
        """False when a condition failed (transactions touching the same day counter at
        once are retried by the table)."""
        try:
            self.table.transact(requests)
        except ConditionFailed:
            return False
        return True

    def _get(self, key: Key, now: datetime) -> Notification | None:
        item = self.table.get(key)
        if item is None:
            return None
        notification = Notification.model_validate(item)
        return notification if notification.expires_at > now.timestamp() else None

    def get(self, account: str, notification_id: str, now: datetime) -> Notification | None:
        found = self._get(_key(account, UNREAD_PREFIX, notification_id), now)
        return found or self._get(_key(account, READ_PREFIX, notification_id), now)

    def counts(self, account: str, now: datetime) -> Counts:
        """Summed from at most ~31 day counters."""
        unread = total = 0
        for item in self.table.query(
            "PK = :pk AND begins_with(SK, :prefix)",
            {":pk": keys.inbox_pk(account), ":prefix": COUNTER_PREFIX},
        ):
            if int(item.get("expires_at", 0)) > now.timestamp():
                unread += int(item.get("unread", 0))
                total += int(item.get("total", 0))
        return Counts(max(0, unread), max(0, total))

    def list_page(
        self, account: str, status: Status | None, page: int, per_page: int, *, now: datetime
    ) -> InboxPage:
        """Page P reads the P * per_page first items of the key range and skips all but
        the last `per_page`, so its cost grows with P. Inboxes are small (30 days of
        retention) and clients read the first pages; the counters make the total free
        whatever P is."""
        tally = self.counts(account, now)
        total = {None: tally.total, "unread": tally.unread, "read": tally.read}[status]
        offset = (page - 1) * per_page
        if offset >= total:
            return InboxPage([], total, tally)
        if status is None:
            condition = "PK = :pk AND SK BETWEEN :low AND :high"
            values: dict[str, Any] = {":low": _ITEMS_LOW, ":high": _ITEMS_HIGH}
        else:
            condition = "PK = :pk AND begins_with(SK, :prefix)"
            values = {":prefix": UNREAD_PREFIX if status == "unread" else READ_PREFIX}
        items = self.table.query(
            condition,
            {":pk": keys.inbox_pk(account), ":now": int(now.timestamp()), **values},
            limit=offset + per_page,
            FilterExpression="expires_at > :now",
            ScanIndexForward=False,
        )
        return InboxPage([Notification.model_validate(i) for i in items[offset:]], total, tally)
