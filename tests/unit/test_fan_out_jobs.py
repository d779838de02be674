"""Fan-out off the request path, on the in-memory stores and an in-memory SQS: a publish
with more handlers in scope than the inline limit hands one job to the fan-out queue, and
the jobs enqueue every matching handler's delivery, in chunks, resuming after a crash and
handing over past their deadline, one chain at a time."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from chalicelib import clients
from chalicelib.delivery import fanout
from chalicelib.delivery.fanout import FanOutJob, publish, run_fan_out
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues, queue_url
from tests.unit.test_fanout import ACCOUNT, DEPLOYED, make_handler, with_handlers

LATER = float("inf")
"""A deadline no job reaches."""


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> RecordingQueues:
    monkeypatch.setenv("HERALD_FANOUT_INLINE_LIMIT", "5")
    monkeypatch.setattr(fanout, "FAN_OUT_CHUNK", 4)
    return RecordingQueues(clients.client("sqs"))


def many(count: int) -> Stores:
    """`count` handlers in the event's scope; every third one is disabled."""
    return with_handlers(*(make_handler(i, is_enabled=i % 3 != 0) for i in range(1, count + 1)))


def enqueued(queues: RecordingQueues) -> Counter[int]:
    """How often each handler's delivery was sent to the deliveries queue."""
    return Counter(
        DeliveryTask.model_validate_json(entry["MessageBody"]).handler_id
        for call in queues.made("SendMessageBatch")
        for entry in call["Entries"]
    )


def jobs(queues: RecordingQueues) -> list[FanOutJob]:
    sent = [c for c in queues.made("SendMessage") if c["QueueUrl"] == queue_url("herald-fanout")]
    return [FanOutJob.model_validate_json(call["MessageBody"]) for call in sent]


def matching(count: int) -> Counter[int]:
    return Counter(i for i in range(1, count + 1) if i % 3 != 0)


def matched_on_record(stores: Stores) -> list[int]:
    """The handlers the event's detail lists as matched (with or without a delivery record)."""
    found = stores.deliveries.event_deliveries(ACCOUNT, "ev1")
    assert found is not None
    return sorted(found.matched)


def test_a_publish_within_the_inline_limit_fans_out_in_the_request(queues: RecordingQueues) -> None:
    published = publish(many(5), ACCOUNT, DEPLOYED)
    assert (published.matched, published.fan_out, jobs(queues)) == (4, "inline", [])
    assert enqueued(queues) == matching(5)


def test_a_publish_past_the_inline_limit_hands_one_job_to_the_fan_out_queue(queues: RecordingQueues) -> None:
    stores = many(30)
    published = publish(stores, ACCOUNT, DEPLOYED)
    assert (published.matched, published.fan_out, published.duplicate) == (None, "queued", False)
    assert jobs(queues) == [FanOutJob(account=ACCOUNT, event_id="ev1")]
    assert queues.made("SendMessageBatch") == []

    run_fan_out(stores, jobs(queues)[0], "m-1", LATER)
    assert enqueued(queues) == matching(30)
    assert matched_on_record(stores) == sorted(matching(30)), "GET /v1/events/{id} lists every one"
    again = publish(stores, ACCOUNT, DEPLOYED)
    assert (again.matched, again.fan_out, again.duplicate) == (20, "queued", True)


def test_a_job_past_its_deadline_hands_the_rest_to_the_next(queues: RecordingQueues) -> None:
    stores = many(30)
    publish(stores, ACCOUNT, DEPLOYED)
    assert run_fan_out(stores, jobs(queues)[0], "m-1", deadline=time.monotonic()) is None  # hands over
    assert sum(enqueued(queues).values()) == 3  # handlers 1, 2 and 4 of 1-4
    hand_over = jobs(queues)[1]
    assert hand_over.after is not None
    assert run_fan_out(stores, hand_over, "m-2", LATER) == 20, "the job that ends it counts it all"
    assert enqueued(queues) == matching(30)
    assert publish(stores, ACCOUNT, DEPLOYED).matched == 20


def test_a_job_that_crashed_midway_resumes_from_its_last_recorded_chunk(
    queues: RecordingQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    stores = many(30)
    publish(stores, ACCOUNT, DEPLOYED)
    job = jobs(queues)[0]
    real_advance = stores.fan_outs.advance_fan_out
    steps = iter(range(100))

    def crash_on_third_step(*args: object) -> bool:
        if next(steps) == 2:
            raise RuntimeError("the container died")
        return real_advance(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(stores.fan_outs, "advance_fan_out", crash_on_third_step)
    with pytest.raises(RuntimeError):
        run_fan_out(stores, job, "m-1", LATER)
    run_fan_out(stores, job, "m-1", LATER)  # SQS redelivers the same message
    sent = enqueued(queues)
    assert set(sent) == set(matching(30))
    assert [h for h, n in sent.items() if n > 1] == [9 + 1, 9 + 2]  # only the crashed chunk's, 10 and 11
    assert publish(stores, ACCOUNT, DEPLOYED).matched == 20
    assert matched_on_record(stores) == sorted(matching(30)), "the crashed chunk is on record once"


def test_a_stray_copy_of_a_job_enqueues_nothing_once_another_has_moved_on(queues: RecordingQueues) -> None:
    stores = many(30)
    publish(stores, ACCOUNT, DEPLOYED)
    job = jobs(queues)[0]
    run_fan_out(stores, job, "m-1", deadline=time.monotonic())
    before = sum(enqueued(queues).values())
    run_fan_out(stores, job, "m-copy", LATER)  # the same job sent twice: the copy finds progress ahead
    assert sum(enqueued(queues).values()) == before


def test_handlers_of_other_apps_are_never_read_by_a_fan_out(queues: RecordingQueues) -> None:
    stores = with_handlers(
        *(make_handler(i) for i in range(1, 8)),
        *(make_handler(i, app="other-app") for i in range(8, 20)),
        make_handler(20, app="my-app"),
    )
    publish(stores, ACCOUNT, DEPLOYED)
    run_fan_out(stores, jobs(queues)[0], "m-1", LATER)
    assert enqueued(queues) == Counter([*range(1, 8), 20])
