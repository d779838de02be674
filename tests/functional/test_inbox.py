"""The in-app inbox: internal_notification deliveries, GET /notifications and mark-read."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import apikeys
from chalicelib.channels import get_channel
from chalicelib.delivery import notices
from chalicelib.delivery.context import delivery_context
from chalicelib.delivery.safe_http import SafeSender
from chalicelib.models import inbox
from chalicelib.models.deliveries import Outcome
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.storage.inbox import expiry_of
from chalicelib.storage.stores import Stores, get_stores
from chalicelib.storage.table import RETENTION_SECONDS
from tests.functional.sqs_driver import drain

JSON = {"Content-Type": "application/json"}
ACCOUNT = "acme"


@pytest.fixture
def other_auth(api_key: str) -> dict[str, str]:
    key, _ = apikeys.create_key(get_stores(), "globex")
    return {"Authorization": f"Bearer {key}"}


def listing(client: Any, auth: dict[str, str], query: str = "") -> Any:
    answer = client.http.get(f"/notifications{query}", headers=auth)
    assert answer.status_code == 200, answer.body
    return answer.json_body


def mark(client: Any, auth: dict[str, str], notification_id: str) -> Any:
    return client.http.post(f"/notifications/{notification_id}/read", headers={**auth, **JSON}, body="")


def seed(count: int, account: str = ACCOUNT, start: datetime | None = None) -> list[str]:
    """`count` notifications one minute apart, oldest first; returns their ids."""
    stores = get_stores()
    start = start or datetime.now(UTC) - timedelta(hours=2)
    ids = []
    for n in range(count):
        note = notices.notify(
            stores.inbox, account, f"Note {n}", f"body {n}", kind="test", now=start + timedelta(minutes=n)
        )
        ids.append(note.id)
    return ids


def handler(kind: str = "internal_notification", handler_id: int = 1, **settings: str) -> Handler:
    now = datetime.now(UTC)
    return Handler(
        account=ACCOUNT,
        id=handler_id,
        type=kind,  # type: ignore[arg-type]
        name="inbox",
        settings=settings,
        created_at=now,
        updated_at=now,
    )


EVENT_TIME = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def event(**type_data: Any) -> Event:
    return Event(
        account=ACCOUNT,
        id="5f1a00000000000000000001",
        type="app_crashed",
        app="my-app",
        type_data=type_data,
        created_at=EVENT_TIME,
    )


# --- delivery -------------------------------------------------------------------------


@pytest.mark.usefixtures("stack")
def test_an_event_published_to_an_internal_handler_lands_in_the_inbox(api: Any, auth: dict[str, str]) -> None:
    from app import deliver

    created = api.http.post(
        "/notification-handlers",
        headers={**auth, **JSON},
        body=json.dumps({"name": "In-app", "type": "internal_notification"}),
    )
    assert created.status_code == 201, created.body
    handler_id = created.json_body["data"]["id"]
    published = api.http.post(
        "/v1/events",
        headers={**auth, **JSON},
        body=json.dumps(
            {
                "type": "app_crashed",
                "app": "my-app",
                "type_data": {"message": "web-1 exited with code 137", "url": "https://ex.com/a"},
            }
        ),
    )
    assert published.status_code == 202, published.body
    drain(deliver)
    body = listing(api, auth)
    (note,) = body["data"]
    assert note["title"] == "Application crashed — my-app"
    assert note["body"] == "web-1 exited with code 137"
    assert note["link"] == "https://ex.com/a"
    assert {"name": "App", "value": "my-app"} in note["fields"]
    assert note["event_id"] == published.json_body["id"]
    assert note["type"] == "app_crashed"
    assert note["handler_id"] == handler_id
    assert note["read"] is False
    assert note["read_datetime"] is None
    assert body["meta"] == {
        "page": 1,
        "results_per_page": 25,
        "total": 1,
        "total_pages": 1,
        "unread": 1,
        "read": 0,
    }
    attempts = api.http.get(f"/notification-handlers/{handler_id}/deliveries", headers=auth).json_body
    assert [a["status"] for a in attempts["data"]] == ["delivered"]


def test_a_redelivered_event_shows_up_once_even_after_it_was_read(moto_aws: None) -> None:
    stores = get_stores()
    channel = get_channel("internal_notification")
    now = datetime.now(UTC)
    at_once = delivery_context(stores, SafeSender(), lambda: now)
    assert channel.deliver(event(), handler(), at_once).outcome == Outcome.SENT
    assert channel.deliver(event(), handler(), at_once).outcome == Outcome.SENT
    page = stores.inbox.list_page(ACCOUNT, None, 1, 25, now=now)
    (note,) = page.notifications
    assert stores.inbox.mark_read(ACCOUNT, note.id, now) is not None
    later = delivery_context(stores, SafeSender(), lambda: now + timedelta(hours=1))
    assert channel.deliver(event(), handler(), later).outcome == Outcome.SENT
    after = stores.inbox.list_page(ACCOUNT, None, 1, 25, now=now)
    assert [n.id for n in after.notifications] == [note.id]
    assert after.counts == inbox.Counts(unread=0, total=1)


def test_hostile_event_text_is_stored_as_plain_data(api: Any, auth: dict[str, str]) -> None:
    hostile = '<script>alert("x")</script>\u0000 "quoted" \\ ${7*7}'
    get_channel("internal_notification").deliver(
        event(message=hostile), handler(), delivery_context(get_stores(), SafeSender())
    )
    (note,) = listing(api, auth)["data"]
    assert note["body"] == hostile.strip()


def test_a_huge_body_is_truncated_with_the_marker(moto_aws: None) -> None:
    now = datetime.now(UTC)
    context = delivery_context(get_stores(), SafeSender(), lambda: now)
    get_channel("internal_notification").deliver(event(message="x" * 50_000), handler(), context)
    (note,) = get_stores().inbox.list_page(ACCOUNT, None, 1, 25, now=now).notifications
    assert len(note.body) == notices.MAX_BODY
    assert note.body.endswith("… [truncated]")


def test_notify_is_what_the_worker_uses_to_report_a_disabled_handler(api: Any, auth: dict[str, str]) -> None:
    now = datetime.now(UTC)
    notices.notify(
        get_stores().inbox,
        ACCOUNT,
        "Notification handler 'hook' was disabled",
        "Herald disabled notification handler 3 (webhook): gone.",
        kind="handler_disabled",
        handler_id=3,
        now=now,
    )
    (note,) = listing(api, auth)["data"]
    assert note["type"] == "handler_disabled"
    assert note["handler_id"] == 3
    assert note["event_id"] is None
    assert note["title"] == "Notification handler 'hook' was disabled"


# --- listing --------------------------------------------------------------------------


def test_unread_come_first_then_read_newest_first_within_each(api: Any, auth: dict[str, str]) -> None:
    ids = seed(5)  # oldest first
    for read in (ids[1], ids[3]):
        assert mark(api, auth, read).status_code == 200
    body = listing(api, auth)
    assert [n["id"] for n in body["data"]] == [ids[4], ids[2], ids[0], ids[3], ids[1]]
    assert [n["read"] for n in body["data"]] == [False, False, False, True, True]
    assert body["meta"]["total"] == 5
    assert (body["meta"]["unread"], body["meta"]["read"]) == (3, 2)


def test_status_filters_unread_or_read_and_totals_follow(api: Any, auth: dict[str, str]) -> None:
    ids = seed(4)
    mark(api, auth, ids[0])
    unread = listing(api, auth, "?status=unread")
    assert [n["id"] for n in unread["data"]] == [ids[3], ids[2], ids[1]]
    assert unread["meta"]["total"] == 3
    read = listing(api, auth, "?status=read")
    assert [n["id"] for n in read["data"]] == [ids[0]]
    assert read["meta"]["total"] == 1
    assert read["data"][0]["read_datetime"] is not None


@pytest.mark.parametrize("status", ["all", "UNREAD", "seen", "unread,read"])
def test_an_unknown_status_is_a_400_naming_status(api: Any, auth: dict[str, str], status: str) -> None:
    answer = api.http.get(f"/notifications?status={status}", headers=auth)
    assert answer.status_code == 400
    (error,) = answer.json_body["errors"]
    assert error["field"] == "status"
    assert "unread, read" in error["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("page=0", "page"), ("page=x", "page"), ("results_per_page=30", "results_per_page")],
)
def test_bad_paging_is_a_400_like_the_handler_list(
    api: Any, auth: dict[str, str], query: str, field: str
) -> None:
    answer = api.http.get(f"/notifications?{query}", headers=auth)
    assert answer.status_code == 400
    assert answer.json_body["errors"][0]["field"] == field


def test_pages_have_meta_and_links_that_keep_the_status(api: Any, auth: dict[str, str]) -> None:
    ids = seed(23)
    newest_first = ids[::-1]
    body = listing(api, auth, "?status=unread&page=2&results_per_page=10")
    assert [n["id"] for n in body["data"]] == newest_first[10:20]
    assert body["meta"] == {
        "page": 2,
        "results_per_page": 10,
        "total": 23,
        "total_pages": 3,
        "unread": 23,
        "read": 0,
    }
    base = "https://herald.test/notifications"
    assert body["links"] == {
        "first": f"{base}?page=1&results_per_page=10&status=unread",
        "last": f"{base}?page=3&results_per_page=10&status=unread",
        "next": f"{base}?page=3&results_per_page=10&status=unread",
        "prev": f"{base}?page=1&results_per_page=10&status=unread",
        "self": f"{base}?page=2&results_per_page=10&status=unread",
    }
    last = listing(api, auth, "?page=3&results_per_page=10")
    assert [n["id"] for n in last["data"]] == newest_first[20:]
    assert last["links"]["next"] is None
    assert listing(api, auth, "?page=4&results_per_page=10")["data"] == []


def test_pages_cross_from_unread_to_read(api: Any, auth: dict[str, str]) -> None:
    ids = seed(15)
    for read in ids[:7]:
        mark(api, auth, read)
    first = listing(api, auth, "?results_per_page=10")
    second = listing(api, auth, "?page=2&results_per_page=10")
    order = [n["id"] for n in first["data"] + second["data"]]
    assert order == ids[7:][::-1] + ids[:7][::-1]


def test_an_empty_inbox_lists_nothing(api: Any, auth: dict[str, str]) -> None:
    body = listing(api, auth)
    assert body["data"] == []
    assert body["meta"]["total"] == 0
    assert body["meta"]["total_pages"] == 1


# --- mark read ------------------------------------------------------------------------


def test_marking_read_is_idempotent_and_moves_the_counters_once(api: Any, auth: dict[str, str]) -> None:
    ids = seed(3)
    first = mark(api, auth, ids[1])
    assert first.status_code == 200
    data = first.json_body["data"]
    assert data["id"] == ids[1]
    assert data["read"] is True
    again = mark(api, auth, ids[1])
    assert again.status_code == 200
    assert again.json_body["data"] == data
    meta = listing(api, auth)["meta"]
    assert (meta["total"], meta["unread"], meta["read"]) == (3, 2, 1)


@pytest.mark.parametrize("bad_id", ["0" * 24, "nope", "1" * 25, "ZZZZZZZZZZZZZZZZZZZZZZZZ"])
def test_marking_an_unknown_notification_is_404(api: Any, auth: dict[str, str], bad_id: str) -> None:
    seed(1)
    assert mark(api, auth, bad_id).status_code == 404


def test_another_accounts_inbox_is_invisible(
    api: Any, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    (theirs,) = seed(1, account="globex")
    seed(2)
    assert mark(api, auth, theirs).status_code == 404
    assert len(listing(api, auth)["data"]) == 2
    other = listing(api, other_auth)
    assert [n["id"] for n in other["data"]] == [theirs]
    assert other["data"][0]["read"] is False
    assert other["meta"]["unread"] == 1


def test_the_inbox_needs_an_api_key(api: Any) -> None:
    assert api.http.get("/notifications").status_code == 401
    assert api.http.post("/notifications/" + "0" * 24 + "/read").status_code == 401


# --- storage on moto and DynamoDB Local ------------------------------------------------


def test_expired_notifications_are_neither_listed_nor_counted(stores: Stores) -> None:
    old_day = datetime.now(UTC) - timedelta(days=40)
    old = notices.notify(stores.inbox, ACCOUNT, "old", "", kind="test", now=old_day)
    fresh = notices.notify(stores.inbox, ACCOUNT, "fresh", "", kind="test", now=datetime.now(UTC))
    now = datetime.now(UTC)
    page = stores.inbox.list_page(ACCOUNT, None, 1, 25, now=now)  # TTL has not deleted `old` yet
    assert [n.id for n in page.notifications] == [fresh.id]
    assert page.counts == inbox.Counts(unread=1, total=1)
    assert stores.inbox.mark_read(ACCOUNT, old.id, now) is None


def test_an_item_and_its_day_counter_expire_together(moto_aws: None) -> None:
    written = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    note = notices.notify(get_stores().inbox, ACCOUNT, "t", "", kind="test", now=written)
    assert note.expires_at == int(datetime(2026, 3, 2, tzinfo=UTC).timestamp()) + RETENTION_SECONDS
    assert expiry_of(note.day) == note.expires_at
    before = datetime.fromtimestamp(note.expires_at - 1, UTC)
    at = datetime.fromtimestamp(note.expires_at, UTC)
    assert get_stores().inbox.counts(ACCOUNT, before) == inbox.Counts(1, 1)
    assert get_stores().inbox.counts(ACCOUNT, at) == inbox.Counts(0, 0)
    assert get_stores().inbox.list_page(ACCOUNT, None, 1, 25, now=at).notifications == []


def test_counters_span_days(stores: Stores) -> None:
    now = datetime.now(UTC)
    notes = [
        notices.notify(stores.inbox, ACCOUNT, f"d{d}", "", kind="test", now=now - timedelta(days=d))
        for d in range(4)
    ]
    stores.inbox.mark_read(ACCOUNT, notes[2].id, now)
    assert stores.inbox.counts(ACCOUNT, now) == inbox.Counts(unread=3, total=4)


def test_concurrent_mark_reads_move_each_item_once(local_ddb: None) -> None:
    """Threads race on the same items and on the shared day counter (DynamoDB Local:
    moto's transactions are not safe under threads)."""
    stores = get_stores()
    now = datetime.now(UTC)
    ids = [notices.notify(stores.inbox, ACCOUNT, f"n{i}", "", kind="test", now=now).id for i in range(8)]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for ident in ids:
                assert stores.inbox.mark_read(ACCOUNT, ident, now) is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stores.inbox.counts(ACCOUNT, now) == inbox.Counts(unread=0, total=8)
    page = stores.inbox.list_page(ACCOUNT, "read", 1, 25, now=now)
    assert sorted(n.id for n in page.notifications) == sorted(ids)
    assert stores.inbox.list_page(ACCOUNT, "unread", 1, 25, now=now).notifications == []
