"""Events in: store the event once, then one SQS message per matching handler.

A publish answers within a bounded number of AWS calls whatever the number of handlers:
an event whose scope (the account-wide handlers and its app's) holds at most
`fan_out_inline_limit` handlers fans out inside the request; a larger one is handed to the
fan-out queue, whose function pages through the handlers in chunks (`run_fan_out`).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from chalicelib import clients, clock
from chalicelib.errors import QueueUnavailable
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.models.events import Event, EventIn, new_event_id
from chalicelib.models.handlers import Handler
from chalicelib.services import app_id, parse
from chalicelib.settings import get_settings
from chalicelib.storage.fan_outs import FanOutProgress
from chalicelib.storage.stores import Stores
from chalicelib.storage.table import RETENTION_SECONDS

logger = logging.getLogger("herald.fanout")

SQS_BATCH = 10
FAN_OUT_CHUNK = 1000
"""Handler keys one fan-out step reads (one or two Queries of `by_app`), then enqueues."""
ENQUEUE_THREADS = 8
"""SendMessageBatch calls in flight at once while enqueueing many deliveries."""
_SEND_ROUNDS = 5

FanOutMode = Literal["inline", "queued"]


@dataclass(frozen=True)
class Published:
    """`matched` is None while a queued fan-out runs (a publish of the same id answers it
    once the fan-out is done)."""

    event_id: str
    matched: int | None
    duplicate: bool
    fan_out: FanOutMode


class FanOutJob(BaseModel):
    """The fan-out queue's message: which event, and the `by_app` key it starts after."""

    account: str
    event_id: str
    after: str | None = None


def publish(stores: Stores, account: str, body: dict[str, Any]) -> Published:
    """Accept an event for `account` and fan it out; the same client id twice is one event.

    The event is stored before fan-out and marked fanned out after, so a publish that
    died in between is completed by the client's retry with the same id (deliveries
    are idempotent per event x handler, so a repeated fan-out sends nothing twice)."""
    request: EventIn = parse(EventIn, body)
    now = clock.now()
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
    duplicate = existing is not None
    if existing is not None:
        if existing.get("fanned_out"):
            mode: FanOutMode = "queued" if existing.get("fan_out") == "queued" else "inline"
            return Published(event.id, int(existing.get("matched", 0)), True, mode)
        event = Event.model_validate(existing)
        expires_at = int(existing.get("expires_at", expires_at))
    stores.app_events.record(event, expires_at)  # before fanned_out: a retry completes it
    inline_limit = get_settings().fan_out_inline_limit
    scope = stores.handlers.scope_chunk(account, event.app, None, inline_limit + 1)
    if len(scope.ids) > inline_limit:  # more handlers than a request should read: off the request path
        queue_fan_out(FanOutJob(account=account, event_id=event.id))
        return Published(event.id, None, duplicate, "queued")
    handlers = [h for h in stores.handlers.handlers_by_id(account, scope.ids) if h.accepts(event)]
    enqueue(_tasks(event, handlers))
    stores.deliveries.mark_fanned_out(account, event.id, [h.id for h in handlers])
    return Published(event.id, len(handlers), duplicate, "inline")


def run_fan_out(stores: Stores, job: FanOutJob, job_id: str, deadline: float) -> int | None:
    """Enqueue the deliveries of a large event, a chunk of handlers at a time, recording
    the progress after each chunk; past `deadline` (time.monotonic()), hand the rest to a
    new job. `job_id` (the SQS message id) lets a redelivered job resume where it was.

    A crash between enqueueing a chunk and recording it enqueues that chunk again when the
    job comes back: those deliveries are claimed per event x handler, so none is sent twice.

    Returns how many deliveries the fan-out matched in all when this job finished it, else None."""
    progress = stores.fan_outs.take_fan_out(job.account, job.event_id, job_id, job.after)
    event = stores.deliveries.get_event(job.account, job.event_id) if progress is not None else None
    while progress is not None and event is not None:
        chunk = stores.handlers.scope_chunk(job.account, event.app, progress.after, FAN_OUT_CHUNK)
        handlers = [h for h in stores.handlers.handlers_by_id(job.account, chunk.ids) if h.accepts(event)]
        enqueue(_tasks(event, handlers))
        stores.deliveries.record_matched_chunk(
            job.account,
            event.id,
            progress.after or "",
            [h.id for h in handlers],
            int(clock.now().timestamp()),
        )
        step = FanOutProgress(chunk.after, progress.matched + len(handlers))
        if not stores.fan_outs.advance_fan_out(job.account, job.event_id, job_id, progress, step):
            logger.info("fan-out of %s/%s was taken over by another job", job.account, job.event_id)
            return None
        if step.after is None:
            return step.matched
        if time.monotonic() >= deadline:
            queue_fan_out(FanOutJob(account=job.account, event_id=job.event_id, after=step.after))
            return None
        progress = step
    return None


def _tasks(event: Event, handlers: list[Handler]) -> list[DeliveryTask]:
    return [DeliveryTask(account=event.account, event_id=event.id, handler_id=h.id) for h in handlers]


def queue_fan_out(job: FanOutJob) -> None:
    sqs = clients.client("sqs")
    sqs.send_message(
        QueueUrl=clients.queue_url(get_settings().fan_out_queue),
        MessageBody=job.model_dump_json(exclude_none=True),
    )


_senders: ThreadPoolExecutor | None = None
_senders_lock = threading.Lock()


def _get_senders() -> ThreadPoolExecutor:
    """Threads for SendMessageBatch calls, kept for the container's life."""
    global _senders  # noqa: PLW0603 - a per-container pool, like the worker's
    with _senders_lock:
        if _senders is None:
            _senders = ThreadPoolExecutor(max_workers=ENQUEUE_THREADS, thread_name_prefix="herald-enqueue")
        return _senders


def enqueue(tasks: list[DeliveryTask]) -> int:
    """SendMessageBatch, ten per call and several calls at once, re-sending only the
    entries SQS refused. Returns the number of SendMessageBatch calls made."""
    url = clients.queue_url(get_settings().deliveries_queue)
    batches = [tasks[start : start + SQS_BATCH] for start in range(0, len(tasks), SQS_BATCH)]
    if len(batches) <= 1:
        return sum(_send_batch(url, batch) for batch in batches)
    return sum(_get_senders().map(lambda batch: _send_batch(url, batch), batches))


def _send_batch(url: str, batch: list[DeliveryTask]) -> int:
    sqs = clients.client("sqs")
    pending = {str(i): task for i, task in enumerate(batch)}
    for round_number in range(_SEND_ROUNDS):
        entries = [
            {"Id": key, "MessageBody": task.model_dump_json(exclude_none=True)}
            for key, task in pending.items()
        ]
        answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        pending = {f["Id"]: pending[f["Id"]] for f in answer.get("Failed", [])}
        if not pending:
            return round_number + 1
        time.sleep(0.05 * 2**round_number)
    raise QueueUnavailable("the deliveries queue refused messages; publish again with the same id")
