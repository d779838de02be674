"""Deliveries: the SQS message of one event x handler, and the attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
    generation: int = 0
    """Which replay of the event x handler this message sends (0: the original). A message
    of an older generation than its delivery record's is superseded and sends nothing."""
    not_before: int | None = None
    """The send slot (epoch ms) this delivery reserved at its destination before it was
    held back to wait for it: it goes then without taking another."""
    due_at: int | None = None
    """When (epoch ms) its retry is due: a retry longer than a minute waits in the queue as
    a delayed message, re-sent in hops of at most SQS's 15 minutes, rather than in flight."""

    @property
    def key(self) -> tuple[str, str, int]:
        """Which event x handler this is (its delivery record's identity)."""
        return self.account, self.event_id, self.handler_id


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    PERMANENT = "permanent"
    GONE = "gone"


@dataclass(frozen=True)
class SendResult:
    """What one send came to, classified: the channels' and the mailer's answer."""

    outcome: Outcome
    http_status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    """Seconds the destination asked us to wait before sending it anything more."""
    duration_ms: int = 0


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


OUTCOME_COUNTS = ("delivered", "retrying", "failed", "skipped")
"""The attempt statuses an hour counts."""


@dataclass(frozen=True)
class HourTally:
    """An account's attempts in one hour, counted as their batches are recorded (the
    account-wide chart: no per-handler log to read)."""

    hour: datetime
    """The hour's start, UTC."""
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    sent_ms: int = 0
    """The summed duration of the attempts that were sent (not skipped)."""

    @property
    def sent(self) -> int:
        return self.delivered + self.retrying + self.failed


def tallies_of(account_attempts: Sequence[tuple[str, Attempt]]) -> dict[str, list[HourTally]]:
    """Per account, its attempts counted per hour."""
    counts: dict[tuple[str, datetime], dict[str, int]] = {}
    for account, attempt in account_attempts:
        hour = attempt.at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        tally = counts.setdefault((account, hour), dict.fromkeys(OUTCOME_COUNTS, 0) | {"sent_ms": 0})
        tally[attempt.status.value] += 1
        if attempt.status != AttemptStatus.SKIPPED:
            tally["sent_ms"] += attempt.duration_ms
    found: dict[str, list[HourTally]] = {}
    for (account, hour), tally in sorted(counts.items()):
        found.setdefault(account, []).append(HourTally(hour, **tally))
    return found


class HourOfAttempts(BaseModel):
    """One hour of a handler's attempts by outcome, and their latency."""

    hour: str
    """The hour's start, ISO 8601 UTC."""
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    median_ms: int | None = None
    max_ms: int | None = None
    mean_ms: int | None = None


class AccountStats(BaseModel):
    """`GET /v1/stats`: every handler of the account together, hour by hour."""

    hours: int
    attempts: int
    delivered: int
    success_rate: float | None
    """Delivered attempts over attempts that were sent (skipped ones are not), or None."""
    per_hour: list[HourOfAttempts]


class DeliveryStats(BaseModel):
    """`GET /notification-handlers/{id}/stats`: the handler's health over a window."""

    handler_id: int
    hours: int
    attempts: int
    delivered: int
    success_rate: float | None
    """Delivered attempts over attempts that were sent (skipped ones are not), or None."""
    last_attempt_at: str | None
    last_status: AttemptStatus | None
    per_hour: list[HourOfAttempts]


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


SUPERSEDED = "superseded"
"""The claim state of a message a replay has replaced: it is dropped, never sent."""


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: the attempt's number and "claimed", or the state that
    refused the claim ("delivered", "sending", "superseded") with the attempts so far."""

    attempt: int
    state: str

    @property
    def settled(self) -> bool:
        """Nothing is left to send for this message: delivered, or replaced by a replay."""
        return self.state in ("delivered", SUPERSEDED)


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


@dataclass(frozen=True)
class Noted:
    """An attempt's number in its handler's log, and since when the handler has been failing."""

    seq: int
    failing_since: datetime | None
    recovered_from: datetime | None = None
    """A delivered attempt that ended a run of failures: when that run began (read in the
    same atomic update, so only one attempt ends a run)."""


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
    next_attempt_at: datetime | None = None
    dead_lettered: bool = False


PENDING = "pending"
"""A delivery record's status while its message waits in the queue (a replay, a redrive)."""


@dataclass(frozen=True)
class DeliveryState:
    """Where one event x handler stands, as its delivery record says."""

    handler_id: int
    status: str
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    dead_lettered: bool = False
    replays: int = 0


@dataclass(frozen=True)
class EventDeliveries:
    """An event, the handlers it matched when published, and its delivery records."""

    event: Event
    matched: tuple[int, ...]
    deliveries: tuple[DeliveryState, ...]

    def handler_ids(self) -> list[int]:
        """Every handler the event went or goes to: matched, or given a record by a replay."""
        return sorted({*self.matched, *(d.handler_id for d in self.deliveries)})


def _moment(value: datetime | None) -> str | None:
    """Times of Herald's own events face: ISO 8601 in UTC to the millisecond, as webhooks carry."""
    return value.isoformat(timespec="milliseconds") if value is not None else None


class EventOut(BaseModel):
    """One event in `GET /v1/events`: the seed 001 event fields."""

    id: str
    type: str
    app: str | None
    app_id: str | None
    user: dict[str, Any] | None
    type_data: dict[str, Any]
    created_at: str

    @classmethod
    def of(cls, event: Event) -> EventOut:
        return cls(
            id=event.id,
            type=event.type,
            app=event.app,
            app_id=event.app_id,
            user=event.user,
            type_data=event.type_data,
            created_at=_moment(event.created_at) or "",
        )


class DeliveryOut(BaseModel):
    """Where the event stands with one handler: `pending` (queued, not attempted yet),
    `sending`, `retrying`, `delivered`, `failed` or `skipped`."""

    handler_id: int
    status: str
    attempts: int
    http_status: int | None
    error: str | None
    last_attempt_at: str | None
    next_attempt_at: str | None
    dead_lettered: bool
    replays: int

    @classmethod
    def of(cls, state: DeliveryState) -> DeliveryOut:
        return cls(
            handler_id=state.handler_id,
            status=state.status,
            attempts=state.attempts,
            http_status=state.http_status,
            error=state.error,
            last_attempt_at=_moment(state.last_attempt_at),
            next_attempt_at=_moment(state.next_attempt_at)
            if state.status == AttemptStatus.RETRYING
            else None,
            dead_lettered=state.dead_lettered,
            replays=state.replays,
        )


class EventDetail(EventOut):
    """`GET /v1/events/{id}`: the event and its delivery to each handler it matched."""

    deliveries: list[DeliveryOut]

    @classmethod
    def of_deliveries(cls, found: EventDeliveries) -> EventDetail:
        states = {state.handler_id: state for state in found.deliveries}
        deliveries = [
            DeliveryOut.of(states.get(handler_id, DeliveryState(handler_id, PENDING)))
            for handler_id in found.handler_ids()
        ]
        return cls(**EventOut.of(found.event).model_dump(), deliveries=deliveries)


class ReplayOut(BaseModel):
    """A replay's answer: the handlers sent the event again, and those left to the attempt
    in flight right now."""

    event_id: str
    replayed: list[int]
    in_flight: list[int]


class RecoverIn(BaseModel):
    """`POST /notification-handlers/{id}/recover`: failures at or after `since` (ISO 8601;
    default: the last 24 hours)."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None


class RecoverOut(BaseModel):
    handler_id: int
    since: str
    requeued: list[str]
    """The ids of the events queued again."""


class RedriveOut(BaseModel):
    redriven: int
