"""Per-destination send rates in the worker, on the in-memory stores, a recording sender and
an in-memory SQS: deliveries above their destination's rate are held back in the queue with
their slot (no attempt counted), go at their slot without taking another, and a Retry-After
holds the destination for every later delivery. No sockets, no sleeping."""

from __future__ import annotations

import json

import pytest

from chalicelib import clock
from chalicelib.delivery import pacing
from chalicelib.delivery.pacing import destination_id
from chalicelib.delivery.safe_http import HttpResult
from chalicelib.delivery.worker import deliver_batch
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.models.handlers import Handler
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues, RecordingSender, queue_url
from tests.fakes.stores import MemoryDestinationStore
from tests.unit.test_worker import (
    NOW,
    QUEUE,
    failed_ids,
    given,
    make_event,
    make_handler,
    record_of,
    records,
    task,
)

NOW_MS = int(NOW.timestamp() * 1000)
EVENTS = tuple(make_event(f"ev{i}") for i in range(5))


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def one_a_second() -> Handler:
    return make_handler(1, rate_limit_per_second=1)


def next_slot(stores: Stores, handler: Handler) -> int:
    destinations = stores.destinations
    assert isinstance(destinations, MemoryDestinationStore)
    return destinations.next_ms[destination_id(handler)]


def test_a_burst_above_the_rate_is_held_back_with_its_slots_and_no_attempt_counted(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, one_a_second(), events=EVENTS)
    tasks = [task(1, f"ev{i}") for i in range(5)]
    answer = deliver_batch(records(*tasks))
    assert (len(sender.posted), failed_ids(answer)) == (1, [])
    (held,) = queues.made("SendMessageBatch")
    assert held["QueueUrl"] == queue_url(QUEUE)
    assert [entry["DelaySeconds"] for entry in held["Entries"]] == [1, 2, 3, 4]
    slots = [json.loads(entry["MessageBody"])["not_before"] for entry in held["Entries"]]
    assert slots == [NOW_MS + 1000 * n for n in range(1, 5)]
    assert [record_of(stores, t).get("attempts") for t in tasks] == [1, None, None, None, None]
    assert queues.visibility_changes() == []


def test_a_held_delivery_goes_at_its_slot_without_taking_another(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    handler = one_a_second()
    given(stores, handler)
    stores.destinations.reserve_slot(destination_id(handler), interval_ms=1000, burst=1, now_ms=NOW_MS)
    before = next_slot(stores, handler)
    answer = deliver_batch(
        records(DeliveryTask(account="acme", event_id="ev1", handler_id=1, not_before=NOW_MS))
    )
    assert (len(sender.posted), failed_ids(answer), next_slot(stores, handler)) == (1, [], before)


def test_a_retry_after_holds_the_destination_for_every_later_delivery(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    handler = one_a_second()
    given(stores, handler, events=EVENTS)
    sender.answer = HttpResult(429, {"Retry-After": "30"}, b"slow down", 3, None)
    deliver_batch(records(task(1, "ev0")))
    assert next_slot(stores, handler) >= NOW_MS + 30_000
    sender.answer = HttpResult(200, {}, b"", 3, None)
    deliver_batch(records(task(1, "ev1")))
    assert len(sender.posted) == 1  # ev1 waits in the queue for the destination
    (held,) = queues.made("SendMessageBatch")
    assert held["Entries"][0]["DelaySeconds"] >= 30


def test_unpaced_handlers_take_no_slot(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler(1), events=EVENTS)
    deliver_batch(records(*(task(1, f"ev{i}") for i in range(5))))
    destinations = stores.destinations
    assert isinstance(destinations, MemoryDestinationStore)
    assert (len(sender.posted), destinations.next_ms) == (5, {})


def telegram_handler(handler_id: int, chat: str, bot: str = "123456") -> Handler:
    return make_handler(handler_id).model_copy(
        update={"type": "telegram", "settings": {"telegram": f"{bot}:SECRET", "telegram_chat_id": chat}}
    )


def test_a_telegram_bot_takes_about_30_messages_a_second_across_all_its_chats(stores: Stores) -> None:
    chats = [telegram_handler(n, chat=str(1000 + n)) for n in range(40)]
    slots = [pacing.reserve(stores, handler, NOW_MS) for handler in chats]
    assert slots == [NOW_MS + 33 * n for n in range(40)], "one bot: 1/30 s apart, though every chat is new"
    assert pacing.reserve(stores, telegram_handler(99, chat="1000", bot="777"), NOW_MS) == NOW_MS, (
        "another bot"
    )
    one_chat = telegram_handler(98, chat="42", bot="555")
    assert [pacing.reserve(stores, one_chat, NOW_MS) for _ in range(2)] == [NOW_MS, NOW_MS + 1000], (
        "1/s a chat"
    )


def test_deliveries_past_their_bots_rate_are_held_back_in_the_queue(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    busy_bot = [telegram_handler(n, chat=str(1000 + n)) for n in range(1, 11)]
    given(stores, *busy_bot)
    for n in range(40):  # other chats of the bot took the next 1.3 s
        pacing.reserve(stores, telegram_handler(100 + n, chat=str(5000 + n)), NOW_MS)
    answer = deliver_batch(records(*(task(h.id, "ev1") for h in busy_bot)))
    (held,) = queues.made("SendMessageBatch")
    assert (sender.posted, failed_ids(answer), len(held["Entries"])) == ([], [], 10)
