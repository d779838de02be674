"""Events and deliveries on every backend: idempotent events, the batch read, claims and
leases, settlement and the attempt log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.pagination import make_handlers
from chalicelib.models.deliveries import (
    Attempt,
    AttemptStatus,
    Claim,
    DeliveryState,
    DeliveryTask,
    HourTally,
    Settlement,
)
from chalicelib.models.events import Event
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import unread_keys

ACME = "acme"
MOMENT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
EXPIRES = 2_000_000_000


def event(event_id: str = "ev-1", app: str | None = None) -> Event:
    return Event(account=ACME, id=event_id, type="deployment", app=app, created_at=MOMENT)


def batch_of(*handler_ids: int, event_id: str = "ev-1") -> list[DeliveryTask]:
    return [DeliveryTask(account=ACME, event_id=event_id, handler_id=h) for h in handler_ids]


def claim_batch(stores: Stores, tasks: list[DeliveryTask], now: int = 1_000) -> list[Claim | None]:
    """Claim as the worker does: from the records read with the batch."""
    seen = stores.deliveries.prefetch(tasks).deliveries
    return stores.deliveries.claim_all(tasks, seen, now=now, lease_seconds=60)


def test_an_event_is_stored_once_and_its_second_put_returns_the_first(stores: Stores) -> None:
    first = event()
    assert stores.deliveries.put_event(first, EXPIRES) is None
    again = stores.deliveries.put_event(first.model_copy(update={"type": "app_crashed"}), EXPIRES + 1)
    assert again is not None
    assert (again["type"], again["fanned_out"], again["expires_at"]) == ("deployment", False, EXPIRES)
    assert Event.model_validate(again) == first
    assert stores.deliveries.get_event(ACME, "ev-1") == first
    assert stores.deliveries.get_event("globex", "ev-1") is None

    stores.deliveries.mark_fanned_out(ACME, "ev-1", [4, 2, 9])
    fanned = stores.deliveries.put_event(first, EXPIRES)
    assert fanned is not None
    assert (fanned["fanned_out"], fanned["matched"]) == (True, 3)


def test_the_batch_read_finds_handlers_events_and_records_and_answers_for_missing_ones(
    stores: Stores,
) -> None:
    [handler] = make_handlers(ACME, 1)
    stores.handlers.create_handler(handler)
    stores.deliveries.put_event(event(), EXPIRES)
    tasks = [*batch_of(1, 2), *batch_of(1, event_id="ev-gone")]
    assert stores.deliveries.claim_delivery(tasks[0], 1_000, 60) == Claim(1, "claimed")

    fetched = stores.deliveries.prefetch(tasks)
    assert fetched.handlers == {(ACME, 1): handler}
    assert fetched.events == {(ACME, "ev-1"): event()}
    assert set(fetched.deliveries) == {tasks[0].key}
    assert fetched.deliveries[tasks[0].key]["attempts"] == 1
    assert unread_keys(fetched) == 0
    assert all(fetched.read_handler(task) and fetched.read_event(task) for task in tasks)


def test_a_batch_is_claimed_then_leased_until_the_lease_lapses(stores: Stores) -> None:
    tasks = batch_of(1, 2, 3)
    assert claim_batch(stores, tasks) == [Claim(1, "claimed")] * 3
    assert claim_batch(stores, tasks, now=1_030) == [Claim(1, "sending")] * 3, "leased for 60 s"
    assert claim_batch(stores, tasks, now=1_060) == [Claim(1, "sending")] * 3, "up to its last second"
    assert claim_batch(stores, tasks, now=1_061) == [Claim(2, "claimed")] * 3, "the lease lapsed"
    stores.deliveries.settle([Settlement(tasks[0], AttemptStatus.DELIVERED, 2)])
    assert claim_batch(stores, tasks[:1], now=2_000) == [Claim(2, "delivered")]


def test_a_single_claim_is_refused_while_leased_and_forever_once_delivered(stores: Stores) -> None:
    [task] = batch_of(1)
    assert stores.deliveries.claim_delivery(task, 1_000, 60) == Claim(1, "claimed")
    assert stores.deliveries.claim_delivery(task, 1_000, 60) == Claim(1, "sending"), "claimed twice"
    assert stores.deliveries.claim_delivery(task, 1_061, 60) == Claim(2, "claimed")
    stores.deliveries.settle([Settlement(task, AttemptStatus.DELIVERED, 2, http_status=200)])
    assert stores.deliveries.claim_delivery(task, 9_999, 60) == Claim(2, "delivered")
    assert stores.deliveries.reset_delivery(task) is False, "no redrive of a delivered"
    assert stores.deliveries.claim_delivery(task, 9_999, 60) == Claim(2, "delivered")


def test_a_duplicate_in_the_batch_is_left_to_claim_on_its_own_and_finds_the_lease(stores: Stores) -> None:
    first, duplicate = batch_of(7, 7)
    assert claim_batch(stores, [first, duplicate]) == [Claim(1, "claimed"), None]
    assert stores.deliveries.claim_delivery(duplicate, 1_000, 60) == Claim(1, "sending")


def test_a_record_left_unread_is_left_to_claim_on_its_own(stores: Stores) -> None:
    first, second = batch_of(1, 2)
    claims = stores.deliveries.claim_all([first, second], {}, now=1_000, lease_seconds=60, unread={first.key})
    assert claims == [None, Claim(1, "claimed")]
    assert stores.deliveries.claim_delivery(first, 1_000, 60) == Claim(1, "claimed")


def test_a_record_changed_since_the_read_cancels_the_whole_batch_claim(stores: Stores) -> None:
    tasks = batch_of(1, 2)
    seen = stores.deliveries.prefetch(tasks).deliveries
    assert stores.deliveries.claim_delivery(tasks[1], 1_000, 60).state == "claimed"  # another worker
    assert stores.deliveries.claim_all(tasks, seen, now=1_000, lease_seconds=60) == [None, None]
    assert stores.deliveries.claim_delivery(tasks[0], 1_000, 60) == Claim(1, "claimed")
    assert stores.deliveries.claim_delivery(tasks[1], 1_000, 60) == Claim(1, "sending"), "one lease"


def test_finishing_releases_the_lease_and_a_redrive_starts_the_attempts_again(stores: Stores) -> None:
    [task] = batch_of(1)
    assert stores.deliveries.claim_delivery(task, 1_000, 60) == Claim(1, "claimed")
    stores.deliveries.finish_delivery(task, AttemptStatus.RETRYING, "interrupted; retrying")
    assert stores.deliveries.claim_delivery(task, 1_001, 60) == Claim(2, "claimed"), "no lease left"
    stores.deliveries.settle([Settlement(task, AttemptStatus.FAILED, 2, error="HTTP 500")])
    assert stores.deliveries.reset_delivery(task) is True
    assert stores.deliveries.claim_delivery(task, 1_002, 60) == Claim(1, "claimed")


def test_settled_attempts_are_listed_newest_first_by_page(stores: Stores) -> None:
    tasks = batch_of(1, event_id="ev-1") + batch_of(1, event_id="ev-2") + batch_of(2, event_id="ev-1")
    attempts = [
        Attempt(
            seq=seq,
            event_id=f"ev-{seq}",
            event_type="deployment",
            attempt=1,
            status=AttemptStatus.RETRYING,
            http_status=503,
            duration_ms=12,
            error="HTTP 503",
            at=MOMENT + timedelta(seconds=seq),
        )
        for seq in range(1, 6)
    ]
    stores.deliveries.settle(
        [
            Settlement(tasks[0], AttemptStatus.RETRYING, 1, http_status=503, log=attempts[0]),
            Settlement(tasks[1], AttemptStatus.RETRYING, 1, log=attempts[1]),
            Settlement(tasks[2], AttemptStatus.SKIPPED, 1),
        ]
    )
    for attempt in attempts[2:]:
        stores.deliveries.log_attempt(ACME, 1, attempt)
    first = stores.deliveries.list_attempts(ACME, 1, 5, 1, 2)
    assert (first.attempts, first.total) == (attempts[4:2:-1], 5)
    assert stores.deliveries.list_attempts(ACME, 1, 5, 3, 2).attempts == [attempts[0]]
    assert stores.deliveries.list_attempts(ACME, 1, 5, 4, 2).attempts == []
    assert stores.deliveries.list_attempts(ACME, 2, 0, 1, 10).attempts == []
    assert claim_batch(stores, tasks, now=5_000) == [Claim(2, "claimed")] * 3, "settling released the leases"


def test_an_event_is_read_with_its_matched_handlers_and_every_delivery_record(stores: Stores) -> None:
    stores.deliveries.put_event(event(), EXPIRES)
    stores.deliveries.put_event(event("ev-2"), EXPIRES)
    stores.deliveries.mark_fanned_out(ACME, "ev-1", [1, 2, 3])
    first, second = batch_of(1, 2)
    retry_at = MOMENT + timedelta(seconds=300)
    log = Attempt(
        seq=1, event_id="ev-1", event_type="deployment", attempt=1, status=AttemptStatus.RETRYING, at=MOMENT
    )
    stores.deliveries.settle(
        [
            Settlement(first, AttemptStatus.DELIVERED, 1, http_status=200, log=log),
            Settlement(
                second, AttemptStatus.RETRYING, 2, http_status=503, error="HTTP 503", next_attempt_at=retry_at
            ),
        ]
    )
    stores.deliveries.settle([Settlement(batch_of(5, event_id="ev-2")[0], AttemptStatus.DELIVERED, 1)])

    found = stores.deliveries.event_deliveries(ACME, "ev-1")
    assert found is not None
    assert (found.event, found.matched) == (event(), (1, 2, 3))
    assert found.deliveries == (
        DeliveryState(1, "delivered", 1, http_status=200, last_attempt_at=MOMENT),
        DeliveryState(2, "retrying", 2, http_status=503, error="HTTP 503", next_attempt_at=retry_at),
    )
    assert found.handler_ids() == [1, 2, 3]
    assert stores.deliveries.event_deliveries("globex", "ev-1") is None
    assert stores.deliveries.event_deliveries(ACME, "ev-missing") is None


def test_a_queued_fan_out_keeps_each_chunk_of_matched_handlers_once(stores: Stores) -> None:
    stores.deliveries.put_event(event(), EXPIRES)
    stores.deliveries.record_matched_chunk(ACME, "ev-1", "", [1, 2], now=1_000)
    stores.deliveries.record_matched_chunk(ACME, "ev-1", "*#webhook#000000000002", [7], now=1_000)
    stores.deliveries.record_matched_chunk(ACME, "ev-1", "", [1, 2], now=2_000)  # the chunk, retried
    found = stores.deliveries.event_deliveries(ACME, "ev-1")
    assert found is not None
    assert (sorted(found.matched), found.deliveries) == ([1, 2, 7], ())


def test_an_accounts_hours_add_up_and_are_read_from_an_hour_on(stores: Stores) -> None:
    first, second = MOMENT.replace(minute=0, second=0, microsecond=0), MOMENT + timedelta(hours=1)
    second = second.replace(minute=0, second=0, microsecond=0)
    stores.deliveries.count_hours(ACME, [HourTally(first, delivered=2, sent_ms=30)])
    stores.deliveries.count_hours(ACME, [HourTally(first, failed=1, skipped=1, sent_ms=10)])
    stores.deliveries.count_hours(ACME, [HourTally(second, retrying=3, sent_ms=9)])
    stores.deliveries.count_hours("globex", [HourTally(first, delivered=5)])
    assert stores.deliveries.account_hours(ACME, first) == [
        HourTally(first, delivered=2, failed=1, skipped=1, sent_ms=40),
        HourTally(second, retrying=3, sent_ms=9),
    ]
    assert stores.deliveries.account_hours(ACME, MOMENT + timedelta(minutes=59)) == [
        HourTally(second, retrying=3, sent_ms=9)
    ]


def test_a_replay_starts_a_new_generation_that_supersedes_older_messages(stores: Stores) -> None:
    [original] = batch_of(1)
    assert stores.deliveries.claim_delivery(original, 1_000, 60) == Claim(1, "claimed")
    stores.deliveries.settle([Settlement(original, AttemptStatus.DELIVERED, 1, http_status=200)])

    generation = stores.deliveries.requeue_delivery(ACME, "ev-1", 1, now=2_000, only_failed=False)
    assert generation == 1
    replay = original.model_copy(update={"generation": generation})
    assert stores.deliveries.claim_delivery(original, 2_000, 60) == Claim(0, "superseded")
    assert claim_batch(stores, [original], now=2_000) == [Claim(0, "superseded")]
    assert stores.deliveries.reset_delivery(original) is False, "a redriven old message sends nothing"
    assert claim_batch(stores, [replay], now=2_000) == [Claim(1, "claimed")]
    assert stores.deliveries.requeue_delivery(ACME, "ev-1", 1, now=2_030, only_failed=False) is None, (
        "not while an attempt holds the lease"
    )
    stores.deliveries.settle([Settlement(replay, AttemptStatus.DELIVERED, 1, http_status=200)])
    assert stores.deliveries.claim_delivery(replay, 3_000, 60) == Claim(1, "delivered")
    assert stores.deliveries.requeue_delivery(ACME, "ev-1", 1, now=3_000, only_failed=False) == 2


def test_a_replay_of_a_delivery_never_attempted_creates_its_record(stores: Stores) -> None:
    assert stores.deliveries.requeue_delivery(ACME, "ev-1", 4, now=1_000, only_failed=False) == 1
    [original] = batch_of(4)
    assert stores.deliveries.claim_delivery(original, 1_000, 60) == Claim(0, "superseded")
    replay = original.model_copy(update={"generation": 1})
    assert stores.deliveries.claim_delivery(replay, 1_000, 60) == Claim(1, "claimed")


def test_a_recover_requeues_only_a_failed_delivery_once(stores: Stores) -> None:
    failed, delivered = batch_of(1, 2)
    stores.deliveries.settle(
        [
            Settlement(failed, AttemptStatus.FAILED, 8, error="HTTP 500", dead_lettered=True),
            Settlement(delivered, AttemptStatus.DELIVERED, 1),
        ]
    )
    assert stores.deliveries.requeue_delivery(ACME, "ev-1", 2, now=1_000, only_failed=True) is None
    assert stores.deliveries.requeue_delivery(ACME, "ev-1", 1, now=1_000, only_failed=True) == 1
    assert stores.deliveries.requeue_delivery(ACME, "ev-1", 1, now=1_001, only_failed=True) is None, (
        "a second recover finds it pending"
    )
    found = stores.deliveries.event_deliveries(ACME, "ev-1")
    assert found is None, "no event stored: the records alone are not an event"
    stores.deliveries.put_event(event(), EXPIRES)
    found = stores.deliveries.event_deliveries(ACME, "ev-1")
    assert found is not None
    assert found.deliveries[0] == DeliveryState(1, "pending", 0, replays=1)


def _logged(seq: int, status: AttemptStatus, event_id: str, at: datetime) -> Attempt:
    return Attempt(seq=seq, event_id=event_id, event_type="deployment", attempt=1, status=status, at=at)


def test_the_attempt_log_is_filtered_by_status_and_event(stores: Stores) -> None:
    statuses = [AttemptStatus.FAILED, AttemptStatus.DELIVERED, AttemptStatus.FAILED, AttemptStatus.RETRYING]
    attempts = [
        _logged(seq, status, f"ev-{seq % 2}", MOMENT + timedelta(seconds=seq))
        for seq, status in enumerate(statuses * 3, start=1)
    ]
    for attempt in attempts:
        stores.deliveries.log_attempt(ACME, 1, attempt)
    failed = [a for a in reversed(attempts) if a.status == AttemptStatus.FAILED]
    page = stores.deliveries.list_attempts(ACME, 1, 12, 1, 2, status="failed")
    assert (page.attempts, page.total) == (failed[:2], 6)
    assert stores.deliveries.list_attempts(ACME, 1, 12, 3, 2, status="failed").attempts == failed[4:]
    assert stores.deliveries.list_attempts(ACME, 1, 12, 4, 2, status="failed").attempts == []
    of_event = stores.deliveries.list_attempts(ACME, 1, 12, 1, 25, event_id="ev-0", status="retrying")
    assert (of_event.attempts, of_event.total) == ([attempts[11], attempts[7], attempts[3]], 3)
    assert stores.deliveries.list_attempts(ACME, 2, 0, 1, 25, status="failed").total == 0


def test_attempts_since_a_moment_walk_the_log_back_until_it(stores: Stores) -> None:
    attempts = [
        _logged(seq, AttemptStatus.FAILED, f"ev-{seq}", MOMENT + timedelta(minutes=seq))
        for seq in range(1, 251)
    ]
    for attempt in attempts:
        stores.deliveries.log_attempt(ACME, 1, attempt)
    since = MOMENT + timedelta(minutes=120)
    assert stores.deliveries.attempts_since(ACME, 1, 250, since) == attempts[:118:-1]
    assert stores.deliveries.attempts_since(ACME, 1, 250, MOMENT) == attempts[::-1]
    assert stores.deliveries.attempts_since(ACME, 1, 250, MOMENT + timedelta(days=1)) == []
    assert stores.deliveries.attempts_since(ACME, 2, 0, MOMENT) == []
