"""What one delivery attempt tells the operators and the account: its log line (which
carries its metrics) and the operational events it raises (a delivery that exhausted its
retries, a handler that recovered). Disabling a handler raises its own, in the worker.
A published event's line carries the EventsPublished and FanoutSize metrics.

The worker calls `attempted` once per attempt, after numbering it; `_safely` binds the SQS
message id for the lines of the whole delivery.
"""

from __future__ import annotations

import logging
from datetime import datetime

from chalicelib import operational
from chalicelib.delivery.fanout import Published
from chalicelib.metrics import emf
from chalicelib.models.deliveries import AttemptStatus, Noted, SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.storage.stores import Stores

logger = logging.getLogger("herald.delivery.attempt")
publish_logger = logging.getLogger("herald.events")


def published(account: str, event: Published) -> None:
    """One line per accepted event (a duplicate publish counts nothing: it sent nothing).
    A queued fan-out's size is counted when its job ends (`fanned_out`)."""
    fields = {
        "account": account,
        "event_id": event.event_id,
        "matched": event.matched,
        "fan_out": event.fan_out,
    }
    if not event.duplicate:
        counts: dict[str, tuple[float, str]] = {"EventsPublished": (1, "Count")}
        if event.matched is not None:
            counts["FanoutSize"] = (event.matched, "Count")
        fields |= emf(counts)
    publish_logger.info("event published", extra={"fields": {**fields, "duplicate": event.duplicate}})


def fanned_out(account: str, event_id: str, matched: int) -> None:
    """The end of a queued fan-out: its size, which its publish could not count yet."""
    fields = {"account": account, "event_id": event_id, "matched": matched}
    fields |= emf({"FanoutSize": (matched, "Count")})
    publish_logger.info("event fanned out", extra={"fields": fields})


def attempted(
    stores: Stores,
    handler: Handler,
    event: Event,
    result: SendResult,
    *,
    status: AttemptStatus,
    attempt: int,
    generation: int,
    noted: Noted | None,
    gave_up: bool,
    now: datetime,
) -> None:
    """Log the attempt (one line: who, what, how it went, its metrics), then raise the
    operational events it calls for."""
    fields = {
        "account": handler.account,
        "handler_id": handler.id,
        "channel": handler.type,
        "event_id": event.id,
        "event_type": event.type,
        "attempt": attempt,
        "outcome": status.value,
        "http_status": result.http_status,
        "duration_ms": result.duration_ms,
        "error": result.error,
        **emf(
            {
                "Deliveries": (1, "Count"),
                "AttemptLatency": (result.duration_ms, "Milliseconds"),
                "Retries": (1 if status == AttemptStatus.RETRYING else 0, "Count"),
            },
            {"Channel": handler.type, "Outcome": status.value},
            rollups=[["Outcome"]],
        ),
    }
    level = logging.WARNING if status == AttemptStatus.FAILED else logging.INFO
    logger.log(level, "delivery attempt", extra={"fields": fields})
    if gave_up:
        operational.delivery_exhausted(
            stores, handler, event, result, attempts=attempt, generation=generation, now=now
        )
    elif noted is not None and noted.recovered_from is not None:
        operational.handler_recovered(stores, handler, noted.recovered_from, now)
