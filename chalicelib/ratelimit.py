"""Rate limits kept in DynamoDB, so they hold across every Lambda instance.

A sliding window over two fixed one-minute windows (the estimate Cloudflare uses):
count = this minute's hits + last minute's hits x the share of last minute still inside
the sliding minute. A request is admitted if the count, itself included, stays within the
limit. A client may spend its whole minute's allowance in one burst. The estimate is
computed with exact fractions, so what Retry-After and X-RateLimit-Remaining promise is
what the next requests get.

A container does not write a hit per request: it leases hits of the current minute in
chunks (one UpdateItem counts the whole chunk and returns both windows, and gives back at
once what the estimate does not admit) and spends them locally. The leased chunks of every
container together never exceed the limit. A container that spends its chunk leases twice
as many next time (up to a tenth of the limit); one whose minute ends with hits unspent
starts again from one, so a quiet key strands at most a chunk per container, and those
stranded hits weigh like spent ones. A refused request takes its hits back, so hammering
never pushes the wait further.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass
from fractions import Fraction

from chalicelib import clock
from chalicelib.errors import HeraldError
from chalicelib.settings import get_settings
from chalicelib.storage.accounts import RateStore

WINDOW_SECONDS = 60
LEASE_SHARE = 10
"""A lease takes at most limit / LEASE_SHARE hits: what one container can strand."""
MAX_HELD_SUBJECTS = 1000


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


@dataclass
class _Lease:
    """Hits of one subject this container has counted in the store and not spent yet."""

    limit: int
    hits: Hits
    """The subject's hits as the last lease left them, this container's unspent ones included."""
    unspent: int
    size: int
    """How many hits the last lease asked for."""

    def quota(self, moment: float) -> Quota:
        """Unspent hits are counted in `hits` but still the client's to spend."""
        remaining = math.floor(self.limit - self.hits.estimate(moment)) + self.unspent
        return Quota(self.limit, remaining, self.hits.reset_seconds(moment))


_leases: weakref.WeakKeyDictionary[RateStore, dict[str, _Lease]] = weakref.WeakKeyDictionary()
_leases_lock = threading.Lock()


def forget_leases() -> None:
    """Drop every unspent lease (tests start each store afresh)."""
    with _leases_lock:
        _leases.clear()


def _spend(rates: RateStore, subject: str, limit: int, window: int) -> _Lease | None:
    """Spend one leased hit of `window`, if this container holds one."""
    with _leases_lock:
        lease = _leases.setdefault(rates, {}).get(subject)
        if lease is None or lease.unspent == 0 or lease.hits.window != window or lease.limit != limit:
            return None
        lease.unspent -= 1
        return lease


def _next_size(rates: RateStore, subject: str, limit: int, window: int) -> int:
    """Twice the last lease if it was spent in its minute, else one."""
    with _leases_lock:
        last = _leases.setdefault(rates, {}).get(subject)
    ceiling = max(1, limit // LEASE_SHARE)
    if last is None or last.limit != limit or (last.hits.window != window and last.unspent):
        return 1
    return min(ceiling, 2 * last.size)


def check(rates: RateStore, subject: str, limit: int, now: float | None = None) -> Quota:
    """Count one request of `subject`; raise RateLimited past `limit` a minute (0 = no limit)."""
    if limit <= 0:
        return Quota(0, 0, 0)
    moment = clock.now().timestamp() if now is None else now
    window = int(moment // WINDOW_SECONDS)
    lease = _spend(rates, subject, limit, window)
    if lease is not None:
        return lease.quota(moment)
    size = _next_size(rates, subject, limit, window)
    current, previous = rates.add_hits(subject, window, size, expires_at=(window + 2) * WINDOW_SECONDS)
    before = Hits(window, current - size, previous)
    granted = max(0, min(size, math.floor(limit - before.estimate(moment))))
    if granted < size:
        rates.take_back_hits(subject, window, size - granted)
    if granted == 0:
        wait = before.retry_after(moment, limit)
        raise RateLimited(
            f"rate limit of {limit} requests per minute exceeded; retry in {wait} s",
            wait,
            Quota(limit, 0, before.reset_seconds(moment)),
        )
    lease = _Lease(limit, Hits(window, current - size + granted, previous), granted - 1, size)
    _keep(rates, subject, lease)
    return lease.quota(moment)


def _keep(rates: RateStore, subject: str, lease: _Lease) -> None:
    """Hold `lease` with any unspent hits a concurrent request of this container leased in
    the same minute; leases of past minutes are forgotten once many subjects are held."""
    with _leases_lock:
        held = _leases.setdefault(rates, {})
        other = held.get(subject)
        if other is not None and other.hits.window == lease.hits.window and other.limit == lease.limit:
            lease.unspent += other.unspent
        if len(held) > MAX_HELD_SUBJECTS:
            for stale in [name for name, old in held.items() if old.hits.window < lease.hits.window]:
                del held[stale]
        held[subject] = lease


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
    moment = clock.now().timestamp()
    window = int(moment // WINDOW_SECONDS)
    hits = Hits(window, *rates.rate_window(_failures(address), window))
    if not hits.admits(moment, limit):
        wait = hits.retry_after(moment, limit)
        raise RateLimited(f"too many failed authentications from this address; retry in {wait} s", wait)


def count_failure(rates: RateStore, address: str) -> None:
    """Count a key lookup of `address` that found no live key."""
    if auth_failure_limit() <= 0:
        return
    window = int(clock.now().timestamp() // WINDOW_SECONDS)
    rates.add_hits(_failures(address), window, 1, expires_at=(window + 2) * WINDOW_SECONDS)
