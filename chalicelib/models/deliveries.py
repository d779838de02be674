"""Deliveries: the SQS message of one event x handler, and the attempt log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.models.api import DATETIME_FORMAT
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler


class DeliveryTask(BaseModel):
    """The deliveries queue's message: ids only, never a secret or the event body."""

    model_config = ConfigDict(extra="ignore")

    account: str
    event_id: str
    handler_id: int
    not_before: int | None = None
    """The send slot (epoch ms) this delivery reserved at its destination before it was
    held back to wait for it: it goes then without taking another."""

    @property
    def key(self) -> tuple[str, str, int]:
        """Which event x handler this is (its delivery record's identity)."""
        return self.account, self.event_id, self.handler_id


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


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: the attempt's number and "claimed", or the state that
    refused the claim ("delivered", "sending") with the attempts so far."""

    attempt: int
    state: str


@dataclass(frozen=True)
class Prefetched:
    """A batch's handlers (by account and id), events (by account and id) and delivery
    records (by task key), read together.

    The unread sets hold what the read could not answer for (DynamoDB left it
    unprocessed after every retry): missing from the dicts without being known to be
    missing, so a reader must not take them for deleted or expired."""

    handlers: dict[tuple[str, int], Handler] = field(default_factory=dict)
    events: dict[tuple[str, str], Event] = field(default_factory=dict)
    deliveries: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    unread_handlers: frozenset[tuple[str, int]] = frozenset()
    unread_events: frozenset[tuple[str, str]] = frozenset()
    unread_deliveries: frozenset[tuple[str, str, int]] = frozenset()

    def read_handler(self, task: DeliveryTask) -> bool:
        """Whether the read answered for the task's handler (found or not)."""
        return (task.account, task.handler_id) not in self.unread_handlers

    def read_event(self, task: DeliveryTask) -> bool:
        """Whether the read answered for the task's event (found or not)."""
        return (task.account, task.event_id) not in self.unread_events

    def unread(self) -> int:
        """How many keys the read could not answer for."""
        return len(self.unread_handlers) + len(self.unread_events) + len(self.unread_deliveries)


@dataclass(frozen=True)
class Noted:
    """An attempt's number in its handler's log, and since when the handler has been failing."""

    seq: int
    failing_since: datetime | None


@dataclass(frozen=True)
class Settlement:
    """Where one event x handler stands after an attempt, and the attempt's log entry
    (none when nothing was sent)."""

    task: DeliveryTask
    status: AttemptStatus
    attempts: int
    http_status: int | None = None
    error: str | None = None
    log: Attempt | None = None
