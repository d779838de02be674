"""The delivery worker on the in-memory stores, a recording sender and recording SQS calls:
batch claims, a verdict per outcome, numbered attempts, the retry schedule's end and the
prefetch's fallbacks. No AWS, no sockets, no sleeping.

`deliver_batch` reads its stores and sender through `get_stores()` and `get_sender()`; the
tests swap those two getters for the fakes (real implementations of the same Protocols).
Its SQS calls (a retry's visibility delay, the DLQ) go through the shared boto3 client of
`chalicelib.clients`, which `RecordingQueues` answers from memory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from chalicelib.channels.base import WEBHOOK_SCHEDULE
from chalicelib.delivery import worker
from chalicelib.delivery.pacing import MAX_SQS_DELAY_SECONDS
from chalicelib.delivery.safe_http import HttpResult
from chalicelib.delivery.worker import (
    BUSY_RETRY_SECONDS,
    LEASE_SECONDS,
    BatchIncomplete,
    Message,
    deliver_batch,
    deliver_record,
    partial_batch_response,
)
from chalicelib.models.deliveries import AttemptStatus, DeliveryTask, Prefetched
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.storage.deliveries import DeliveryStore
from chalicelib.storage.handlers import HandlerStore
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues, RecordingSender, fake_context, queue_url
from tests.fakes.stores import MemoryDeliveryStore, MemoryHandlerStore, every_handler, memory_stores

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ACCOUNT = "acme"
QUEUE = "herald-deliveries"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:000000000000:{QUEUE}"

OK = HttpResult(200, {}, b"", 3, None)
UNAVAILABLE = HttpResult(503, {}, b"try later", 3, None)
BAD_REQUEST = HttpResult(400, {}, b"no such field", 3, None)
GONE = HttpResult(410, {}, b"", 3, None)


def hook_url(handler_id: int) -> str:
    return f"https://hooks.example.com/{handler_id}"


def make_handler(handler_id: int = 1, **fields: Any) -> Handler:
    return Handler(
        account=ACCOUNT,
        id=handler_id,
        type="webhook",
        name=f"hook {handler_id}",
        settings={"webhook": hook_url(handler_id)},
        signing_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )


def make_event(event_id: str = "ev1") -> Event:
    return Event(account=ACCOUNT, id=event_id, type="deployment", app="my-app", created_at=NOW)


def given(stores: Stores, *handlers: Handler, events: tuple[Event, ...] = (make_event(),)) -> None:
    for handler in handlers:
        stores.handlers.create_handler(handler)
    for event in events:
        stores.deliveries.put_event(event, int(NOW.timestamp()) + 86400)


def task(handler_id: int = 1, event_id: str = "ev1") -> DeliveryTask:
    return DeliveryTask(account=ACCOUNT, event_id=event_id, handler_id=handler_id)


def records(*bodies: DeliveryTask | str) -> list[dict[str, Any]]:
    """An SQS event's records, each with its own messageId and receipt handle."""
    return [
        {
            "messageId": f"m-{i}",
            "receiptHandle": f"r-{i}",
            "body": body if isinstance(body, str) else body.model_dump_json(),
            "eventSourceARN": QUEUE_ARN,
        }
        for i, body in enumerate(bodies)
    ]


def record_of(stores: Stores, delivery: DeliveryTask) -> dict[str, Any]:
    """The delivery's record as the fake store holds it."""
    deliveries = stores.deliveries
    assert isinstance(deliveries, MemoryDeliveryStore)
    return deliveries.record(delivery)


def failed_ids(answer: dict[str, list[dict[str, str]]]) -> list[str]:
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def already_attempted(stores: Stores, delivery: DeliveryTask, times: int) -> None:
    """Leave `times` failed attempts on the delivery's record, its lease released."""
    for _ in range(times):
        stores.deliveries.claim_delivery(delivery, int(NOW.timestamp()), LEASE_SECONDS)
        stores.deliveries.finish_delivery(delivery, AttemptStatus.RETRYING, "HTTP 503")


# ---------------------------------------------------------------- one record's verdict


@pytest.mark.parametrize(
    ("answer", "status", "retry", "delays"),
    [
        (OK, AttemptStatus.DELIVERED, False, {0}),
        (UNAVAILABLE, AttemptStatus.RETRYING, True, set(range(4, 7))),  # 5 s ± 20 %
        (BAD_REQUEST, AttemptStatus.FAILED, False, {0}),
        (GONE, AttemptStatus.FAILED, False, {0}),
    ],
    ids=["sent-is-delivered", "retry-is-rescheduled", "permanent-is-failed", "gone-is-failed"],
)
def test_a_first_attempt_is_settled_as_its_outcome_says(
    answer: HttpResult, status: AttemptStatus, retry: bool, delays: set[int]
) -> None:
    stores, sender = memory_stores(), RecordingSender(answer=answer)
    given(stores, make_handler())
    delivery = task()
    verdict = deliver_record(
        fake_context(NOW, stores=stores, sender=sender), Message(records(delivery)[0], delivery), None
    )
    assert (verdict.retry, verdict.delay in delays, verdict.dead_letter) == (retry, True, None)
    settlement = verdict.settlement
    assert settlement is not None
    assert (settlement.task, settlement.status, settlement.attempts) == (delivery, status, 1)
    assert settlement.http_status == answer.status
    log = settlement.log
    assert log is not None
    assert (log.seq, log.attempt, log.status, log.http_status) == (1, 1, status, answer.status)
    assert (log.event_id, log.event_type, log.at) == ("ev1", "deployment", NOW)
    assert [posted.url for posted in sender.posted] == [hook_url(1)]


def test_a_gone_destination_disables_its_handler_and_tells_the_account_once() -> None:
    stores = memory_stores()
    given(stores, make_handler())
    context = fake_context(NOW, stores=stores, sender=RecordingSender(answer=GONE))
    for event_id in ("ev1", "ev2"):
        given(stores, events=(make_event(event_id),))
        delivery = task(event_id=event_id)
        deliver_record(context, Message(records(delivery)[0], delivery), None)
    handler = stores.handlers.get_handler(ACCOUNT, 1)
    assert handler is not None
    assert (handler.is_enabled, handler.disabled_reason) == (
        False,
        "the destination answered HTTP 410: it no longer exists",
    )
    (notice,) = stores.inbox.list_page(ACCOUNT, None, 1, 25, now=NOW).notifications
    assert (notice.type, notice.handler_id) == ("handler_disabled", 1)
    assert notice.title == "Notification handler 'hook 1' was disabled"


@pytest.mark.parametrize(
    ("failing_for", "disabled"),
    [(timedelta(days=5), True), (timedelta(days=4, hours=23), False)],
    ids=["five-days-disables", "a-day-short-does-not"],
)
def test_a_handler_failing_for_the_configured_days_is_disabled(
    failing_for: timedelta, disabled: bool
) -> None:
    stores = memory_stores()
    given(stores, make_handler(failing_since=NOW - failing_for))
    context = fake_context(
        NOW, stores=stores, sender=RecordingSender(answer=BAD_REQUEST), disable_after_days=5
    )
    deliver_record(context, Message(records(task())[0], task()), None)
    handler = stores.handlers.get_handler(ACCOUNT, 1)
    assert handler is not None
    assert handler.is_enabled is not disabled
    assert stores.inbox.counts(ACCOUNT, NOW).total == int(disabled)


@pytest.mark.parametrize(
    ("handler", "event", "status", "error"),
    [
        (None, make_event(), AttemptStatus.SKIPPED, "handler deleted or disabled"),
        (make_handler(is_enabled=False), make_event(), AttemptStatus.SKIPPED, "handler deleted or disabled"),
        (make_handler(), None, AttemptStatus.FAILED, "event expired before delivery"),
    ],
    ids=["deleted-handler", "disabled-handler", "expired-event"],
)
def test_a_delivery_with_nothing_to_deliver_is_settled_without_sending(
    handler: Handler | None, event: Event | None, status: AttemptStatus, error: str
) -> None:
    stores, sender = memory_stores(), RecordingSender()
    given(stores, *([handler] if handler else []), events=(event,) if event else ())
    verdict = deliver_record(
        fake_context(NOW, stores=stores, sender=sender), Message(records(task())[0], task()), None
    )
    settlement = verdict.settlement
    assert verdict.retry is False
    assert settlement is not None
    assert (settlement.status, settlement.error, settlement.log) == (status, error, None)
    assert sender.posted == []


# ---------------------------------------------------------------- batches: claims


def test_a_batch_of_successes_delivers_each_once_and_asks_sqs_for_nothing(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler(1), make_handler(2), make_handler(3))
    answer = deliver_batch(records(task(1), task(2), task(3)))
    assert answer == {"batchItemFailures": []}
    assert sorted(posted.url for posted in sender.posted) == [hook_url(1), hook_url(2), hook_url(3)]
    for handler_id in (1, 2, 3):
        assert record_of(stores, task(handler_id))["status"] == "delivered"
    assert queues.calls == []


def test_a_message_delivered_again_after_its_delivery_is_acknowledged_without_sending(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    deliver_batch(records(task()))
    assert deliver_batch(records(task())) == {"batchItemFailures": []}
    assert len(sender.posted) == 1
    assert stores.handlers.attempt_count(ACCOUNT, 1) == 1
    assert stores.deliveries.list_attempts(ACCOUNT, 1, 1, 1, 25).attempts[0].attempt == 1
    assert queues.calls == []


def test_the_same_message_twice_in_a_batch_is_sent_once_and_the_copy_waits_for_the_lease(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    answer = deliver_batch(records(task(), task()))
    assert len(sender.posted) == 1
    assert failed_ids(answer) == ["m-1"]
    assert queues.visibility_changes() == [
        {"QueueUrl": queue_url(QUEUE), "ReceiptHandle": "r-1", "VisibilityTimeout": BUSY_RETRY_SECONDS}
    ]
    assert record_of(stores, task())["status"] == "delivered"
    assert stores.handlers.attempt_count(ACCOUNT, 1) == 1


def test_a_delivery_leased_by_another_worker_is_not_sent_and_comes_back_later(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    now = int(datetime.now(UTC).timestamp())
    stores.deliveries.claim_delivery(task(), now, LEASE_SECONDS)  # another worker's claim
    answer = deliver_batch(records(task()))
    assert (failed_ids(answer), sender.posted) == (["m-0"], [])
    assert queues.visibility_changes()[0]["VisibilityTimeout"] == BUSY_RETRY_SECONDS


# ---------------------------------------------------------------- batches: verdicts


def test_a_mixed_batch_retries_exactly_its_retryable_messages_after_their_backoff(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, *(make_handler(i) for i in (1, 2, 3, 4)))
    sender.answers = {hook_url(1): OK, hook_url(2): UNAVAILABLE, hook_url(3): BAD_REQUEST, hook_url(4): GONE}
    answer = deliver_batch(records(task(1), task(2), task(3), task(4)))
    assert failed_ids(answer) == ["m-1"]
    (delayed,) = queues.visibility_changes()
    assert delayed["ReceiptHandle"] == "r-1"
    assert 4 <= delayed["VisibilityTimeout"] <= 6
    assert queues.parked() == []  # nothing dead-lettered
    statuses = [record_of(stores, task(i))["status"] for i in (1, 2, 3, 4)]
    assert statuses == ["delivered", "retrying", "failed", "failed"]
    assert [h.is_enabled for h in every_handler(stores, ACCOUNT)] == [True, True, True, False]
    (notice,) = stores.inbox.list_page(ACCOUNT, None, 1, 25, now=datetime.now(UTC)).notifications
    assert notice.handler_id == 4


def test_each_attempt_is_numbered_and_logged_once(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    sender.answer = UNAVAILABLE
    for _ in range(3):
        deliver_batch(records(task()))
    sender.answer = OK
    deliver_batch(records(task(), task()))  # the fourth attempt, its copy waits
    logged = stores.deliveries.list_attempts(ACCOUNT, 1, 4, 1, 25).attempts
    assert [(a.seq, a.attempt, a.status) for a in logged] == [
        (4, 4, AttemptStatus.DELIVERED),
        (3, 3, AttemptStatus.RETRYING),
        (2, 2, AttemptStatus.RETRYING),
        (1, 1, AttemptStatus.RETRYING),
    ]
    assert stores.handlers.attempt_count(ACCOUNT, 1) == 4
    assert record_of(stores, task())["attempts"] == 4


@pytest.mark.parametrize(
    ("attempts_before", "retried"),
    [
        (len(WEBHOOK_SCHEDULE) - 1, True),  # the schedule's last retry
        (len(WEBHOOK_SCHEDULE), False),  # one past it: given up and dead-lettered
    ],
    ids=["last-scheduled-retry", "past-the-schedule"],
)
def test_the_attempt_past_the_retry_schedule_fails_and_goes_to_the_dead_letter_queue(
    stores: Stores,
    sender: RecordingSender,
    queues: RecordingQueues,
    attempts_before: int,
    retried: bool,
) -> None:
    given(stores, make_handler())
    already_attempted(stores, task(), attempts_before)
    sender.answer = UNAVAILABLE
    batch = records(task())
    now_ms = int(time.time() * 1000)
    answer = deliver_batch(batch)
    attempt = attempts_before + 1
    stored = record_of(stores, task())
    assert stored["attempts"] == attempt
    assert (failed_ids(answer), stored["status"]) == ([], "retrying" if retried else "failed")
    if retried:  # hours away: it waits as a delayed message that says when it is due
        assert queues.visibility_changes() == []
        (resent,) = queues.made("SendMessageBatch")
        (entry,) = resent["Entries"]
        assert entry["DelaySeconds"] == MAX_SQS_DELAY_SECONDS
        due = DeliveryTask.model_validate_json(entry["MessageBody"]).due_at
        assert due is not None
        assert 0.8 * WEBHOOK_SCHEDULE[-1] <= (due - now_ms) / 1000 <= 1.2 * WEBHOOK_SCHEDULE[-1] + 1
    parked = queues.parked()
    if not retried:
        assert parked == [
            {
                "QueueUrl": queue_url(f"{QUEUE}-dlq"),
                "MessageBody": batch[0]["body"],
                "MessageAttributes": {
                    "reason": {
                        "DataType": "String",
                        "StringValue": f"gave up after {attempt} attempts: HTTP 503: try later",
                    }
                },
            }
        ]
    else:
        assert parked == []


def test_a_malformed_message_is_dead_lettered_and_never_retried(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    answer = deliver_batch(records("not a task", task()))
    assert failed_ids(answer) == []
    (parked,) = queues.parked()
    assert parked["MessageBody"] == "not a task"
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "malformed delivery message"
    assert record_of(stores, task())["status"] == "delivered"


def test_a_batch_whose_settlement_fails_retries_its_attempts_once_the_leases_lapse(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    given(stores, make_handler())

    def unwritable(settlements: object) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(stores.deliveries, "settle", unwritable)
    answer = deliver_batch(records(task()))
    assert failed_ids(answer) == ["m-0"]
    assert queues.visibility_changes()[0]["VisibilityTimeout"] == LEASE_SECONDS


def test_without_batch_item_failures_a_batch_with_retries_fails_as_a_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HERALD_REPORT_BATCH_ITEM_FAILURES", raising=False)
    with pytest.raises(BatchIncomplete):
        partial_batch_response({"batchItemFailures": [{"itemIdentifier": "m-0"}]})
    assert partial_batch_response({"batchItemFailures": []}) == {"batchItemFailures": []}
    monkeypatch.setenv("HERALD_REPORT_BATCH_ITEM_FAILURES", "1")
    failures = {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert partial_batch_response(failures) == failures


# ---------------------------------------------------------------- the prefetch's fallbacks


class PartialPrefetch:
    """The deliveries store with a batch read that leaves some keys unanswered (DynamoDB
    returned them unprocessed after every retry), or that fails outright."""

    def __init__(
        self, inner: MemoryDeliveryStore, *, handlers: bool = False, events: bool = False, fail: bool = False
    ) -> None:
        self._inner, self._handlers, self._events, self._fail = inner, handlers, events, fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def prefetch(self, tasks: Sequence[DeliveryTask]) -> Prefetched:
        if self._fail:
            raise RuntimeError("throttled")
        read = self._inner.prefetch(tasks)
        return replace(
            read,
            handlers={} if self._handlers else read.handlers,
            events={} if self._events else read.events,
            unread_handlers=frozenset((t.account, t.handler_id) for t in tasks if self._handlers),
            unread_events=frozenset((t.account, t.event_id) for t in tasks if self._events),
        )


class UnreadableHandlers:
    """The handlers store with single reads that fail (throttled)."""

    def __init__(self, inner: MemoryHandlerStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_handler(self, account: str, handler_id: int) -> Handler | None:
        raise RuntimeError("throttled")


def partial_prefetch(stores: Stores, **unread: bool) -> DeliveryStore:
    return cast(DeliveryStore, PartialPrefetch(cast(MemoryDeliveryStore, stores.deliveries), **unread))


@pytest.mark.parametrize(
    "unread",
    [{"handlers": True}, {"events": True}, {"handlers": True, "events": True}, {"fail": True}],
    ids=["handler-unread", "event-unread", "both-unread", "prefetch-failed"],
)
def test_what_the_batch_read_left_unanswered_is_read_on_its_own_and_delivered(
    sender: RecordingSender, queues: RecordingQueues, monkeypatch: pytest.MonkeyPatch, unread: dict[str, bool]
) -> None:
    fakes = memory_stores()
    given(fakes, make_handler(1), make_handler(2))
    partial = replace(fakes, deliveries=partial_prefetch(fakes, **unread))
    monkeypatch.setattr(worker, "get_stores", lambda: partial)
    answer = deliver_batch(records(task(1), task(2)))
    assert failed_ids(answer) == []
    assert sorted(posted.url for posted in sender.posted) == [hook_url(1), hook_url(2)]
    assert [record_of(fakes, task(i))["status"] for i in (1, 2)] == ["delivered", "delivered"]


def test_a_handler_neither_read_can_answer_for_is_retried_never_skipped(
    sender: RecordingSender, queues: RecordingQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = memory_stores()
    given(fakes, make_handler())
    broken = replace(
        fakes,
        handlers=cast(HandlerStore, UnreadableHandlers(cast(MemoryHandlerStore, fakes.handlers))),
        deliveries=partial_prefetch(fakes, handlers=True),
    )
    monkeypatch.setattr(worker, "get_stores", lambda: broken)
    answer = deliver_batch(records(task()))
    assert failed_ids(answer) == ["m-0"]
    assert queues.visibility_changes()[0]["VisibilityTimeout"] == LEASE_SECONDS
    assert sender.posted == []
    stored = record_of(fakes, task())
    assert (stored["status"], stored["last_error"]) == ("retrying", "interrupted; retrying")
    assert "lease_until" not in stored  # the retry may claim it at once
    assert fakes.deliveries.list_attempts(ACCOUNT, 1, 1, 1, 25).attempts == []


def test_a_handler_the_batch_read_found_missing_is_skipped(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores)  # the event, no handler
    assert deliver_batch(records(task())) == {"batchItemFailures": []}
    stored = record_of(stores, task())
    assert (stored["status"], stored["last_error"]) == ("skipped", "handler deleted or disabled")
    assert sender.posted == []


def test_a_webhook_delivery_posts_the_event_signed(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, make_handler())
    deliver_batch(records(task()))
    (posted,) = sender.posted
    assert posted.json()["id"] == "ev1"
    assert posted.headers["webhook-id"] == "msg_ev1_1"
    assert posted.headers["webhook-signature"].startswith("v1,")


def test_a_batchs_attempts_to_one_handler_are_numbered_in_one_write_and_recover_it_once(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tuple(make_event(f"ev{n}") for n in range(3))
    given(stores, make_handler(), events=events)
    stores.handlers.note_attempts(make_handler(), [AttemptStatus.RETRYING], NOW)  # failing since NOW
    numbered: list[tuple[Any, ...]] = []
    note_attempts = stores.handlers.note_attempts

    def counted(*args: Any) -> Any:
        numbered.append(args)
        return note_attempts(*args)

    monkeypatch.setattr(stores.handlers, "note_attempts", counted)
    deliver_batch(records(*(task(1, event.id) for event in events)))
    assert len(numbered) == 1, "one UpdateItem for the handler's three attempts"
    logged = stores.deliveries.list_attempts(ACCOUNT, 1, 4, 1, 10).attempts
    assert sorted(entry.seq for entry in logged) == [2, 3, 4]
    notices = stores.inbox.list_page(ACCOUNT, None, 1, 25, now=NOW).notifications
    assert [notice.type for notice in notices] == ["handler_recovered"]


def test_a_batchs_retries_and_dead_letters_take_one_sqs_call_each(
    stores: Stores, sender: RecordingSender, queues: RecordingQueues
) -> None:
    given(stores, *(make_handler(i) for i in (1, 2, 3)))
    sender.answer = UNAVAILABLE
    answer = deliver_batch(records(task(1), task(2), task(3), "not a task", "nor this"))
    assert failed_ids(answer) == ["m-0", "m-1", "m-2"]
    (delayed,) = queues.made("ChangeMessageVisibilityBatch")
    assert [entry["ReceiptHandle"] for entry in delayed["Entries"]] == ["r-0", "r-1", "r-2"]
    (parked,) = queues.made("SendMessageBatch")
    assert (parked["QueueUrl"], len(parked["Entries"])) == (queue_url(f"{QUEUE}-dlq"), 2)
    assert queues.made("ChangeMessageVisibility") == queues.made("SendMessage") == []
