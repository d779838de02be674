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

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.models.events import Event
from chalicelib.storage import keys
from chalicelib.storage.dynamo import Store, from_ddb, to_ddb

SORTABLE = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class AppEventPage:
    events: list[Event]
    total: int


def _sortable(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(SORTABLE)


def record(store: Store, event: Event, expires_at: int) -> None:
    """Keep a copy of an app's event in its app's list (nothing for an event without app)."""
    if not event.app:
        return
    item = {
        "PK": keys.app_event_pk(event.account, event.app),
        "SK": keys.app_event_sk(_sortable(event.created_at), event.id),
        **event.model_dump(mode="json", exclude_none=True),
        "expires_at": expires_at,
    }
    # Already there when an earlier try of the same publish wrote it.
    with contextlib.suppress(store.ddb.exceptions.ConditionalCheckFailedException):
        store.ddb.put_item(
            TableName=store.table, Item=to_ddb(item), ConditionExpression="attribute_not_exists(PK)"
        )


def _query(account: str, app: str, since: datetime | None, now: datetime) -> dict[str, Any]:
    """The app's live events (TTL deletion lags, so expired copies are filtered out)."""
    values: dict[str, Any] = {":pk": keys.app_event_pk(account, app), ":now": int(now.timestamp())}
    condition = "PK = :pk"
    if since is not None:
        condition += " AND SK >= :since"
        values[":since"] = _sortable(since)
    return {
        "KeyConditionExpression": condition,
        "FilterExpression": "expires_at > :now",
        "ExpressionAttributeValues": to_ddb(values),
    }


def page(
    store: Store, account: str, app: str, number: int, per_page: int, *, since: datetime | None, now: datetime
) -> AppEventPage:
    """Page `number` of the app's events, newest first, and how many there are."""
    query = _query(account, app, since, now)
    total = 0
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {"TableName": store.table, "Select": "COUNT", **query}
        if start is not None:
            request["ExclusiveStartKey"] = start
        answer = store.ddb.query(**request)
        total += int(answer["Count"])
        start = answer.get("LastEvaluatedKey")
        if start is None:
            break
    wanted = number * per_page
    items: list[dict[str, Any]] = []
    start = None
    while total > (number - 1) * per_page and len(items) < wanted:
        request = {"TableName": store.table, "ScanIndexForward": False, "Limit": wanted, **query}
        if start is not None:
            request["ExclusiveStartKey"] = start
        answer = store.ddb.query(**request)
        items.extend(from_ddb(item) for item in answer["Items"])
        start = answer.get("LastEvaluatedKey")
        if start is None:
            break
    chosen = items[(number - 1) * per_page : wanted]
    return AppEventPage([Event.model_validate(_event_fields(item)) for item in chosen], total)


def get(store: Store, account: str, app: str, event_id: str) -> Event | None:
    """One of the app's events (the event itself, checked to belong to the app)."""
    event = store.get_event(account, event_id)
    return event if event is not None and event.app == app else None


def _event_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("PK", "SK", "expires_at")}
