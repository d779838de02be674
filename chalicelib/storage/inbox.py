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

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.models.inbox import Counts, InboxPage, Notification, Status
from chalicelib.storage import keys
from chalicelib.storage.table import RETENTION_SECONDS, ConditionFailed, Key, Request, Table

logger = logging.getLogger("herald.inbox")


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
        pk, sk = _key(account, keys.INBOX_UNREAD_PREFIX, notification.id)
        item = {"PK": pk, "SK": sk, **notification.model_dump(mode="json", exclude_none=True)}
        return self._transact(
            [
                self.table.put_request(item, condition="attribute_not_exists(SK)"),
                self.table.check_request(
                    _key(account, keys.INBOX_READ_PREFIX, notification.id), "attribute_not_exists(SK)"
                ),
                self._counter_change(account, notification.day, unread=1, total=1),
            ]
        )

    def mark_read(self, account: str, notification_id: str, now: datetime) -> Notification | None:
        """The transaction only applies while `U#<id>` still exists, so two concurrent
        calls move the item and decrement the counter once between them."""
        unread = self._get(_key(account, keys.INBOX_UNREAD_PREFIX, notification_id), now)
        if unread is None:
            return self._get(_key(account, keys.INBOX_READ_PREFIX, notification_id), now)
        read = unread.model_copy(update={"read": True, "read_at": now})
        pk, sk = _key(account, keys.INBOX_READ_PREFIX, notification_id)
        item = {"PK": pk, "SK": sk, **read.model_dump(mode="json", exclude_none=True)}
        moved = self._transact(
            [
                {
                    "Delete": self.table.delete_request(
                        _key(account, keys.INBOX_UNREAD_PREFIX, notification_id),
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
        return self._get(_key(account, keys.INBOX_READ_PREFIX, notification_id), now)  # marked meanwhile

    def _counter_change(self, account: str, day: str, *, unread: int, total: int) -> Request:
        return {
            "Update": self.table.update_request(
                _key(account, keys.INBOX_COUNTER_PREFIX, day),
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
        found = self._get(_key(account, keys.INBOX_UNREAD_PREFIX, notification_id), now)
        return found or self._get(_key(account, keys.INBOX_READ_PREFIX, notification_id), now)

    def counts(self, account: str, now: datetime) -> Counts:
        """Summed from at most ~31 day counters."""
        unread = total = 0
        for item in self.table.query(
            "PK = :pk AND begins_with(SK, :prefix)",
            {":pk": keys.inbox_pk(account), ":prefix": keys.INBOX_COUNTER_PREFIX},
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
            values: dict[str, Any] = {":low": keys.INBOX_ITEMS_LOW, ":high": keys.INBOX_ITEMS_HIGH}
        else:
            condition = "PK = :pk AND begins_with(SK, :prefix)"
            values = {":prefix": keys.INBOX_UNREAD_PREFIX if status == "unread" else keys.INBOX_READ_PREFIX}
        items = self.table.query(
            condition,
            {":pk": keys.inbox_pk(account), ":now": int(now.timestamp()), **values},
            limit=offset + per_page,
            FilterExpression="expires_at > :now",
            ScanIndexForward=False,
        )
        return InboxPage([Notification.model_validate(i) for i in items[offset:]], total, tally)
