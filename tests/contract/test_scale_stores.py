"""The stores behind fan-out off the request path and per-destination send rates, on every
backend: paging an event's handlers in chunks, a fan-out's progress held by one job at a
time, and destinations' send slots."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.pagination import make_handlers
from chalicelib.models.events import Event
from chalicelib.storage.fan_outs import FanOutProgress
from chalicelib.storage.stores import Stores

ACME = "acme"
MOMENT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
EXPIRES = 2_000_000_000
START = FanOutProgress(None, 0)


def with_scoped_handlers(stores: Stores) -> None:
    """Ids 1-3 account-wide, 4-6 of my-app, 7-8 of other-app."""
    for handler in make_handlers(ACME, 8):
        app = "my-app" if 4 <= handler.id <= 6 else "other-app" if handler.id >= 7 else None
        stores.handlers.create_handler(handler.model_copy(update={"app": app}))


def test_an_events_handlers_are_paged_in_chunks_account_wide_first_then_its_apps(stores: Stores) -> None:
    with_scoped_handlers(stores)
    chunks, after = [], None
    while True:
        chunk = stores.handlers.scope_chunk(ACME, "my-app", after, 2)
        chunks.append(chunk.ids)
        if chunk.after is None:
            break
        after = chunk.after
    assert chunks == [[1, 2], [3, 4], [5, 6], []]
    assert stores.handlers.scope_chunk(ACME, None, None, 10).ids == [1, 2, 3]
    assert stores.handlers.scope_chunk(ACME, "my-app", None, 10).after is None
    assert [h.id for h in stores.handlers.handlers_by_id(ACME, [6, 2, 99])] == [2, 6]


def started_event(stores: Stores) -> None:
    stores.deliveries.put_event(Event(account=ACME, id="ev", type="deployment", created_at=MOMENT), EXPIRES)


def test_one_job_at_a_time_advances_a_fan_out_and_a_redelivered_job_resumes_where_it_was(
    stores: Stores,
) -> None:
    started_event(stores)
    assert stores.fan_outs.take_fan_out(ACME, "ev", "job-1", None) == START
    assert stores.fan_outs.take_fan_out(ACME, "ev", "job-2", None) == START  # a copy takes it over
    assert not stores.fan_outs.advance_fan_out(ACME, "ev", "job-1", START, FanOutProgress("k1", 2))
    assert stores.fan_outs.advance_fan_out(ACME, "ev", "job-2", START, FanOutProgress("k1", 2))
    assert stores.fan_outs.take_fan_out(ACME, "ev", "job-1", None) is None  # moved on without it
    assert stores.fan_outs.take_fan_out(ACME, "ev", "job-2", None) == FanOutProgress("k1", 2)  # redelivered
    assert stores.fan_outs.take_fan_out(ACME, "ev", "job-3", "k1") == FanOutProgress("k1", 2)  # handed over
    done = FanOutProgress(None, 5)
    assert stores.fan_outs.advance_fan_out(ACME, "ev", "job-3", FanOutProgress("k1", 2), done)
    stored = stores.deliveries.put_event(
        Event(account=ACME, id="ev", type="deployment", created_at=MOMENT), 1
    )
    assert stored is not None
    assert (stored["fanned_out"], stored["matched"], stored["fan_out"]) == (True, 5, "queued")
    assert stores.fan_outs.take_fan_out(ACME, "ev", "job-3", None) is None
    assert stores.fan_outs.take_fan_out(ACME, "missing", "job-1", None) is None


def test_a_destination_hands_out_slots_an_interval_apart_after_its_burst(stores: Stores) -> None:
    now = 1_000_000
    slots = [stores.destinations.reserve_slot("d1", interval_ms=200, burst=3, now_ms=now) for _ in range(5)]
    assert slots == [now - 400, now - 200, now, now + 200, now + 400]
    other = stores.destinations.reserve_slot("d2", interval_ms=1000, burst=1, now_ms=now)
    assert other == now
    later = now + 60_000  # a quiet minute: the burst is back, never more
    assert stores.destinations.reserve_slot("d1", interval_ms=200, burst=3, now_ms=later) == later - 400


def test_a_hold_moves_every_later_slot_past_it_and_never_back(stores: Stores) -> None:
    now = 1_000_000
    stores.destinations.reserve_slot("d", interval_ms=1000, burst=1, now_ms=now)
    stores.destinations.hold("d", now + 30_000)
    stores.destinations.hold("d", now + 5_000)  # a shorter hold changes nothing
    assert stores.destinations.reserve_slot("d", interval_ms=1000, burst=1, now_ms=now) == now + 30_000
    assert stores.destinations.reserve_slot("d", interval_ms=1000, burst=1, now_ms=now) == now + 31_000
