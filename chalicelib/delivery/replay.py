"""Replay and recover: send an event again to its handlers through the same queue and worker.

A replay starts a new generation of the event x handler's delivery record (attempts from 1,
status pending) with one conditional update, then sends a message of that generation. The
worker's claim sends only a message of the record's generation, so the replay sends even
if the delivery was delivered, while an older message still queued, retrying or parked in
the DLQ is dropped when it comes back. The webhook-id is the event x handler's, so
receivers see a replay as the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib import services
from chalicelib.delivery.fanout import enqueue
from chalicelib.errors import Conflict, NotFound
from chalicelib.models.deliveries import AttemptStatus, DeliveryTask, EventDeliveries
from chalicelib.storage.stores import Stores


@dataclass(frozen=True)
class Replayed:
    """Which handlers the event was sent to again, and which had an attempt in flight."""

    event_id: str
    replayed: list[int]
    in_flight: list[int]


@dataclass(frozen=True)
class Recovered:
    """The events a handler's recover queued again, newest failure first."""

    handler_id: int
    since: datetime
    event_ids: list[str]


def event_deliveries(stores: Stores, account: str, event_id: str) -> EventDeliveries:
    found = stores.deliveries.event_deliveries(account, event_id)
    if found is None:
        raise NotFound(f"event {event_id!r} not found")
    return found


def replay_event(
    stores: Stores, account: str, event_id: str, now: datetime, handler_id: int | None = None
) -> Replayed:
    """Send the event again to one of its handlers, or to every one it went to. A handler
    whose attempt is in flight right now is left to that attempt (one handler: 409)."""
    found = event_deliveries(stores, account, event_id)
    targets = found.handler_ids()
    if handler_id is not None:
        services.get_handler(stores, account, handler_id)
        if handler_id not in targets:
            raise NotFound(f"event {event_id!r} was not sent to notification handler {handler_id}")
        targets = [handler_id]
    tasks, in_flight = [], []
    for target in targets:
        generation = stores.deliveries.requeue_delivery(
            account, event_id, target, now=int(now.timestamp()), only_failed=False
        )
        if generation is None:
            in_flight.append(target)
        else:
            tasks.append(
                DeliveryTask(account=account, event_id=event_id, handler_id=target, generation=generation)
            )
    if handler_id is not None and in_flight:
        raise Conflict(
            f"an attempt to notification handler {handler_id} is in flight; replay it once it ends"
        )
    enqueue(tasks)
    return Replayed(event_id, [task.handler_id for task in tasks], in_flight)


def recover_handler(
    stores: Stores, account: str, handler_id: int, since: datetime, now: datetime
) -> Recovered:
    """Queue again every delivery to the handler that failed (or was dead-lettered) at or
    after `since` and is still failed: calling it twice queues nothing the second time,
    since each delivery it queued is pending (or further) by then."""
    handler = services.get_handler(stores, account, handler_id)
    top = stores.handlers.attempt_count(account, handler.id)
    failed = dict.fromkeys(
        attempt.event_id
        for attempt in stores.deliveries.attempts_since(account, handler.id, top, since)
        if attempt.status == AttemptStatus.FAILED
    )
    tasks = []
    for event_id in failed:
        generation = stores.deliveries.requeue_delivery(
            account, event_id, handler.id, now=int(now.timestamp()), only_failed=True
        )
        if generation is not None:
            tasks.append(
                DeliveryTask(account=account, event_id=event_id, handler_id=handler.id, generation=generation)
            )
    enqueue(tasks)
    return Recovered(handler.id, since, [task.event_id for task in tasks])
