"""When to try again: the channel's schedule with jitter, stretched by what the receiver asked."""

from __future__ import annotations

import math
import random

MAX_DELAY_SECONDS = 12 * 3600 - 60
"""SQS caps a message's visibility timeout at 12 hours."""


def next_delay(
    schedule: tuple[int, ...],
    failed_attempt: int,
    retry_after: float | None,
    rng: random.Random | None = None,
) -> int | None:
    """Seconds to wait after attempt `failed_attempt` (1-based) failed, or None when it was the last.

    ±20 % jitter spreads retries of one outage; a Retry-After longer than the schedule wins."""
    if failed_attempt > len(schedule):
        return None
    base = schedule[failed_attempt - 1] * (rng or random).uniform(0.8, 1.2)
    return min(math.ceil(max(base, retry_after or 0.0)), MAX_DELAY_SECONDS)
