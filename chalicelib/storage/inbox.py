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
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.channels.render import truncate
from chalicelib.storage import keys
from chalicelib.storage.dynamo import RETENTION_SECONDS, Store, from_ddb, to_ddb

logger = logging.getLogger("herald.inbox")

UNREAD_PREFIX = "U#"
READ_PREFIX = "R#"
COUNTER_PREFIX = "CNT#"
_ITEMS_LOW = "R#"
_ITEMS_HIGH = "U$"  # sorts right after every "U#..." key
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_TITLE = 300
MAX_BODY = 4000
_CONFLICT_ATTEMPTS = 6

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


def _sk(prefix: str, notification_id: str) -> str:
    return f"{prefix}{notification_id}"


def _key(account: str, sk: str) -> dict[str, Any]:
    return to_ddb({"PK": keys.inbox_pk(account), "SK": sk})


# --- writes ---------------------------------------------------------------------------


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


def add(store: Store, account: str, notification: Notification) -> bool:
    """Put an unread notification and count it, in one transaction.

    False (and nothing written) when that id is already in the inbox, read or unread:
    a redelivered event does not show up twice."""
    item = {
        "PK": keys.inbox_pk(account),
        "SK": _sk(UNREAD_PREFIX, notification.id),
        **notification.model_dump(mode="json", exclude_none=True),
    }
    return _transact(
        store,
        [
            {
                "Put": {
                    "TableName": store.table,
                    "Item": to_ddb(item),
                    "ConditionExpression": "attribute_not_exists(SK)",
                }
            },
            {
                "ConditionCheck": {
                    "TableName": store.table,
                    "Key": _key(account, _sk(READ_PREFIX, notification.id)),
                    "ConditionExpression": "attribute_not_exists(SK)",
                }
            },
            _counter_change(store, account, notification.day, unread=1, total=1),
        ],
    )


def notify(
    store: Store,
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
    add(store, account, notification)
    return notification


def mark_read(store: Store, account: str, notification_id: str, now: datetime) -> Notification | None:
    """Mark one notification read; idempotent. None when the account has no such live
    notification.

    The transaction only applies while `U#<id>` still exists, so two concurrent calls
    move the item and decrement the counter once between them."""
    unread = _get(store, account, _sk(UNREAD_PREFIX, notification_id), now)
    if unread is None:
        return _get(store, account, _sk(READ_PREFIX, notification_id), now)
    read = unread.model_copy(update={"read": True, "read_at": now})
    item = {
        "PK": keys.inbox_pk(account),
        "SK": _sk(READ_PREFIX, notification_id),
        **read.model_dump(mode="json", exclude_none=True),
    }
    moved = _transact(
        store,
        [
            {
                "Delete": {
                    "TableName": store.table,
                    "Key": _key(account, _sk(UNREAD_PREFIX, notification_id)),
                    "ConditionExpression": "attribute_exists(SK) AND expires_at > :now",
                    "ExpressionAttributeValues": to_ddb({":now": int(now.timestamp())}),
                }
            },
            {
                "Put": {
                    "TableName": store.table,
                    "Item": to_ddb(item),
                    "ConditionExpression": "attribute_not_exists(SK)",
                }
            },
            _counter_change(store, account, unread.day, unread=-1, total=0),
        ],
    )
    if moved:
        return read
    return _get(store, account, _sk(READ_PREFIX, notification_id), now)  # marked meanwhile


def _counter_change(store: Store, account: str, day: str, *, unread: int, total: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": store.table,
            "Key": _key(account, f"{COUNTER_PREFIX}{day}"),
            "UpdateExpression": "ADD unread :unread, #total :total SET expires_at = :exp",
            "ExpressionAttributeNames": {"#total": "total"},
            "ExpressionAttributeValues": to_ddb({":unread": unread, ":total": total, ":exp": expiry_of(day)}),
        }
    }


def _transact(store: Store, items: list[dict[str, Any]]) -> bool:
    """TransactWriteItems; False when a condition failed. Transactions touching the same
    day counter at once cancel each other (TransactionConflict): try again, briefly."""
    for attempt in range(_CONFLICT_ATTEMPTS):
        try:
            store.ddb.transact_write_items(TransactItems=items)
        except store.ddb.exceptions.TransactionCanceledException as exc:
            codes = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in codes:
                return False
            if "TransactionConflict" not in codes or attempt == _CONFLICT_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.02 * 2**attempt))  # jitter, not crypto
        else:
            return True
    raise AssertionError("unreachable")  # pragma: no cover


# --- reads ----------------------------------------------------------------------------


def _get(store: Store, account: str, sk: str, now: datetime) -> Notification | None:
    answer = store.ddb.get_item(TableName=store.table, Key=_key(account, sk), ConsistentRead=True)
    if "Item" not in answer:
        return None
    notification = Notification.model_validate(from_ddb(answer["Item"]))
    return notification if notification.expires_at > now.timestamp() else None


def get(store: Store, account: str, notification_id: str, now: datetime) -> Notification | None:
    """The live notification, read or unread."""
    found = _get(store, account, _sk(UNREAD_PREFIX, notification_id), now)
    return found or _get(store, account, _sk(READ_PREFIX, notification_id), now)


def counts(store: Store, account: str, now: datetime) -> Counts:
    """Unread and total live notifications, summed from at most ~31 day counters."""
    unread = total = 0
    for item in store._query_all(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues=to_ddb({":pk": keys.inbox_pk(account), ":prefix": COUNTER_PREFIX}),
    ):
        if int(item.get("expires_at", 0)) > now.timestamp():
            unread += int(item.get("unread", 0))
            total += int(item.get("total", 0))
    return Counts(max(0, unread), max(0, total))


def list_page(
    store: Store, account: str, status: Status | None, page: int, per_page: int, *, now: datetime
) -> InboxPage:
    """Page `page`: unread first, then read, newest first within each.

    Page P reads the P * per_page first items of the key range and skips all but the
    last `per_page`, so its cost grows with P. Inboxes are small (30 days of retention)
    and clients read the first pages; the counters make meta.total free whatever P is."""
    tally = counts(store, account, now)
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
    items = store._query_all(
        KeyConditionExpression=condition,
        FilterExpression="expires_at > :now",
        ExpressionAttributeValues=to_ddb(
            {":pk": keys.inbox_pk(account), ":now": int(now.timestamp()), **values}
        ),
        ScanIndexForward=False,
        limit=offset + per_page,
    )
    return InboxPage([Notification.model_validate(i) for i in items[offset:]], total, tally)
