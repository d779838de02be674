"""The attempt log entry, shared by the worker and the test-send (which must not import the worker)."""

from __future__ import annotations

from datetime import datetime

from chalicelib.models.deliveries import Attempt, AttemptStatus, SendResult
from chalicelib.models.events import Event


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
