"""The account's and each app's events, newest first: what `GET /v1/events` and
`GET /v1/apps/{app}/events` list.

Events are stored under their own key (`EVT#<account>#<event>`), which no query can list.
Publishing an event therefore also writes a copy of it under PK `ACEV#<account>` and, for
an event of an app, one under `AEV#<account>#<app>`, both with SK `<created_at>#<event id>`
(UTC, microseconds: sorted by time) and the event's TTL. The copies are written with a
condition (absent), so the retry of a publish that died halfway writes nothing twice.

A page is one Query newest first that stops at the page's last item, and the total one
COUNT Query: both read the list's events of the retention period (30 days) at most. A type
filter is a FilterExpression on that list: it reads the same items and returns fewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

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
    """Copies of the account's events and of each app's, listed newest first."""

    def record(self, event: Event, expires_at: int) -> None:
        """Keep a copy of the event in its account's list and, if it has one, its app's."""
        ...

    def page(
        self,
        account: str,
        app: str | None,
        number: int,
        per_page: int,
        *,
        since: datetime | None,
        now: datetime,
        event_type: str | None = None,
    ) -> AppEventPage:
        """Page `number` of the app's events (the account's, for app None), newest first,
        of one type if given, and how many there are."""
        ...


def _query(
    account: str, app: str | None, since: datetime | None, now: datetime, event_type: str | None
) -> dict[str, Any]:
    """The list's live events (TTL deletion lags, so expired copies are filtered out)."""
    pk = keys.app_event_pk(account, app) if app else keys.account_event_pk(account)
    values: Item = {":pk": pk, ":now": int(now.timestamp())}
    condition = "PK = :pk"
    if since is not None:
        condition += " AND SK >= :since"
        values[":since"] = _sortable(since)
    query: dict[str, Any] = {"FilterExpression": "expires_at > :now"}
    if event_type is not None:
        query["FilterExpression"] += " AND #type = :type"
        query["ExpressionAttributeNames"] = {"#type": "type"}
        values[":type"] = event_type
    return {"condition": condition, "values": values, **query}


class DynamoAppEventStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, event: Event, expires_at: int) -> None:
        lists = [keys.account_event_pk(event.account)]
        if event.app:
            lists.append(keys.app_event_pk(event.account, event.app))
        for pk in lists:
            item = {
                "PK": pk,
                "SK": keys.app_event_sk(_sortable(event.created_at), event.id),
                **event.model_dump(mode="json", exclude_none=True),
                "expires_at": expires_at,
            }
            try:
                self.table.put(item, condition="attribute_not_exists(PK)")
            except ConditionFailed:
                continue  # an earlier try of the same publish wrote it

    def page(
        self,
        account: str,
        app: str | None,
        number: int,
        per_page: int,
        *,
        since: datetime | None,
        now: datetime,
        event_type: str | None = None,
    ) -> AppEventPage:
        query = _query(account, app, since, now, event_type)
        total = self.table.count(**query)
        if total <= (number - 1) * per_page:
            return AppEventPage([], total)
        items = self.table.query(**query, limit=number * per_page, consistent=False, ScanIndexForward=False)
        chosen = items[(number - 1) * per_page : number * per_page]
        return AppEventPage([Event.model_validate(_event_fields(item)) for item in chosen], total)


def _event_fields(item: Item) -> Item:
    return {k: v for k, v in item.items() if k not in ("PK", "SK", "expires_at")}
