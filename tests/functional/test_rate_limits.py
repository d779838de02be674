"""Rate limits per API key and per source address, kept in DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import apikeys, clock, ratelimit
from chalicelib.storage.stores import get_stores


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


MINUTE = 1_700_000_040.0  # a multiple of 60: the start of a minute, in this century


def test_a_client_that_waits_what_it_was_told_gets_in(
    limited: None, api: Any, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [MINUTE + 45]
    monkeypatch.setattr(clock, "now", lambda: datetime.fromtimestamp(now[0], UTC))
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
