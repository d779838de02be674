"""Deliveries: the SQS message of one event x handler, and the attempt log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class DeliveryTask(BaseModel):
    """The deliveries queue's message: ids only, never a secret or the event body."""

    model_config = ConfigDict(extra="ignore")

    account: str
    event_id: str
    handler_id: int


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    PERMANENT = "permanent"
    GONE = "gone"


class AttemptStatus(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"


class Attempt(BaseModel):
    """One delivery attempt as logged."""

    seq: int
    event_id: str
    event_type: str
    attempt: int
    status: AttemptStatus
    http_status: int | None = None
    duration_ms: int = 0
    error: str | None = None
    at: datetime

    def public(self) -> AttemptOut:
        return AttemptOut(
            id=self.seq,
            event_id=self.event_id,
            event_type=self.event_type,
            attempt=self.attempt,
            status=self.status,
            http_status=self.http_status,
            duration_ms=self.duration_ms,
            error=self.error,
            datetime=self.at.strftime(DATETIME_FORMAT),
        )


class AttemptOut(BaseModel):
    """One attempt in `GET /notification-handlers/{id}/deliveries`."""

    id: int
    event_id: str
    event_type: str
    attempt: int
    status: AttemptStatus
    http_status: int | None
    duration_ms: int
    error: str | None
    datetime: str


class TestOutcome(BaseModel):
    """The answer of a test notification."""

    ok: bool
    outcome: Outcome
    http_status: int | None
    error: str | None
    duration_ms: int


class Confirmation(BaseModel):
    id: int
    email: str
    confirmed: bool
