"""Rate limits kept in DynamoDB, so they hold across every Lambda instance.

A sliding window over two fixed one-minute windows (the estimate Cloudflare uses):
count = this minute's hits + last minute's hits x the share of last minute still inside
the sliding minute. One UpdateItem per request both counts the hit and returns both
windows. A client may spend its whole minute's allowance in one burst.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from chalicelib.errors import HeraldError
from chalicelib.settings import get_settings
from chalicelib.storage.dynamo import Store

WINDOW_SECONDS = 60


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

    def __init__(self, quota: Quota, retry_after: int) -> None:
        super().__init__(
            f"rate limit of {quota.limit} requests per minute exceeded; retry in {retry_after} s"
        )
        self.quota = quota
        self.retry_after = retry_after


def check(store: Store, subject: str, limit: int, now: float | None = None) -> Quota:
    """Count one request of `subject`; raise RateLimited past `limit` a minute (0 = no limit)."""
    if limit <= 0:
        return Quota(0, 0, 0)
    moment = time.time() if now is None else now
    window = int(moment // WINDOW_SECONDS)
    current, previous = store.hit_rate_window(subject, window, expires_at=(window + 2) * WINDOW_SECONDS)
    elapsed = moment - window * WINDOW_SECONDS
    estimate = current + previous * (WINDOW_SECONDS - elapsed) / WINDOW_SECONDS
    reset = math.ceil(WINDOW_SECONDS - elapsed)
    quota = Quota(limit, max(0, math.floor(limit - estimate)), reset)
    if estimate > limit:
        # Wait until the previous window's weight has fallen enough, at most a window.
        needed = (estimate - limit) / max(previous, 1) * WINDOW_SECONDS if previous else reset
        raise RateLimited(quota, max(1, min(WINDOW_SECONDS, math.ceil(needed))))
    return quota


def key_limit() -> int:
    return get_settings().rate_limit_per_minute


def public_limit() -> int:
    return get_settings().public_rate_limit_per_minute
