"""Rate limits kept in DynamoDB, so they hold across every Lambda instance.

A sliding window over two fixed one-minute windows (the estimate Cloudflare uses):
count = this minute's hits + last minute's hits x the share of last minute still inside
the sliding minute. A request is admitted if the count, itself included, stays within the
limit; one UpdateItem both counts the hit and returns both windows, and a refused request
takes its hit back, so hammering never pushes the wait further. A client may spend its whole
minute's allowance in one burst. The estimate is computed with exact fractions, so what
Retry-After and X-RateLimit-Remaining promise is what the next requests get.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

from chalicelib.errors import HeraldError
from chalicelib.settings import get_settings
from chalicelib.storage.accounts import RateStore

WINDOW_SECONDS = 60


def clock() -> float:
    """The time limits are counted in (a function, so tests can move it)."""
    return time.time()


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


class RateLimited(HeraldError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int, quota: Quota | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.quota = quota

    def headers(self) -> dict[str, str]:
        quota = self.quota.headers() if self.quota else {}
        return {**quota, "Retry-After": str(self.retry_after)}


@dataclass(frozen=True)
class Hits:
    """A subject's admitted requests in minute `window` and in the minute before."""

    window: int
    current: int
    previous: int

    def at(self, moment: float) -> Hits:
        """The same hits as seen from the minute of a later `moment`, with none since."""
        window = int(moment // WINDOW_SECONDS)
        if window == self.window:
            return self
        return Hits(window, 0, self.current if window == self.window + 1 else 0)

    def estimate(self, moment: float) -> Fraction:
        hits = self.at(moment)
        left = (hits.window + 1) * WINDOW_SECONDS - Fraction(moment)
        return hits.current + hits.previous * left / WINDOW_SECONDS

    def admits(self, moment: float, limit: int) -> bool:
        return self.estimate(moment) + 1 <= limit

    def retry_after(self, moment: float, limit: int) -> int:
        """The fewest whole seconds after which one more request is admitted. Without new
        hits the estimate only falls, so the first wait that admits is the answer; it is at
        most two minutes (then no hit of now weighs any more)."""
        return next(wait for wait in range(1, 2 * WINDOW_SECONDS + 1) if self.admits(moment + wait, limit))

    def reset_seconds(self, moment: float) -> int:
        """Seconds until these hits weigh nothing: the whole allowance is back."""
        if self.current:
            return math.ceil((self.window + 2) * WINDOW_SECONDS - Fraction(moment))
        if self.previous:
            return math.ceil((self.window + 1) * WINDOW_SECONDS - Fraction(moment))
        return 0


def check(rates: RateStore, subject: str, limit: int, now: float | None = None) -> Quota:
    """Count one request of `subject`; raise RateLimited past `limit` a minute (0 = no limit)."""
    if limit <= 0:
        return Quota(0, 0, 0)
    moment = clock() if now is None else now
    window = int(moment // WINDOW_SECONDS)
    current, previous = rates.hit_rate_window(subject, window, expires_at=(window + 2) * WINDOW_SECONDS)
    before = Hits(window, current - 1, previous)
    if not before.admits(moment, limit):
        rates.take_back_hit(subject, window)
        wait = before.retry_after(moment, limit)
        raise RateLimited(
            f"rate limit of {limit} requests per minute exceeded; retry in {wait} s",
            wait,
            Quota(limit, 0, before.reset_seconds(moment)),
        )
    after = Hits(window, current, previous)
    return Quota(limit, math.floor(limit - after.estimate(moment)), after.reset_seconds(moment))


def key_limit() -> int:
    return get_settings().rate_limit_per_minute


def portal_limit() -> int:
    return get_settings().portal_rate_limit_per_minute


def public_limit() -> int:
    return get_settings().public_rate_limit_per_minute


def auth_failure_limit() -> int:
    """Key lookups per minute that may find no live key, per source address (0 = no limit)."""
    return get_settings().auth_failure_limit_per_minute


def _failures(address: str) -> str:
    return "auth-failures:" + address


def refuse_failing_address(rates: RateStore, address: str) -> None:
    """Raise RateLimited if `address` has spent its failed authentications, counting nothing:
    called before a key is read, so a locked-out address costs no key lookups."""
    limit = auth_failure_limit()
    if limit <= 0:
        return
    moment = clock()
    window = int(moment // WINDOW_SECONDS)
    hits = Hits(window, *rates.rate_window(_failures(address), window))
    if not hits.admits(moment, limit):
        wait = hits.retry_after(moment, limit)
        raise RateLimited(f"too many failed authentications from this address; retry in {wait} s", wait)


def count_failure(rates: RateStore, address: str) -> None:
    """Count a key lookup of `address` that found no live key."""
    if auth_failure_limit() <= 0:
        return
    window = int(clock() // WINDOW_SECONDS)
    rates.hit_rate_window(_failures(address), window, expires_at=(window + 2) * WINDOW_SECONDS)
