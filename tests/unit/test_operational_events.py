"""Which attempts raise operational events, and where those go, on the in-memory stores:
a disabled handler, a delivery past its retry schedule and a handler that delivers again
after failing each tell the account's inbox and, when the account has one, queue an
event of its operations namespace for its operational webhook; the webhook's own
failures raise nothing about themselves. No AWS, no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import clients, operational
from chalicelib.channels.base import WEBHOOK_SCHEDULE
from chalicelib.delivery.safe_http import HttpResult
from chalicelib.delivery.worker import Message, deliver_record
from chalicelib.models.deliveries import AttemptStatus, DeliveryTask, Outcome, SendResult
from chalicelib.models.events import OPERATIONAL, Event
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues, RecordingSender, fake_context
from tests.fakes.stores import memory_stores
from tests.unit.test_worker import (
    ACCOUNT,
    BAD_REQUEST,
    GONE,
    NOW,
    OK,
    UNAVAILABLE,
    already_attempted,
    given,
    make_event,
    make_handler,
    records,
    task,
)

OPS = operational.namespace_of(ACCOUNT)


def with_operational_webhook(stores: Stores) -> None:
    stores.handlers.create_handler(
        make_handler(operational.WEBHOOK_ID).model_copy(update={"account": OPS, "name": "ops"})
    )


def attempt(stores: Stores, answer: HttpResult, delivery: DeliveryTask | None = None) -> None:
    delivery = delivery or task()
    context = fake_context(NOW, stores=stores, sender=RecordingSender(answer=answer))
    deliver_record(context, Message(records(delivery)[0], delivery), None)


def queued_operational_events(stores: Stores, queues: RecordingQueues) -> list[dict[str, Any]]:
    """The operational events queued for the webhook, as their stored events."""
    found = []
    for call in queues.made("SendMessageBatch"):
        for entry in call["Entries"]:
            queued = DeliveryTask.model_validate_json(entry["MessageBody"])
            assert (queued.account, queued.handler_id) == (OPS, operational.WEBHOOK_ID)
            event = stores.deliveries.get_event(OPS, queued.event_id)
            assert event is not None
            found.append({"type": event.type, **event.type_data})
    return found


def inbox_types(stores: Stores, account: str = ACCOUNT) -> list[str]:
    return [n.type for n in stores.inbox.list_page(account, None, 1, 25, now=NOW).notifications]


@pytest.fixture
def stores() -> Stores:
    fakes = memory_stores()
    given(fakes, make_handler())
    return fakes


@pytest.fixture
def queues() -> RecordingQueues:
    return RecordingQueues(clients.client("sqs"))


def test_a_disabled_handler_is_told_to_the_inbox_and_the_operational_webhook(
    stores: Stores, queues: RecordingQueues
) -> None:
    with_operational_webhook(stores)
    attempt(stores, GONE)
    [event] = queued_operational_events(stores, queues)
    assert event == {
        "type": "handler_disabled",
        "handler_id": 1,
        "handler_name": "hook 1",
        "handler_type": "webhook",
        "reason": "the destination answered HTTP 410: it no longer exists",
        "disabled_at": NOW.isoformat(),
    }
    assert inbox_types(stores) == ["handler_disabled"]


def test_an_operational_event_sqs_refuses_is_parked_in_the_dead_letter_queue(
    stores: Stores, queues: RecordingQueues
) -> None:
    with_operational_webhook(stores)
    queues.refuse_batches = True
    attempt(stores, GONE)
    [parked] = queues.made("SendMessage")
    assert parked["QueueUrl"].endswith(get_settings().deliveries_dlq)
    task = DeliveryTask.model_validate_json(parked["MessageBody"])
    assert (task.account, task.handler_id) == (OPS, operational.WEBHOOK_ID)
    event = stores.deliveries.get_event(OPS, task.event_id)
    assert event is not None and event.type == "handler_disabled", "a redrive finds the event"
    assert parked["MessageAttributes"]["reason"]["StringValue"].startswith("not queued: ")


def test_without_an_operational_webhook_the_inbox_alone_is_told(
    stores: Stores, queues: RecordingQueues
) -> None:
    attempt(stores, GONE)
    assert queues.made("SendMessageBatch") == []
    assert inbox_types(stores) == ["handler_disabled"]


def test_a_disabled_operational_webhook_is_sent_nothing(stores: Stores, queues: RecordingQueues) -> None:
    with_operational_webhook(stores)
    stores.handlers.disable_handler(OPS, operational.WEBHOOK_ID, "gone", NOW)
    attempt(stores, GONE)
    assert queues.made("SendMessageBatch") == []


def test_the_attempt_past_the_retry_schedule_raises_delivery_exhausted(
    stores: Stores, queues: RecordingQueues
) -> None:
    with_operational_webhook(stores)
    already_attempted(stores, task(), len(WEBHOOK_SCHEDULE))
    attempt(stores, UNAVAILABLE)
    [event] = queued_operational_events(stores, queues)
    assert event["type"] == "delivery_exhausted"
    assert (event["event_id"], event["attempts"], event["http_status"]) == (
        "ev1",
        len(WEBHOOK_SCHEDULE) + 1,
        503,
    )
    assert inbox_types(stores) == ["delivery_exhausted"]


def test_the_same_exhaustion_told_again_is_the_same_operational_event(
    stores: Stores, queues: RecordingQueues
) -> None:
    """Told again when its batch's records failed to write; a replay's exhaustion is new."""
    with_operational_webhook(stores)
    handler, event = make_handler(), make_event()
    failed = SendResult(Outcome.RETRY, http_status=503, error="HTTP 503")
    for generation in (0, 0, 1):
        operational.delivery_exhausted(
            stores, handler, event, failed, attempts=8, generation=generation, now=NOW
        )
    first, again, replayed = (
        DeliveryTask.model_validate_json(entry["MessageBody"]).event_id
        for call in queues.made("SendMessageBatch")
        for entry in call["Entries"]
    )
    assert first == again != replayed


@pytest.mark.parametrize("answer", [UNAVAILABLE, BAD_REQUEST], ids=["a-retry", "a-permanent-failure"])
def test_a_failure_that_is_not_the_last_attempt_raises_nothing(
    stores: Stores, queues: RecordingQueues, answer: HttpResult
) -> None:
    with_operational_webhook(stores)
    attempt(stores, answer)
    assert queues.made("SendMessageBatch") == []
    assert inbox_types(stores) == []


def test_a_handler_delivering_after_failing_raises_handler_recovered_once(
    stores: Stores, queues: RecordingQueues
) -> None:
    with_operational_webhook(stores)
    stores.handlers.note_attempts(make_handler(), [AttemptStatus.RETRYING], NOW)  # failing since NOW
    attempt(stores, OK)
    [event] = queued_operational_events(stores, queues)
    assert (event["type"], event["failing_since"], event["recovered_at"]) == (
        "handler_recovered",
        NOW.isoformat(),
        NOW.isoformat(),
    )
    assert inbox_types(stores) == ["handler_recovered"]


def test_a_handler_that_never_failed_raises_nothing_when_it_delivers(
    stores: Stores, queues: RecordingQueues
) -> None:
    with_operational_webhook(stores)
    attempt(stores, OK)
    assert queues.made("SendMessageBatch") == []


@pytest.mark.parametrize("answer", [GONE, UNAVAILABLE], ids=["disabled", "exhausted"])
def test_the_operational_webhooks_own_failures_raise_no_operational_event(
    queues: RecordingQueues, answer: HttpResult
) -> None:
    """No loops: its own exhaustion is only logged, its disabling only reaches the inbox."""
    stores = memory_stores()
    with_operational_webhook(stores)
    own = DeliveryTask(account=OPS, event_id="op1", handler_id=operational.WEBHOOK_ID)
    stores.deliveries.put_event(Event(account=OPS, id="op1", type="handler_disabled", created_at=NOW), 10**10)
    already_attempted(stores, own, len(WEBHOOK_SCHEDULE))
    attempt(stores, answer, own)
    assert queues.made("SendMessageBatch") == []
    assert inbox_types(stores, OPS) == []
    assert inbox_types(stores) == (["handler_disabled"] if answer is GONE else [])


def test_the_catalog_lists_every_operational_event_raised() -> None:
    assert set(OPERATIONAL) == {"handler_disabled", "delivery_exhausted", "handler_recovered"}
