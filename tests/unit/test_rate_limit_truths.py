"""What a rate-limited client is told (Retry-After, X-RateLimit-*) is what it gets: the
limiter's arithmetic on the in-memory rate store, whose semantics the contract suite holds to
moto and DynamoDB Local."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from chalicelib import ratelimit
from chalicelib.storage.accounts import RateStore
from chalicelib.storage.stores import Stores
from tests.fakes.stores import memory_stores


@pytest.fixture
def stores() -> Stores:
    return memory_stores()


MINUTE = 1_700_000_040.0  # a multiple of 60: the start of a minute, in this century


def admitted(rates: RateStore, subject: str, limit: int, at: float) -> bool:
    try:
        ratelimit.check(rates, subject, limit, now=at)
    except ratelimit.RateLimited:
        return False
    return True


def refusal(rates: RateStore, subject: str, limit: int, at: float) -> ratelimit.RateLimited:
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.check(rates, subject, limit, now=at)
    return refused.value


@pytest.mark.parametrize(
    ("limit", "hits_at", "refused_at", "wait"),
    [
        # 10 hits this minute: they weigh 10 x (60 - s)/60 next minute, <= 9 from its 6th second.
        (10, 30, 30, 36),
        # Last minute's 10 hits weigh 10 x 59/60 at 1 s into this one; <= 9 at 6 s.
        (10, 30, 61, 5),
        # A limit of 1 spent: nothing may weigh, so not before the minute after next.
        (1, 0, 0, 120),
    ],
)
def test_retry_after_is_the_exact_wait_and_hammering_does_not_extend_it(
    stores: Stores, limit: int, hits_at: float, refused_at: float, wait: int
) -> None:
    for _ in range(limit):
        ratelimit.check(stores.rates, "s", limit, now=MINUTE + hits_at)
    first = refusal(stores.rates, "s", limit, MINUTE + refused_at)
    assert first.retry_after == wait
    assert first.quota is not None and first.quota.remaining == 0
    for second in range(wait):  # a client that keeps hammering until told otherwise
        again = refusal(stores.rates, "s", limit, MINUTE + refused_at + second)
        assert second + again.retry_after == wait, "every refusal names the same moment"
    assert admitted(stores.rates, "s", limit, MINUTE + refused_at + wait)


def test_remaining_counts_what_is_left_and_reset_when_all_of_it_is_back(stores: Stores) -> None:
    quotas = [ratelimit.check(stores.rates, "s", 3, now=MINUTE + 10) for _ in range(3)]
    assert [q.remaining for q in quotas] == [2, 1, 0]
    assert {q.reset_seconds for q in quotas} == {110}, "this minute's hits weigh until the next one ends"
    assert not admitted(stores.rates, "s", 3, MINUTE + 10)
    assert ratelimit.check(stores.rates, "s", 3, now=MINUTE + 119).remaining == 1, "3 x 1/60 still weigh"
    assert ratelimit.check(stores.rates, "other", 3, now=MINUTE + 120).remaining == 2


# --- the same, for any limit, history and moment -------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, database=None)
limits = st.integers(min_value=1, max_value=8)
moments = st.floats(min_value=MINUTE, max_value=MINUTE + 120)
histories = st.lists(st.floats(min_value=0, max_value=75), max_size=12)  # gaps between requests


def replay(stores: Stores, subject: str, limit: int, start: float, gaps: list[float]) -> float:
    """Send a request after each gap (admitted or not); the moment of the last one."""
    moment = start
    for gap in gaps:
        moment += gap
        admitted(stores.rates, subject, limit, moment)
    return moment


@PROPERTY
@given(limit=limits, start=moments, gaps=histories, hammering=st.lists(st.floats(0, 1), max_size=3))
def test_retry_after_always_tells_the_truth(
    limit: int, start: float, gaps: list[float], hammering: list[float]
) -> None:
    stores, subject = memory_stores(), str(uuid.uuid4())
    moment = replay(stores, subject, limit, start, gaps)
    while admitted(stores.rates, subject, limit, moment):  # spend what is left
        pass
    wait = refusal(stores.rates, subject, limit, moment).retry_after
    for share in sorted(hammering):  # refused before the wait is over, and not counted
        assert not admitted(stores.rates, subject, limit, moment + share * (wait - 1))
    if wait > 1:
        assert not admitted(stores.rates, subject, limit, moment + wait - 1), "not the smallest wait"
    assert admitted(stores.rates, subject, limit, moment + wait)


@PROPERTY
@given(limit=limits, start=moments, gaps=histories)
def test_remaining_and_reset_always_tell_the_truth(limit: int, start: float, gaps: list[float]) -> None:
    stores, subject = memory_stores(), str(uuid.uuid4())
    moment = replay(stores, subject, limit, start, gaps) + 1
    try:
        quota = ratelimit.check(stores.rates, subject, limit, now=moment)
    except ratelimit.RateLimited:
        reject()  # nothing was promised
    for _ in range(quota.remaining):
        assert admitted(stores.rates, subject, limit, moment)
    assert not admitted(stores.rates, subject, limit, moment), "more left than Remaining said"
    back = ratelimit.check(stores.rates, subject, limit, now=moment + quota.reset_seconds)
    assert back.remaining == limit - 1, "the whole allowance is back after Reset"


# --- leases: a container counts hits in chunks, the containers together within the limit -------------


class Container:
    """One Lambda container's view of the shared rate store: its leases are its own (they are
    held per store object), the hits it counts land in the shared store; counts its writes."""

    def __init__(self, shared: Stores) -> None:
        self.shared = shared.rates
        self.writes = 0

    def add_hits(self, subject: str, window: int, count: int, expires_at: int) -> tuple[int, int]:
        self.writes += 1
        return self.shared.add_hits(subject, window, count, expires_at)

    def take_back_hits(self, subject: str, window: int, count: int) -> None:
        self.writes += 1
        self.shared.take_back_hits(subject, window, count)

    def rate_window(self, subject: str, window: int) -> tuple[int, int]:
        return self.shared.rate_window(subject, window)


def test_a_busy_key_costs_a_write_per_lease_not_per_request(stores: Stores) -> None:
    container = Container(stores)
    for _ in range(1000):
        ratelimit.check(container, "key:busy", 1_000_000, now=MINUTE + 1)
    assert container.writes <= 10, "leases of 1, 2, 4, ... 512 hits"
    assert stores.rates.rate_window("key:busy", int(MINUTE // 60)) == (1023, 0), (
        "the last lease's rest is held"
    )


def test_every_containers_leases_together_stay_within_the_limit_and_retry_after_holds(stores: Stores) -> None:
    containers = [Container(stores) for _ in range(5)]
    admitted_count = sum(admitted(c, "key:k", 60, MINUTE + 5) for _ in range(40) for c in containers)
    this_minute, _ = stores.rates.rate_window("key:k", int(MINUTE // 60))
    assert admitted_count <= this_minute <= 60, "hits leased but unspent weigh like spent ones"
    assert admitted_count >= 60 - 5 * (60 // ratelimit.LEASE_SHARE), "at most a chunk stranded per container"
    wait = refusal(containers[0], "key:k", 60, MINUTE + 5).retry_after
    assert not admitted(containers[1], "key:k", 60, MINUTE + 5 + wait - 1)
    assert admitted(containers[2], "key:k", 60, MINUTE + 5 + wait), "another container admits when told"
