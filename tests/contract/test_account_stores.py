"""API keys, rate windows, apps, email confirmations, the inbox, push subscribers and app
events on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import services
from chalicelib.delivery.notices import new_notification
from chalicelib.models import inbox
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.storage.accounts import PortalSession
from chalicelib.storage.stores import Stores
from chalicelib.storage.table import RETENTION_SECONDS, ConditionFailed
from tests.commands import create_command

ACME = "acme"
MOMENT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_an_api_key_is_stored_once_and_revoked_once_it_exists(stores: Stores) -> None:
    stores.api_keys.put_api_key("k1", "hash", ACME, MOMENT)
    with pytest.raises(ConditionFailed):
        stores.api_keys.put_api_key("k1", "other", "globex", MOMENT)
    found = stores.api_keys.get_api_key("k1")
    assert found is not None
    assert (found["key_hash"], found["account"], found["revoked"]) == ("hash", ACME, False)
    assert stores.api_keys.revoke_api_key("k1", MOMENT) is True
    revoked = stores.api_keys.get_api_key("k1")
    assert revoked is not None
    assert (revoked["revoked"], revoked["revoked_at"]) == (True, MOMENT.isoformat())
    assert stores.api_keys.revoke_api_key("k2", MOMENT) is False
    assert stores.api_keys.get_api_key("k2") is None


def test_a_portal_session_is_stored_once_and_read_back_to_the_second(stores: Stores) -> None:
    session = PortalSession("hash", ACME, MOMENT + timedelta(hours=1, microseconds=250))
    stores.portal_sessions.put_portal_session("s1", session, MOMENT)
    with pytest.raises(ConditionFailed):
        stores.portal_sessions.put_portal_session("s1", PortalSession("other", "globex", MOMENT), MOMENT)
    assert stores.portal_sessions.get_portal_session("s1") == PortalSession(
        "hash", ACME, MOMENT + timedelta(hours=1)
    )
    assert stores.portal_sessions.get_portal_session("s2") is None


def test_rate_windows_count_this_and_last_minute_and_take_hits_back(stores: Stores) -> None:
    assert stores.rates.add_hits("key:a", 10, 1, 1_000) == (1, 0)
    assert stores.rates.add_hits("key:a", 10, 1, 1_000) == (2, 0)
    assert stores.rates.add_hits("key:a", 11, 1, 1_000) == (1, 2)
    stores.rates.take_back_hits("key:a", 11, 1)
    assert stores.rates.rate_window("key:a", 11) == (0, 2)
    assert stores.rates.add_hits("key:a", 13, 1, 1_000) == (1, 0), "two minutes on, nothing weighs"
    assert stores.rates.rate_window("key:b", 13) == (0, 0)


def test_a_lease_counts_many_hits_at_once_and_gives_back_what_it_could_not_use(stores: Stores) -> None:
    assert stores.rates.add_hits("key:a", 20, 8, 1_000) == (8, 0)
    assert stores.rates.add_hits("key:a", 20, 4, 1_000) == (12, 0), "another container's lease adds up"
    stores.rates.take_back_hits("key:a", 20, 3)
    assert stores.rates.add_hits("key:a", 21, 16, 1_000) == (16, 9)


def test_an_app_keeps_the_id_of_its_first_use(stores: Stores) -> None:
    assert stores.apps.app_id(ACME, "billing", "a1") == "a1"
    assert stores.apps.app_id(ACME, "billing", "a2") == "a1"
    assert stores.apps.app_id("globex", "billing", "g1") == "g1"
    assert stores.apps.app_named_by_id(ACME, "a1") == "billing"
    assert stores.apps.app_named_by_id(ACME, "g1") is None


def test_an_email_confirmation_confirms_the_address_it_was_mailed_to_once(stores: Stores) -> None:
    body = {"name": "Mail", "type": "email", "email": "ops@example.com, dev@example.com"}
    handler = services.create_handler(stores, ACME, create_command(body), "https://herald.example.com")
    _set_confirmed(stores, handler, [])
    stores.confirmations.put_confirmation("stale", handler, "ops@example.com", 5_000)
    stores.confirmations.put_confirmation("expired", handler, "ops@example.com", 999)
    assert stores.confirmations.confirm_email("expired", 1_000) is None
    assert stores.confirmations.confirm_email("unknown", 1_000) is None

    stores.confirmations.put_confirmation("t1", handler, "dev@example.com", 5_000)
    confirmed = stores.confirmations.confirm_email("t1", 1_000)
    assert confirmed is not None
    assert (confirmed["handler_id"], confirmed["address"]) == (handler.id, "dev@example.com")
    assert stores.confirmations.confirm_email("t1", 1_000) is None, "a token is spent once"
    found = stores.handlers.get_handler(ACME, handler.id)
    assert found is not None
    assert found.recipients() == ["dev@example.com"], "only the address that confirmed"
    assert not found.email_confirmed, "ops@ has not confirmed yet"

    stores.handlers.update_handler(
        ACME,
        handler.id,
        fields={"confirmed_emails": []},
        settings={"email": "new@example.com"},
        replace_settings=False,
        expected_type=None,
        now=handler.updated_at,
    )
    assert stores.confirmations.confirm_email("stale", 1_000) is None, "the addresses changed since"
    found = stores.handlers.get_handler(ACME, handler.id)
    assert found is not None and found.recipients() == []


def _set_confirmed(stores: Stores, handler: Handler, addresses: list[str]) -> None:
    stores.handlers.update_handler(
        ACME,
        handler.id,
        fields={"confirmed_emails": addresses},
        settings={},
        replace_settings=False,
        expected_type=None,
        now=handler.updated_at,
    )


def note(ident: str, now: datetime) -> inbox.Notification:
    return new_notification(
        notification_id=inbox.notification_id(now, ident),
        kind="test",
        title=ident,
        body="",
        created_at=now,
        now=now,
    )


def test_the_inbox_lists_unread_first_newest_first_and_counts_what_is_live(stores: Stores) -> None:
    now = datetime.now(UTC)
    first, second, third = (note(name, now + timedelta(seconds=n)) for n, name in enumerate("abc"))
    for notification in (first, second, third):
        assert stores.inbox.add(ACME, notification) is True
    assert stores.inbox.add(ACME, first) is False, "the same id twice"
    read = stores.inbox.mark_read(ACME, second.id, now)
    assert read is not None and read.read
    assert stores.inbox.mark_read(ACME, second.id, now) == read, "idempotent"
    assert stores.inbox.add(ACME, second) is False, "read or unread"
    assert stores.inbox.mark_read(ACME, "0" * 24, now) is None

    assert stores.inbox.counts(ACME, now) == inbox.Counts(2, 3)
    listed = stores.inbox.list_page(ACME, None, 1, 2, now=now)
    assert ([n.id for n in listed.notifications], listed.total) == ([third.id, first.id], 3)
    assert [n.id for n in stores.inbox.list_page(ACME, None, 2, 2, now=now).notifications] == [second.id]
    assert [n.id for n in stores.inbox.list_page(ACME, "read", 1, 25, now=now).notifications] == [second.id]
    assert stores.inbox.list_page(ACME, "unread", 2, 25, now=now).notifications == []
    assert stores.inbox.get(ACME, second.id, now) == read
    assert stores.inbox.get("globex", second.id, now) is None

    gone = now + timedelta(seconds=RETENTION_SECONDS + 2 * 86_400)
    assert stores.inbox.counts(ACME, gone) == inbox.Counts(0, 0)
    assert stores.inbox.list_page(ACME, None, 1, 25, now=gone).notifications == []
    assert stores.inbox.get(ACME, first.id, gone) is None


def test_a_push_subscriber_is_saved_once_per_endpoint_and_deleted_once(stores: Stores) -> None:
    later = MOMENT + timedelta(hours=1)
    saved = stores.push.save(
        ACME, endpoint="https://push.example/1", p256dh="k", auth="a", expiration_time=None, now=MOMENT
    )
    again = stores.push.save(
        ACME, endpoint="https://push.example/1", p256dh="k2", auth="a2", expiration_time=9_000_000, now=later
    )
    assert again.id == saved.id
    assert (again.p256dh, again.expiration_time, again.created_at, again.updated_at) == (
        "k2",
        9_000_000,
        MOMENT,
        later,
    )
    assert stores.push.get(ACME, saved.id) == again
    assert stores.push.get("globex", saved.id) is None
    cleared = stores.push.save(
        ACME, endpoint="https://push.example/1", p256dh="k3", auth="a3", expiration_time=None, now=later
    )
    assert cleared.expiration_time is None
    assert stores.push.delete(ACME, saved.id) is True
    assert stores.push.delete(ACME, saved.id) is False
    assert stores.push.get(ACME, saved.id) is None


def billing_event(event_id: str, created_at: datetime) -> Event:
    return Event(account=ACME, id=event_id, type="deployment", app="billing", created_at=created_at)


def test_an_apps_events_are_listed_newest_first_once_each_while_live(stores: Stores) -> None:
    now = datetime.now(UTC)
    live = int(now.timestamp()) + 3_600
    events = [
        Event(
            account=ACME,
            id=f"ev-{n}",
            type="deployment",
            app="billing",
            created_at=now - timedelta(minutes=n),
        )
        for n in range(5)
    ]
    for event in events:
        stores.app_events.record(event, live)
    stores.app_events.record(events[0].model_copy(update={"type": "app_crashed"}), live)  # a retried publish
    stores.app_events.record(Event(account=ACME, id="ev-x", type="deployment", created_at=now), live)
    old = Event(
        account=ACME, id="ev-old", type="deployment", app="billing", created_at=now - timedelta(days=40)
    )
    stores.app_events.record(old, int(now.timestamp()) - 1)

    first = stores.app_events.page(ACME, "billing", 1, 2, since=None, now=now)
    assert (first.events, first.total) == (events[:2], 5)
    assert stores.app_events.page(ACME, "billing", 3, 2, since=None, now=now).events == events[4:]
    assert stores.app_events.page(ACME, "billing", 4, 2, since=None, now=now).events == []
    recent = stores.app_events.page(ACME, "billing", 1, 25, since=now - timedelta(minutes=2), now=now)
    assert (recent.events, recent.total) == (events[:3], 3)
    assert stores.app_events.page(ACME, "other", 1, 25, since=None, now=now).total == 0


def test_the_accounts_events_are_listed_newest_first_and_filtered_by_type(stores: Stores) -> None:
    now = datetime.now(UTC)
    live = int(now.timestamp()) + 3_600
    events = [
        Event(
            account=ACME,
            id=f"ev-{n}",
            type="deployment" if n % 2 else "app_crashed",
            app="billing" if n < 3 else None,
            created_at=now - timedelta(minutes=n),
        )
        for n in range(6)
    ]
    for event in events:
        stores.app_events.record(event, live)
        stores.app_events.record(event, live)  # a retried publish writes each copy once
    stores.app_events.record(Event(account="globex", id="ev-g", type="deployment", created_at=now), live)

    everything = stores.app_events.page(ACME, None, 1, 4, since=None, now=now)
    assert (everything.events, everything.total) == (events[:4], 6)
    assert stores.app_events.page(ACME, None, 2, 4, since=None, now=now).events == events[4:]
    crashes = stores.app_events.page(ACME, None, 1, 2, since=None, now=now, event_type="app_crashed")
    assert (crashes.events, crashes.total) == ([events[0], events[2]], 3)
    assert stores.app_events.page(ACME, None, 2, 2, since=None, now=now, event_type="app_crashed").events == [
        events[4]
    ]
    of_app = stores.app_events.page(ACME, "billing", 1, 25, since=None, now=now, event_type="deployment")
    assert (of_app.events, of_app.total) == ([events[1]], 1)
