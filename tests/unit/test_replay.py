"""Replay and recover on the in-memory stores: which deliveries get a new generation, which
messages go to the queue, and what is refused. The queue is `RecordingQueues`: no AWS."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from chalicelib import clients
from chalicelib.delivery.replay import recover_handler, replay_event
from chalicelib.errors import Conflict, NotFound
from chalicelib.models.deliveries import Attempt, AttemptStatus, DeliveryTask, Settlement
from chalicelib.models.events import Event
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues
from tests.unit.test_fanout import ACCOUNT, NOW, make_handler, with_handlers

EXPIRES = 2_000_000_000


@pytest.fixture
def queues() -> RecordingQueues:
    return RecordingQueues(clients.client("sqs"))


def sent(queues: RecordingQueues) -> list[DeliveryTask]:
    return [
        DeliveryTask.model_validate_json(entry["MessageBody"])
        for call in queues.made("SendMessageBatch")
        for entry in call["Entries"]
    ]


def published(stores: Stores, event_id: str, *handler_ids: int) -> None:
    stores.deliveries.put_event(
        Event(account=ACCOUNT, id=event_id, type="deployment", created_at=NOW), EXPIRES
    )
    stores.deliveries.mark_fanned_out(ACCOUNT, event_id, list(handler_ids))


def failed(stores: Stores, event_id: str, handler_id: int, seq: int, at: datetime) -> None:
    """A delivery that failed at `at`, as the worker settles it."""
    task = DeliveryTask(account=ACCOUNT, event_id=event_id, handler_id=handler_id)
    handler = stores.handlers.get_handler(ACCOUNT, handler_id)
    stores.handlers.note_attempts(handler, [AttemptStatus.FAILED], at)  # type: ignore[arg-type]
    log = Attempt(
        seq=seq, event_id=event_id, event_type="deployment", attempt=1, status=AttemptStatus.FAILED, at=at
    )
    stores.deliveries.settle([Settlement(task, AttemptStatus.FAILED, 1, http_status=400, log=log)])


def test_a_replay_to_every_handler_sends_one_message_of_a_new_generation_each(
    queues: RecordingQueues,
) -> None:
    stores = with_handlers(make_handler(1), make_handler(2))
    published(stores, "ev-1", 1, 2)
    replayed = replay_event(stores, ACCOUNT, "ev-1", NOW)
    assert (replayed.replayed, replayed.in_flight) == ([1, 2], [])
    assert sent(queues) == [
        DeliveryTask(account=ACCOUNT, event_id="ev-1", handler_id=h, generation=1) for h in (1, 2)
    ]
    replay_event(stores, ACCOUNT, "ev-1", NOW, handler_id=2)
    assert sent(queues)[-1].generation == 2


def test_a_replay_is_refused_for_an_unknown_event_handler_or_one_it_never_went_to(
    queues: RecordingQueues,
) -> None:
    stores = with_handlers(make_handler(1), make_handler(2), make_handler(3, account="globex"))
    published(stores, "ev-1", 1)
    with pytest.raises(NotFound, match="event 'ev-2' not found"):
        replay_event(stores, ACCOUNT, "ev-2", NOW)
    with pytest.raises(NotFound, match="was not sent to notification handler 2"):
        replay_event(stores, ACCOUNT, "ev-1", NOW, handler_id=2)
    with pytest.raises(NotFound):
        replay_event(stores, "globex", "ev-1", NOW, handler_id=3)
    assert sent(queues) == []


def test_a_replay_to_a_handler_with_an_attempt_in_flight_is_a_conflict(queues: RecordingQueues) -> None:
    stores = with_handlers(make_handler(1))
    published(stores, "ev-1", 1)
    task = DeliveryTask(account=ACCOUNT, event_id="ev-1", handler_id=1)
    stores.deliveries.claim_delivery(task, int(NOW.timestamp()), 60)
    with pytest.raises(Conflict, match="in flight"):
        replay_event(stores, ACCOUNT, "ev-1", NOW, handler_id=1)
    assert replay_event(stores, ACCOUNT, "ev-1", NOW).in_flight == [1]
    assert sent(queues) == []


def test_a_recover_requeues_each_event_failed_since_the_moment_once(queues: RecordingQueues) -> None:
    stores = with_handlers(make_handler(1))
    for seq, (event_id, ago) in enumerate([("old", 30), ("recent", 2), ("latest", 1)], start=1):
        published(stores, event_id, 1)
        failed(stores, event_id, 1, seq, NOW - timedelta(hours=ago))
    recovered = recover_handler(stores, ACCOUNT, 1, NOW - timedelta(hours=24), NOW)
    assert recovered.event_ids == ["latest", "recent"]
    assert [(t.event_id, t.generation) for t in sent(queues)] == [("latest", 1), ("recent", 1)]
    assert recover_handler(stores, ACCOUNT, 1, NOW - timedelta(hours=24), NOW).event_ids == []
    assert recover_handler(stores, ACCOUNT, 1, NOW - timedelta(hours=48), NOW).event_ids == ["old"]
    with pytest.raises(NotFound):
        recover_handler(stores, "globex", 1, NOW - timedelta(hours=24), NOW)
