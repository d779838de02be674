"""Long retries wait in the queue as delayed messages, not in flight: a retry due in more than
a minute is sent again carrying when it is due, waits again if it arrives early (SQS delays a
message 15 minutes at most), and goes when due. On the in-memory stores, a recording sender
and an in-memory SQS, with a fixed clock. No sockets, no sleeping."""

from __future__ import annotations

import json

import pytest

from chalicelib import clock
from chalicelib.channels.base import WEBHOOK_SCHEDULE
from chalicelib.delivery.pacing import MAX_SQS_DELAY_SECONDS
from chalicelib.delivery.worker import deliver_batch
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues, RecordingSender
from tests.unit.test_worker import (
    NOW,
    OK,
    UNAVAILABLE,
    already_attempted,
    failed_ids,
    given,
    make_handler,
    record_of,
    records,
    task,
)

NOW_MS = int(NOW.timestamp() * 1000)
HOUR_MS = 3_600_000


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def resent(queues: RecordingQueues) -> list[tuple[DeliveryTask, int]]:
    """Every message sent back to the deliveries queue: (its task, its DelaySeconds)."""
    return [
        (DeliveryTask.model_validate_json(entry["MessageBody"]), entry["DelaySeconds"])
        for call in queues.made("SendMessageBatch")
        for entry in call["Entries"]
    ]


def fail_the_second_attempt(stores: Stores, sender: RecordingSender) -> dict[str, list[dict[str, str]]]:
    """Deliver a task whose first attempt failed, failing again: its next retry is due in
    WEBHOOK_SCHEDULE[1], 5 minutes."""
    given(stores, make_handler())
    already_attempted(stores, task(), 1)
    sender.answer = UNAVAILABLE
    return deliver_batch(records(task()))


def test_a_retry_due_in_minutes_is_a_delayed_message_that_says_when_it_is_due(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    answer = fail_the_second_attempt(stores, sender)
    assert failed_ids(answer) == []  # this message is done: another takes its place
    assert queues.visibility_changes() == []
    ((waiting, delay),) = resent(queues)
    assert 0.8 * WEBHOOK_SCHEDULE[1] <= delay <= 1.2 * WEBHOOK_SCHEDULE[1] + 1
    assert waiting == task().model_copy(update={"due_at": NOW_MS + delay * 1000})
    stored = record_of(stores, task())
    assert (stored["status"], stored["attempts"]) == ("retrying", 2)


def test_a_retry_that_arrives_before_it_is_due_waits_again_and_sends_nothing(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    already_attempted(stores, task(), 4)
    early = task().model_copy(update={"due_at": NOW_MS + 2 * HOUR_MS})
    answer = deliver_batch(records(early))
    assert (sender.posted, failed_ids(answer)) == ([], [])
    assert resent(queues) == [(early, MAX_SQS_DELAY_SECONDS)]
    assert record_of(stores, task())["attempts"] == 4


def test_the_last_hop_waits_only_what_is_left(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    early = task().model_copy(update={"due_at": NOW_MS + 120_000})
    deliver_batch(records(early))
    assert resent(queues) == [(early, 120)]


def test_a_retry_that_arrives_when_due_is_sent(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    already_attempted(stores, task(), 4)
    sender.answer = OK
    due = task().model_copy(update={"due_at": NOW_MS + 500})  # under a second: not worth a hop
    answer = deliver_batch(records(due))
    assert (len(sender.posted), failed_ids(answer), resent(queues)) == (1, [], [])
    stored = record_of(stores, task())
    assert (stored["status"], stored["attempts"]) == ("delivered", 5)


def test_a_long_retry_sqs_will_not_take_back_waits_invisible_instead(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    queues.refuse_batches = True
    answer = fail_the_second_attempt(stores, sender)
    assert failed_ids(answer) == ["m-0"]
    (delayed,) = queues.visibility_changes()
    assert 0.8 * WEBHOOK_SCHEDULE[1] <= delayed["VisibilityTimeout"] <= 1.2 * WEBHOOK_SCHEDULE[1] + 1


def test_a_dead_letter_carries_the_delivery_without_the_waits_its_message_took(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    already_attempted(stores, task(), len(WEBHOOK_SCHEDULE))
    sender.answer = UNAVAILABLE
    deliver_batch(records(task().model_copy(update={"due_at": NOW_MS - 1000, "not_before": NOW_MS - 500})))
    (parked,) = queues.parked()
    assert json.loads(parked["MessageBody"]) == {
        "account": "acme",
        "event_id": "ev1",
        "handler_id": 1,
        "generation": 0,
    }
