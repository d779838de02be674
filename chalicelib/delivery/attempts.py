"""The attempt log entry and the account's hourly counts, shared by the worker and the
test-send (which must not import the worker)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from chalicelib.models.deliveries import Attempt, AttemptStatus, SendResult, tallies_of
from chalicelib.models.events import Event
from chalicelib.storage.stores import Stores

logger = logging.getLogger("herald.delivery")


def attempt_log(
    event: Event, result: SendResult, *, seq: int, attempt: int, status: AttemptStatus, now: datetime
) -> Attempt:
    """The log entry of one attempt, numbered `seq` in its handler's log."""
    return Attempt(
        seq=seq,
        event_id=event.id,
        event_type=event.type,
        attempt=attempt,
        status=status,
        http_status=result.http_status,
        duration_ms=result.duration_ms,
        error=result.error,
        at=now,
    )


def count_hours(stores: Stores, account_attempts: Sequence[tuple[str, Attempt]]) -> None:
    """Count recorded attempts in their accounts' hours (the account-wide chart). Best
    effort: a failure here costs the chart some attempts, never a delivery its record."""
    for account, tallies in tallies_of(account_attempts).items():
        try:
            stores.deliveries.count_hours(account, tallies)
        except Exception:
            logger.exception("counting %s's attempts for its chart failed", account)
