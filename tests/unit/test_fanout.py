"""Fan-out on the in-memory stores: publishing an event enqueues one delivery per handler
that subscribes to it (enabled, in the event's app or account-wide, selecting its type) and
none for any other. The deliveries queue is the shared boto3 client of `chalicelib.clients`,
answered from memory by `RecordingQueues`: no AWS, no sockets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import clients
from chalicelib.delivery.fanout import SQS_BATCH, publish
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.models.events import event_type
from chalicelib.models.handlers import Handler
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues, queue_url
from tests.fakes.stores import memory_stores

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ACCOUNT = "acme"
DEPLOYMENT = event_type("deployment").id  # type: ignore[union-attr]
APP_CRASHED = event_type("app_crashed").id  # type: ignore[union-attr]
ALERT = event_type("alert_triggered").id  # type: ignore[union-attr]


def make_handler(handler_id: int, account: str = ACCOUNT, **fields: Any) -> Handler:
    return Handler(
        account=account,
        id=handler_id,
        type=fields.pop("type", "webhook"),
        name=f"hook {handler_id}",
        settings=fields.pop("settings", {"webhook": f"https://hooks.example.com/{handler_id}"}),
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def with_handlers(*handlers: Handler) -> Stores:
    stores = memory_stores()
    for handler in handlers:
        stores.handlers.create_handler(handler)
    return stores


@pytest.fixture
def queues() -> RecordingQueues:
    return RecordingQueues(clients.client("sqs"))


def enqueued(queues: RecordingQueues) -> list[DeliveryTask]:
    """Every delivery sent to the deliveries queue, in order."""
    return [
        DeliveryTask.model_validate_json(entry["MessageBody"])
        for call in queues.made("SendMessageBatch")
        for entry in call["Entries"]
    ]


DEPLOYED = {"id": "ev1", "type": "deployment", "app": "my-app"}
ALERTED = {"id": "ev1", "type": "alert_triggered", "app": "my-app"}
ACCOUNT_WIDE = {"id": "ev1", "type": "deployment"}


@pytest.mark.parametrize(
    ("fields", "body", "matches"),
    [
        ({}, DEPLOYED, True),
        ({"is_enabled": False}, DEPLOYED, False),
        ({"app": "my-app"}, DEPLOYED, True),
        ({"app": "other-app"}, DEPLOYED, False),
        ({}, ACCOUNT_WIDE, True),
        ({"app": "my-app"}, ACCOUNT_WIDE, False),
        ({"send_all_events": False}, DEPLOYED, False),
        ({"send_all_events": False, "selected_event_ids": [DEPLOYMENT]}, DEPLOYED, True),
        ({"send_all_events": False, "selected_event_ids": [APP_CRASHED]}, DEPLOYED, False),
        ({"send_all_alerts": False}, ALERTED, False),
        ({"send_all_events": False}, ALERTED, True),
        ({"send_all_alerts": False, "selected_event_ids": [ALERT]}, ALERTED, True),
        ({"type": "email", "settings": {"email": "a@example.com, b@example.com"}}, DEPLOYED, False),
        (
            {
                "type": "email",
                "settings": {"email": "a@example.com, b@example.com"},
                "confirmed_emails": ["b@example.com"],
            },
            DEPLOYED,
            True,
        ),
        ({"settings": {}}, DEPLOYED, False),  # created awaiting its setup
    ],
    ids=[
        "enabled-all-events",
        "disabled",
        "same-app",
        "other-app",
        "account-wide-handler-account-wide-event",
        "app-handler-account-wide-event",
        "all-events-off",
        "type-selected",
        "other-type-selected",
        "all-alerts-off",
        "alerts-on-events-off",
        "alert-selected",
        "email-unconfirmed",
        "email-one-address-confirmed",
        "setup-incomplete",
    ],
)
def test_an_event_is_enqueued_for_a_handler_exactly_when_the_handler_subscribes_to_it(
    queues: RecordingQueues, fields: dict[str, Any], body: dict[str, Any], matches: bool
) -> None:
    stores = with_handlers(make_handler(7, **fields))
    published = publish(stores, ACCOUNT, body)
    expected = [DeliveryTask(account=ACCOUNT, event_id="ev1", handler_id=7)] if matches else []
    assert (enqueued(queues), published.matched) == (expected, len(expected))


def test_an_event_is_enqueued_once_per_matching_handler_of_its_account_only(queues: RecordingQueues) -> None:
    stores = with_handlers(
        make_handler(1),
        make_handler(2, app="my-app"),
        make_handler(3, app="other-app"),
        make_handler(4, is_enabled=False),
        make_handler(5, send_all_events=False, selected_event_ids=[DEPLOYMENT]),
        make_handler(1, account="globex"),
        make_handler(6, account="globex", app="my-app"),
    )
    published = publish(stores, ACCOUNT, DEPLOYED)
    assert sorted(t.handler_id for t in enqueued(queues)) == [1, 2, 5]
    assert {t.account for t in enqueued(queues)} == {ACCOUNT}
    assert (published.event_id, published.matched, published.duplicate) == ("ev1", 3, False)
    (sent,) = queues.made("SendMessageBatch")
    assert sent["QueueUrl"] == queue_url("herald-deliveries")


def test_many_matching_handlers_are_enqueued_ten_per_call(queues: RecordingQueues) -> None:
    stores = with_handlers(*(make_handler(i) for i in range(1, 24)))
    publish(stores, ACCOUNT, DEPLOYED)
    calls = queues.made("SendMessageBatch")
    assert [len(call["Entries"]) for call in calls] == [SQS_BATCH, SQS_BATCH, 3]
    assert all(len({e["Id"] for e in call["Entries"]}) == len(call["Entries"]) for call in calls)
    assert sorted(t.handler_id for t in enqueued(queues)) == list(range(1, 24))


def test_an_event_no_handler_subscribes_to_is_stored_and_enqueues_nothing(queues: RecordingQueues) -> None:
    stores = with_handlers(make_handler(1, app="other-app"))
    published = publish(stores, ACCOUNT, DEPLOYED)
    assert (published.matched, queues.made("SendMessageBatch")) == (0, [])
    assert stores.deliveries.get_event(ACCOUNT, "ev1") is not None


def test_publishing_the_same_event_id_again_enqueues_nothing_more(queues: RecordingQueues) -> None:
    stores = with_handlers(make_handler(1), make_handler(2))
    first = publish(stores, ACCOUNT, DEPLOYED)
    again = publish(stores, ACCOUNT, DEPLOYED)
    assert len(enqueued(queues)) == 2
    assert (first.duplicate, again.duplicate, again.matched, again.event_id) == (False, True, 2, "ev1")


def test_a_publish_that_died_before_its_fan_out_is_completed_by_the_retry(queues: RecordingQueues) -> None:
    stores = with_handlers(make_handler(1))
    publish(stores, ACCOUNT, DEPLOYED)
    stored = stores.deliveries.get_event(ACCOUNT, "ev1")
    assert stored is not None
    other = with_handlers(make_handler(1))
    other.deliveries.put_event(stored, int(NOW.timestamp()) + 86400)  # stored, never fanned out
    retried = publish(other, ACCOUNT, DEPLOYED)
    assert (retried.duplicate, retried.matched) == (True, 1)
    assert [t.handler_id for t in enqueued(queues)] == [1, 1]
    publish(other, ACCOUNT, DEPLOYED)  # now marked fanned out: nothing more
    assert len(enqueued(queues)) == 2
