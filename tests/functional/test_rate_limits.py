"""Rate limits per API key and per source address, kept in DynamoDB."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from chalicelib import apikeys, ratelimit
from chalicelib.storage.stores import Stores, get_stores


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_RATE_LIMIT_PER_MINUTE", "5")
    monkeypatch.setenv("HERALD_PUBLIC_RATE_LIMIT_PER_MINUTE", "3")


def test_a_key_gets_its_burst_then_429_with_retry_after(
    limited: None, api: Any, auth: dict[str, str]
) -> None:
    answers = [api.http.get("/notification-handlers", headers=auth) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "5" for a in answers)
    refused = answers[-1]
    # A full burst weighs into the next minute too, so the wait may pass 60 s (exact waits below).
    assert 1 <= int(refused.headers["Retry-After"]) <= 2 * ratelimit.WINDOW_SECONDS
    assert refused.json_body["errors"][0]["status"] == 429
    assert "5 requests per minute" in refused.json_body["errors"][0]["detail"]


def test_each_key_has_its_own_allowance(limited: None, api: Any, auth: dict[str, str]) -> None:
    for _ in range(5):
        api.http.get("/notification-handlers", headers=auth)
    assert api.http.get("/notification-handlers", headers=auth).status_code == 429
    other, _ = apikeys.create_key(get_stores(), "acme")
    assert (
        api.http.get("/notification-handlers", headers={"Authorization": f"Bearer {other}"}).status_code
        == 200
    )


def test_public_catalog_routes_are_limited_per_address(limited: None, api: Any) -> None:
    codes = [api.http.get("/v1/event_types").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_last_minutes_hits_still_count_early_in_the_next_minute(moto_aws: None) -> None:
    stores = get_stores()
    start = 1_000_020.0  # 0 s into a minute (1_000_020 is a multiple of 60)
    for _ in range(10):
        ratelimit.check(stores.rates, "s", 10, now=start + 30)
    with pytest.raises(ratelimit.RateLimited):
        ratelimit.check(stores.rates, "s", 10, now=start + 61)  # 10 x 59/60 of last minute + 1 > 10
    quota = ratelimit.check(stores.rates, "s", 10, now=start + 119)  # last minute nearly out of the window
    assert quota.remaining >= 0


def test_a_zero_limit_switches_limiting_off(moto_aws: None) -> None:
    stores = get_stores()
    for _ in range(3):
        assert ratelimit.check(stores.rates, "free", 0) == ratelimit.Quota(0, 0, 0)


# --- Retry-After, X-RateLimit-*: what a client is told is what it gets --------------------------------

MINUTE = 1_700_000_040.0  # a multiple of 60: the start of a minute, in this century


def admitted(stores: Stores, subject: str, limit: int, at: float) -> bool:
    try:
        ratelimit.check(stores.rates, subject, limit, now=at)
    except ratelimit.RateLimited:
        return False
    return True


def refusal(stores: Stores, subject: str, limit: int, at: float) -> ratelimit.RateLimited:
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.check(stores.rates, subject, limit, now=at)
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
    first = refusal(stores, "s", limit, MINUTE + refused_at)
    assert first.retry_after == wait
    assert first.quota is not None and first.quota.remaining == 0
    for second in range(wait):  # a client that keeps hammering until told otherwise
        again = refusal(stores, "s", limit, MINUTE + refused_at + second)
        assert second + again.retry_after == wait, "every refusal names the same moment"
    assert admitted(stores, "s", limit, MINUTE + refused_at + wait)


def test_remaining_counts_what_is_left_and_reset_when_all_of_it_is_back(stores: Stores) -> None:
    quotas = [ratelimit.check(stores.rates, "s", 3, now=MINUTE + 10) for _ in range(3)]
    assert [q.remaining for q in quotas] == [2, 1, 0]
    assert {q.reset_seconds for q in quotas} == {110}, "this minute's hits weigh until the next one ends"
    assert not admitted(stores, "s", 3, MINUTE + 10)
    assert ratelimit.check(stores.rates, "s", 3, now=MINUTE + 119).remaining == 1, "3 x 1/60 still weigh"
    assert ratelimit.check(stores.rates, "other", 3, now=MINUTE + 120).remaining == 2


def test_a_client_that_waits_what_it_was_told_gets_in(
    limited: None, api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [MINUTE + 45]
    monkeypatch.setattr(ratelimit, "clock", lambda: now[0])
    for _ in range(5):
        assert api.http.get("/notification-handlers", headers=auth).status_code == 200
    refused = api.http.get("/notification-handlers", headers=auth)
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Limit"] == "5"
    wait = int(refused.headers["Retry-After"])
    assert wait == 27  # 5 x (60 - s)/60 <= 4 from 12 s into the next minute
    told_at = now[0]
    while now[0] < told_at + wait - 1:
        now[0] += 1
        hammered = api.http.get("/notification-handlers", headers=auth)
        assert hammered.status_code == 429
        assert now[0] + int(hammered.headers["Retry-After"]) == told_at + wait
    now[0] = told_at + wait
    answer = api.http.get("/notification-handlers", headers=auth)
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Remaining"] == "0", "5 x 48/60 = 4 still weigh, with this one 5"


def test_a_counted_request_that_fails_still_reports_its_quota(
    limited: None, api: Any, auth: dict[str, str]
) -> None:
    missing = api.http.get("/notification-handlers/999", headers=auth)
    assert missing.status_code == 404
    assert missing.headers["X-RateLimit-Remaining"] == "4"
    assert "Retry-After" not in missing.headers


# --- the same, for any limit, history and moment -------------------------------------------------------

PROPERTY = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
limits = st.integers(min_value=1, max_value=8)
moments = st.floats(min_value=MINUTE, max_value=MINUTE + 120)
histories = st.lists(st.floats(min_value=0, max_value=75), max_size=12)  # gaps between requests


def replay(stores: Stores, subject: str, limit: int, start: float, gaps: list[float]) -> float:
    """Send a request after each gap (admitted or not); the moment of the last one."""
    moment = start
    for gap in gaps:
        moment += gap
        admitted(stores, subject, limit, moment)
    return moment


@PROPERTY
@given(limit=limits, start=moments, gaps=histories, hammering=st.lists(st.floats(0, 1), max_size=3))
def test_retry_after_always_tells_the_truth(
    moto_aws: None, limit: int, start: float, gaps: list[float], hammering: list[float]
) -> None:
    stores, subject = get_stores(), str(uuid.uuid4())
    moment = replay(stores, subject, limit, start, gaps)
    while admitted(stores, subject, limit, moment):  # spend what is left
        pass
    wait = refusal(stores, subject, limit, moment).retry_after
    for share in sorted(hammering):  # refused before the wait is over, and not counted
        assert not admitted(stores, subject, limit, moment + share * (wait - 1))
    if wait > 1:
        assert not admitted(stores, subject, limit, moment + wait - 1), "not the smallest wait"
    assert admitted(stores, subject, limit, moment + wait)


@PROPERTY
@given(limit=limits, start=moments, gaps=histories)
def test_remaining_and_reset_always_tell_the_truth(
    moto_aws: None, limit: int, start: float, gaps: list[float]
) -> None:
    stores, subject = get_stores(), str(uuid.uuid4())
    moment = replay(stores, subject, limit, start, gaps) + 1
    try:
        quota = ratelimit.check(stores.rates, subject, limit, now=moment)
    except ratelimit.RateLimited:
        reject()  # nothing was promised
    for _ in range(quota.remaining):
        assert admitted(stores, subject, limit, moment)
    assert not admitted(stores, subject, limit, moment), "more left than Remaining said"
    back = ratelimit.check(stores.rates, subject, limit, now=moment + quota.reset_seconds)
    assert back.remaining == limit - 1, "the whole allowance is back after Reset"
