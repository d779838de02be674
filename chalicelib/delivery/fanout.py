"""Events in: store the event once, then one SQS message per matching handler."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib import clients
from chalicelib.errors import HeraldError
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.models.events import Event, EventIn, new_event_id
from chalicelib.services import app_id, parse
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores
from chalicelib.storage.table import RETENTION_SECONDS

SQS_BATCH = 10
_SEND_ROUNDS = 5


class QueueUnavailable(HeraldError):
    status = 503
    title = "Service unavailable"


@dataclass(frozen=True)
class Published:
    event_id: str
    matched: int
    duplicate: bool


def publish(stores: Stores, account: str, body: dict[str, Any]) -> Published:
    """Accept an event for `account` and fan it out; the same client id twice is one event.

    The event is stored before fan-out and marked fanned out after, so a publish that
    died in between is completed by the client's retry with the same id (deliveries
    are idempotent per event x handler, so a repeated fan-out sends nothing twice)."""
    request: EventIn = parse(EventIn, body)
    now = datetime.now(UTC)
    event = Event(
        account=account,
        id=request.id or new_event_id(),
        type=request.type,
        app=request.app,
        app_id=app_id(stores, account, request.app) if request.app else None,
        user=request.user.model_dump(exclude_none=True) if request.user else None,
        type_data=request.type_data,
        created_at=now,
    )
    expires_at = int(now.timestamp()) + RETENTION_SECONDS
    existing = stores.deliveries.put_event(event, expires_at)
    if existing is not None:
        if existing.get("fanned_out"):
            return Published(event.id, int(existing.get("matched", 0)), duplicate=True)
        event = Event.model_validate(existing)
        expires_at = int(existing.get("expires_at", expires_at))
    stores.app_events.record(event, expires_at)  # before fanned_out: a retry completes it
    handlers = [h for h in stores.handlers.handlers_in_scope(account, event.app) if h.accepts(event)]
    enqueue([DeliveryTask(account=account, event_id=event.id, handler_id=h.id) for h in handlers])
    stores.deliveries.mark_fanned_out(account, event.id, [h.id for h in handlers])
    return Published(event.id, len(handlers), duplicate=existing is not None)


def enqueue(tasks: list[DeliveryTask]) -> int:
    """SendMessageBatch, ten per call, re-sending only the entries SQS refused.

    Returns the number of SendMessageBatch calls made."""
    sqs = clients.client("sqs")
    url = clients.queue_url(get_settings().deliveries_queue)
    calls = 0
    for start in range(0, len(tasks), SQS_BATCH):
        pending = {str(i): task for i, task in enumerate(tasks[start : start + SQS_BATCH])}
        for round_number in range(_SEND_ROUNDS):
            entries = [{"Id": key, "MessageBody": task.model_dump_json()} for key, task in pending.items()]
            answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            calls += 1
            pending = {f["Id"]: pending[f["Id"]] for f in answer.get("Failed", [])}
            if not pending:
                break
            time.sleep(0.05 * 2**round_number)
        if pending:
            raise QueueUnavailable("the deliveries queue refused messages; publish again with the same id")
    return calls
