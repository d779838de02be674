"""An app's events, newest first: what `GET /v1/apps/{app}/events` lists.

Events are stored under their own key (`EVT#<account>#<event>`), which no query can list by
app. Publishing an event of an app therefore also writes a copy of it under PK
`AEV#<account>#<app>`, SK `<created_at>#<event id>` (UTC, microseconds: sorted by time),
with the event's TTL. The copy is written with a condition (absent), so the retry of a
publish that died halfway writes nothing twice.

A page is one Query newest first that stops at the page's last item, and the total one
COUNT Query: both read the app's events of the retention period (30 days) at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from chalicelib.models.events import Event
from chalicelib.storage import keys
from chalicelib.storage.table import ConditionFailed, Item, Table

SORTABLE = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class AppEventPage:
    events: list[Event]
    total: int


def _sortable(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(SORTABLE)


class AppEventStore(Protocol):
    """Copies of an app's events, listed newest first."""

    def record(self, event: Event, expires_at: int) -> None:
        """Keep a copy of an app's event in its app's list (nothing for an event without app)."""
        ...

    def page(
        self, account: str, app: str, number: int, per_page: int, *, since: datetime | None, now: datetime
    ) -> AppEventPage:
        """Page `number` of the app's events, newest first, and how many there are."""
        ...


def _condition(account: str, app: str, since: datetime | None, now: datetime) -> tuple[str, Item]:
    """The app's live events (TTL deletion lags, so expired copies are filtered out)."""
    values: Item = {":pk": keys.app_event_pk(account, app), ":now": int(now.timestamp())}
    condition = "PK = :pk"
    if since is not None:
        condition += " AND SK >= :since"
        values[":since"] = _sortable(since)
    return condition, values


class DynamoAppEventStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, event: Event, expires_at: int) -> None:
        if not event.app:
            return
        item = {
            "PK": keys.app_event_pk(event.account, event.app),
            "SK": keys.app_event_sk(_sortable(event.created_at), event.id),
            **event.model_dump(mode="json", exclude_none=True),
            "expires_at": expires_at,
        }
        try:
            self.table.put(item, condition="attribute_not_exists(PK)")
        except ConditionFailed:
            return  # an earlier try of the same publish wrote it

    def page(
        self, account: str, app: str, number: int, per_page: int, *, since: datetime | None, now: datetime
    ) -> AppEventPage:
        condition, values = _condition(account, app, since, now)
        total = self.table.count(condition, values, FilterExpression="expires_at > :now")
        if total <= (number - 1) * per_page:
            return AppEventPage([], total)
        items = self.table.query(
            condition,
            values,
            limit=number * per_page,
            consistent=False,
            FilterExpression="expires_at > :now",
            ScanIndexForward=False,
        )
        chosen = items[(number - 1) * per_page : number * per_page]
        return AppEventPage([Event.model_validate(_event_fields(item)) for item in chosen], total)


def _event_fields(item: Item) -> Item:
    return {k: v for k, v in item.items() if k not in ("PK", "SK", "expires_at")}
