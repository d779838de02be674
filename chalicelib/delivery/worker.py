"""The delivery function: one SQS batch of event x handler messages, delivered concurrently.

It answers with the ids of exactly the messages to try again; each of those has had
its visibility timeout set to its backoff delay first, so SQS itself is the timer. A retry
longer than a minute is sent again instead, as a delayed message carrying when it is due
(`due_at`): a delayed message is not in flight, and a queue holds at most 120,000 in flight,
which a big account's receiver down for hours would otherwise fill.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from chalicelib import clients, clock, logs, operational
from chalicelib.channels import get_channel
from chalicelib.delivery import pacing, report
from chalicelib.delivery.attempts import attempt_log, count_hours
from chalicelib.delivery.context import POOL_SIZE, DeliveryContext, delivery_context
from chalicelib.delivery.retry import next_delay
from chalicelib.models.deliveries import (
    AttemptStatus,
    Claim,
    DeliveryTask,
    Noted,
    Outcome,
    Prefetched,
    SendResult,
    Settlement,
)
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores, get_stores

logger = logging.getLogger("herald.delivery")

LEASE_SECONDS = 60
"""Longer than one attempt's deadline: a crashed attempt's lease lapses before its retry."""
BUSY_RETRY_SECONDS = 30
RESEND_RETRIES_AFTER_SECONDS = 60
"""A retry due later than this waits as a delayed message rather than an invisible one."""

_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _get_workers() -> ThreadPoolExecutor:
    """The batch's threads, kept for the container's life: a warm invocation starts
    its deliveries at once instead of spawning threads first."""
    global _workers  # noqa: PLW0603
    with _workers_lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="herald-delivery")
        return _workers


class BatchIncomplete(RuntimeError):
    """Raised when some messages must be retried but the event source mapping does not
    report batch item failures: failing the whole batch is then the only way not to lose
    them (the delivered ones come back and are skipped by their idempotency record)."""


def partial_batch_response(response: dict[str, list[dict[str, str]]]) -> dict[str, Any]:
    """Return the partial-batch answer, or raise if the deployment cannot honour it."""
    failures = response["batchItemFailures"]
    if failures and not get_settings().report_batch_item_failures:
        raise BatchIncomplete(f"{len(failures)} message(s) to retry")
    return dict(response)


@dataclass(frozen=True)
class Verdict:
    """What to tell SQS about one message: done, or try again after `delay` seconds; and
    what to write for it with the rest of the batch."""

    retry: bool
    delay: int = 0
    settlement: Settlement | None = None
    dead_letter: str | None = None
    """Why the message goes to the DLQ, once its failure is recorded."""
    hold_until: int | None = None
    """Not sent: its destination's send slot (epoch ms) is this far ahead."""


_AFTER_LEASE = Verdict(retry=True, delay=LEASE_SECONDS)
"""Try again once the lease (if one was taken) has lapsed."""


@dataclass(frozen=True)
class Sent:
    """An attempt made and not yet numbered: the batch numbers each handler's attempts
    together (one UpdateItem per handler, not per delivery), then records them."""

    task: DeliveryTask
    handler: Handler
    event: Event
    result: SendResult
    attempt: int
    status: AttemptStatus
    delay: int | None
    now: datetime
    message_id: str | None = None
    """Its SQS message's, for the attempt's log line."""


@dataclass(frozen=True)
class Message:
    """One record of the batch with its task (None if malformed) and the claim taken
    with the batch (None: the delivery claims on its own)."""

    record: dict[str, Any]
    task: DeliveryTask | None
    claim: Claim | None = None
    slot: int | None = None
    """When its destination takes it (epoch ms); None: unpaced, or the batch read failed."""

    def held_at(self, now_ms: int) -> bool:
        """Whether its slot is far enough ahead to wait for it in the queue."""
        return self.slot is not None and self.slot - now_ms >= pacing.HOLD_BACK_MS


def _parse(record: dict[str, Any]) -> DeliveryTask | None:
    try:
        return DeliveryTask.model_validate_json(record["body"])
    except ValidationError:
        return None


def _prepare(
    stores: Stores, records: list[dict[str, Any]], now_ms: int
) -> tuple[list[Message], Prefetched | None]:
    """Read the batch's handlers, events and delivery records in one call, take each paced
    delivery's send slot, and claim in one more call the deliveries not held back for
    their slot. Retries not due yet read and claim nothing. If the read or the claim fails,
    each delivery reads and claims its own."""
    messages = [_arrived(record, now_ms) for record in records]
    waiting = [m.held_at(now_ms) for m in messages]
    arrived = [m.task for m, waits in zip(messages, waiting, strict=True) if m.task is not None and not waits]
    if not arrived:
        return messages, None
    now = now_ms // 1000
    try:
        fetched = stores.deliveries.prefetch(arrived)
        messages = [
            m if waits else replace(m, slot=_slot(stores, m.task, fetched, now_ms))
            for m, waits in zip(messages, waiting, strict=True)
        ]
        tasks = [m.task for m in messages if m.task is not None and not m.held_at(now_ms)]
        claims = iter(
            stores.deliveries.claim_all(
                tasks,
                fetched.deliveries,
                now=now,
                lease_seconds=LEASE_SECONDS,
                unread=fetched.unread_deliveries,
            )
        )
    except Exception:
        logger.exception("preparing a batch failed; its deliveries go one by one")
        unpaced = [m if waits else replace(m, slot=None) for m, waits in zip(messages, waiting, strict=True)]
        return unpaced, None
    return [
        replace(m, claim=next(claims)) if m.task and not m.held_at(now_ms) else m for m in messages
    ], fetched


def _arrived(record: dict[str, Any], now_ms: int) -> Message:
    """A record as it arrives: a retry that is not due yet (it waited a hop of at most 15
    minutes) waits again, without a read or a claim."""
    task = _parse(record)
    if task is not None and task.due_at is not None and task.due_at - now_ms >= pacing.HOLD_BACK_MS:
        return Message(record, task, slot=task.due_at)
    return Message(record, task)


def _slot(stores: Stores, task: DeliveryTask | None, fetched: Prefetched, now_ms: int) -> int | None:
    """The delivery's send slot: the one it reserved before it was held back, else a new one
    from its destination, if paced. Deliveries that will send nothing take none."""
    if task is None or task.not_before is not None:
        return task.not_before if task else None
    handler = fetched.handlers.get((task.account, task.handler_id))
    if handler is None or not handler.is_enabled:
        return None
    if fetched.deliveries.get(task.key, {}).get("status") == "delivered":
        return None
    try:
        return pacing.reserve(stores, handler, now_ms)
    except Exception:  # sent unpaced: a 429 still holds the destination
        logger.exception("no send slot for handler %s; sending unpaced", handler.id)
        return None


def deliver_batch(records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """Deliver every record concurrently, record the outcomes together, and name the
    messages SQS must redeliver. The claims are taken at the batch's start: a batch is
    never larger than the pool, so no lease ticks while its delivery waits for a thread."""
    context = delivery_context(get_stores(), now=clock.now)
    now_ms = int(clock.now().timestamp() * 1000)
    messages, known = _prepare(context.stores, records, now_ms)
    attempted = list(_get_workers().map(lambda message: _safely(context, message, known, now_ms), messages))
    verdicts = _settle(context.stores, _number(context.stores, attempted))
    verdicts = _hold_back(records, messages, verdicts, now_ms)
    pairs = list(zip(records, verdicts, strict=True))
    parked = [
        (_identity(message), v.dead_letter)
        for message, v in zip(messages, verdicts, strict=True)
        if v.dead_letter is not None
    ]
    if parked:
        clients.dead_letters(get_settings().deliveries_dlq, parked)
    retried = [(record, v.delay) for record, v in pairs if v.retry]
    _delay_redeliveries(retried)
    return {"batchItemFailures": [{"itemIdentifier": record["messageId"]} for record, _ in retried]}


def _number(stores: Stores, attempted: list[Verdict | Sent]) -> list[Verdict]:
    """Number the batch's attempts, one UpdateItem per handler (on the pool, at once), and
    turn each into its verdict."""
    by_handler: dict[tuple[str, int], list[Sent]] = {}
    for outcome in attempted:
        if isinstance(outcome, Sent):
            by_handler.setdefault((outcome.handler.account, outcome.handler.id), []).append(outcome)
    recorded: dict[int, Verdict] = {}
    for verdicts in _get_workers().map(
        lambda attempts: _record_attempts(stores, attempts), by_handler.values()
    ):
        recorded |= verdicts
    return [recorded[id(outcome)] if isinstance(outcome, Sent) else outcome for outcome in attempted]


def _record_attempts(stores: Stores, attempts: list[Sent]) -> dict[int, Verdict]:
    """Number one handler's attempts of the batch together, then each one's verdict (by
    the id of its Sent). Where that fails, as where a send fails, the attempt is retried at
    once (the receivers dedupe on webhook-id)."""
    handler, now = attempts[0].handler, max(sent.now for sent in attempts)
    try:
        noted = stores.handlers.note_attempts(handler, [sent.status for sent in attempts], now)
        gone = next((sent.result for sent in attempts if sent.result.outcome == Outcome.GONE), None)
        if gone is not None:
            reason = f"the destination answered HTTP {gone.http_status}: it no longer exists"
            disable(stores, handler, reason, now)
        elif noted is not None and all(sent.status != AttemptStatus.DELIVERED for sent in attempts):
            _disable_if_failing_too_long(stores, handler, noted.failing_since, now)
    except Exception:
        logger.exception(
            "recording %d attempts to handler %s failed; retrying them", len(attempts), handler.id
        )
        return {id(sent): _interrupted(stores, sent) for sent in attempts}
    verdicts = {}
    for index, sent in enumerate(attempts):
        try:
            verdicts[id(sent)] = _verdict(stores, sent, _noted_for(noted, attempts, index))
        except Exception:
            logger.exception("reporting message %s failed; it will be retried", sent.message_id)
            verdicts[id(sent)] = _interrupted(stores, sent)
    return verdicts


def _interrupted(stores: Stores, sent: Sent) -> Verdict:
    """Let the retry claim it at once instead of waiting out the lease."""
    with contextlib.suppress(Exception):
        stores.deliveries.finish_delivery(sent.task, AttemptStatus.RETRYING, "interrupted; retrying")
    return _AFTER_LEASE


def _noted_for(noted: Noted | None, attempts: list[Sent], index: int) -> Noted | None:
    """The `index`th attempt's number; only the first delivered one ended a run of failures."""
    if noted is None:
        return None
    first_delivered = (
        next(i for i, sent in enumerate(attempts) if sent.status == AttemptStatus.DELIVERED)
        if noted.recovered_from
        else None
    )
    return replace(
        noted,
        seq=noted.seq + index,
        recovered_from=noted.recovered_from if index == first_delivered else None,
    )


def _hold_back(
    records: list[dict[str, Any]], messages: list[Message], verdicts: list[Verdict], now_ms: int
) -> list[Verdict]:
    """Send the deliveries that wait in the queue back to it: those held for their send slot
    or their retry's time, and the retries due in more than a minute. One that could not be
    sent back is retried once its wait is over instead (a held one takes a new slot then)."""
    waits = [_wait(message, verdict, now_ms) for message, verdict in zip(messages, verdicts, strict=True)]
    held = [(record, *wait) for record, wait in zip(records, waits, strict=True) if wait is not None]
    if not held:
        return verdicts
    unheld = pacing.hold_back(_queue_of(records[0]), held, now_ms)
    verdicts = list(verdicts)
    for index, (record, wait) in enumerate(zip(records, waits, strict=True)):
        if wait is None:
            continue
        if record["messageId"] in unheld:  # waits invisible instead
            verdicts[index] = Verdict(retry=True, delay=max(1, (wait[1] - now_ms) // 1000))
        else:  # another message waits in its place
            verdicts[index] = replace(verdicts[index], retry=False, delay=0)
    return verdicts


def _wait(message: Message, verdict: Verdict, now_ms: int) -> tuple[DeliveryTask, int] | None:
    """The message to send in this one's place and when it is due, if it waits in the queue."""
    task = message.task
    if task is None:
        return None
    if verdict.hold_until is not None:
        if task.due_at == verdict.hold_until:  # a retry still waiting: the same message again
            return task, verdict.hold_until
        return task.model_copy(update={"not_before": verdict.hold_until}), verdict.hold_until
    if verdict.retry and verdict.settlement is not None and verdict.delay > RESEND_RETRIES_AFTER_SECONDS:
        due = now_ms + verdict.delay * 1000
        return task.model_copy(update={"due_at": due, "not_before": None}), due
    return None


def _identity(message: Message) -> str:
    """What a dead letter carries: the delivery, without the waits its message took."""
    task = message.task
    if task is None or (task.not_before is None and task.due_at is None):
        return str(message.record["body"])
    return task.model_copy(update={"not_before": None, "due_at": None}).model_dump_json(exclude_none=True)


def _queue_of(record: dict[str, Any]) -> str:
    return str(record.get("eventSourceARN", "")).rsplit(":", 1)[-1] or get_settings().deliveries_queue


def _settle(stores: Stores, verdicts: list[Verdict]) -> list[Verdict]:
    """Write the batch's delivery records and attempt logs in as few calls as DynamoDB
    allows. If that fails, the attempts are not on record: their messages come back once
    the leases lapse and are tried again (receivers dedupe on webhook-id)."""
    settlements = [verdict.settlement for verdict in verdicts if verdict.settlement is not None]
    if not settlements:
        return verdicts
    try:
        stores.deliveries.settle(settlements)
    except Exception:
        logger.exception("recording %d deliveries failed; they will be retried", len(settlements))
        return [_AFTER_LEASE if v.settlement else v for v in verdicts]
    count_hours(stores, [(s.task.account, s.log) for s in settlements if s.log is not None])
    return verdicts


def _safely(
    context: DeliveryContext, message: Message, known: Prefetched | None, now_ms: int
) -> Verdict | Sent:
    if message.held_at(now_ms):
        return Verdict(retry=False, hold_until=message.slot)
    try:
        if message.slot is not None and message.slot > now_ms:
            time.sleep((message.slot - now_ms) / 1000)  # under a second: not worth a trip to SQS
        message_id = message.record.get("messageId")
        with logs.bound(sqs_message_id=message_id):
            outcome = _send_record(context, message, known)
        return replace(outcome, message_id=message_id) if isinstance(outcome, Sent) else outcome
    except Exception:
        # DynamoDB throttling, SQS hiccups...: the message comes back after its
        # visibility timeout and the lease (if taken) has lapsed by then.
        logger.exception("delivery of message %s failed; it will be retried", message.record.get("messageId"))
        return _AFTER_LEASE


def deliver_record(context: DeliveryContext, message: Message, known: Prefetched | None) -> Verdict:
    """One message from its claim to its verdict, its attempt numbered on its own."""
    return _number(context.stores, [_send_record(context, message, known)])[0]


def _send_record(context: DeliveryContext, message: Message, known: Prefetched | None) -> Verdict | Sent:
    """Claim and send one message: its verdict if nothing was sent, else the attempt."""
    stores = context.stores
    task, claim = message.task, message.claim
    if task is None:
        logger.error("message %s is not a delivery task; dead-lettering it", message.record.get("messageId"))
        return Verdict(retry=False, dead_letter="malformed delivery message")
    now = context.now()
    if claim is None:
        claim = stores.deliveries.claim_delivery(task, int(now.timestamp()), LEASE_SECONDS)
    if claim.settled:  # delivered, or a replay sends it instead
        return Verdict(retry=False)
    if claim.state != "claimed":  # another worker holds the lease right now
        return Verdict(retry=True, delay=BUSY_RETRY_SECONDS)
    try:
        return _deliver_claimed(context, task, known, attempt=claim.attempt, now=now)
    except Exception:
        # Let the retry claim it at once instead of waiting out the lease. If the send had
        # gone through, the retry sends again: the receiver dedupes on webhook-id.
        with contextlib.suppress(Exception):
            stores.deliveries.finish_delivery(task, AttemptStatus.RETRYING, "interrupted; retrying")
        raise


def _deliver_claimed(
    context: DeliveryContext,
    task: DeliveryTask,
    known: Prefetched | None,
    *,
    attempt: int,
    now: datetime,
) -> Verdict | Sent:
    handler, event = _handler_and_event(context.stores, task, known)
    if handler is None or not handler.is_enabled:
        skipped = Settlement(task, AttemptStatus.SKIPPED, attempt, error="handler deleted or disabled")
        return Verdict(retry=False, settlement=skipped)
    if event is None:
        expired = Settlement(task, AttemptStatus.FAILED, attempt, error="event expired before delivery")
        return Verdict(retry=False, settlement=expired)
    return _attempt(context, task, handler, event, attempt=attempt, now=now)


def _handler_and_event(
    stores: Stores, task: DeliveryTask, known: Prefetched | None
) -> tuple[Handler | None, Event | None]:
    """The task's handler and event as the batch's read found them, or read on their own
    where that read could not answer: a key DynamoDB left unprocessed says nothing about
    whether the handler was deleted or the event expired. A failed read raises, so the
    message is retried rather than settled on missing data."""
    if known is not None and known.read_handler(task):
        handler = known.handlers.get((task.account, task.handler_id))
    else:
        handler = stores.handlers.get_handler(task.account, task.handler_id)
    if known is not None and known.read_event(task):
        event = known.events.get((task.account, task.event_id))
    else:
        event = stores.deliveries.get_event(task.account, task.event_id)
    return handler, event


def _attempt(
    context: DeliveryContext,
    task: DeliveryTask,
    handler: Handler,
    event: Event,
    *,
    attempt: int,
    now: datetime,
) -> Sent:
    channel = get_channel(handler.type)
    result = channel.deliver(event, handler, context)
    if result.retry_after is not None:
        pacing.hold_destination(context.stores, handler, result.retry_after, int(now.timestamp() * 1000))
    delay = (
        next_delay(channel.retry_schedule, attempt, result.retry_after)
        if result.outcome == Outcome.RETRY
        else None
    )
    if result.outcome == Outcome.SENT:
        status = AttemptStatus.DELIVERED
    elif delay is not None:
        status = AttemptStatus.RETRYING
    else:
        status = AttemptStatus.FAILED
    return Sent(task, handler, event, result, attempt, status, delay, now)


def _verdict(stores: Stores, sent: Sent, noted: Noted | None) -> Verdict:
    """Report a numbered attempt (its log line, operational events) and say what becomes
    of its message and what the batch writes for it."""
    task, result, status, now, attempt = sent.task, sent.result, sent.status, sent.now, sent.attempt
    log = (
        None
        if noted is None
        else attempt_log(sent.event, result, seq=noted.seq, attempt=attempt, status=status, now=now)
    )
    gave_up = status == AttemptStatus.FAILED and result.outcome == Outcome.RETRY
    with logs.bound(sqs_message_id=sent.message_id):
        report.attempted(
            stores,
            sent.handler,
            sent.event,
            result,
            status=status,
            attempt=attempt,
            generation=task.generation,
            noted=noted,
            gave_up=gave_up,
            now=now,
        )
    next_attempt_at = now + timedelta(seconds=sent.delay) if sent.delay is not None else None
    return Verdict(
        retry=status == AttemptStatus.RETRYING,
        delay=sent.delay or 0,
        settlement=Settlement(
            task,
            status,
            attempt,
            http_status=result.http_status,
            error=result.error,
            log=log,
            next_attempt_at=next_attempt_at,
            dead_lettered=gave_up,
        ),
        dead_letter=f"gave up after {attempt} attempts: {result.error}" if gave_up else None,
    )


def _disable_if_failing_too_long(
    stores: Stores, handler: Handler, failing_since: datetime | None, now: datetime
) -> None:
    limit = timedelta(days=get_settings().disable_after_days)
    if failing_since is not None and now - failing_since >= limit:
        disable(stores, handler, f"every delivery failed for {limit.days} days", now)


def disable(stores: Stores, handler: Handler, reason: str, now: datetime) -> None:
    """Disable the handler (once) and tell its account (inbox, operational webhook)."""
    if not stores.handlers.disable_handler(handler.account, handler.id, reason, now):
        return
    logger.warning("disabled handler %s of %s: %s", handler.id, handler.account, reason)
    operational.handler_disabled(stores, handler, reason, now)


def _delay_redeliveries(retried: list[tuple[dict[str, Any], int]]) -> None:
    """Make SQS hold each message back for its backoff delay before redelivering it: one
    ChangeMessageVisibilityBatch per queue and ten messages (a batch comes from one queue)."""
    by_queue: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for record, delay in retried:
        by_queue.setdefault(_queue_of(record), []).append((record, delay))
    for queue, delays in by_queue.items():
        for start in range(0, len(delays), 10):
            _delay_in_one_call(queue, delays[start : start + 10])


def _delay_in_one_call(queue: str, delays: list[tuple[dict[str, Any], int]]) -> None:
    try:
        answer = clients.client("sqs").change_message_visibility_batch(
            QueueUrl=clients.queue_url(queue),
            Entries=[
                {"Id": str(index), "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": delay}
                for index, (record, delay) in enumerate(delays)
            ],
        )
    except Exception:  # the queue's own visibility timeout still brings them back
        logger.exception("could not delay %d message(s)", len(delays))
        return
    failed = [delays[int(entry["Id"])][0].get("messageId") for entry in answer.get("Failed", [])]
    if failed:
        logger.error("could not delay messages %s", failed)
