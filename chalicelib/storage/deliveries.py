"""Events and their deliveries: the accepted event, each event x handler's delivery
record (status, attempts, lease: the idempotency record), the batch prefetch and claims,
settlement, and each handler's attempt log."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from chalicelib.models.deliveries import (
    OUTCOME_COUNTS,
    PENDING,
    SUPERSEDED,
    Attempt,
    Claim,
    DeliveryState,
    DeliveryTask,
    EventDeliveries,
    HourTally,
    Prefetched,
    Settlement,
)
from chalicelib.models.events import Event
from chalicelib.storage import keys
from chalicelib.storage.handlers import handler_key, handler_of
from chalicelib.storage.table import RETENTION_SECONDS, Cancelled, ConditionFailed, Item, Key, Table

logger = logging.getLogger("herald.storage")

TaskKey = tuple[str, str, int]

_CLAIMABLE = (
    "attribute_not_exists(#status) OR "
    "(#status <> :delivered AND (attribute_not_exists(lease_until) OR lease_until < :now))"
)
"""A delivery record can be claimed unless delivered or leased right now."""
_TRANSACTION_ITEMS = 100  # TransactWriteItems takes at most this many
_NOT_LEASED = "attribute_not_exists(lease_until) OR lease_until < :now"
_HOURS_KEPT_SECONDS = 8 * 24 * 3600
_LOG_CHUNK = 100
"""Attempts read per Query when walking a handler's log back in time."""


@dataclass(frozen=True)
class AttemptPage:
    attempts: list[Attempt]
    total: int


class DeliveryStore(Protocol):
    """Events, delivery records with their leases, and the attempt log."""

    def put_event(self, event: Event, expires_at: int) -> Item | None:
        """Store a new event; if its id exists already, return the stored item instead."""
        ...

    def get_event(self, account: str, event_id: str) -> Event | None: ...

    def mark_fanned_out(self, account: str, event_id: str, handler_ids: Sequence[int]) -> None:
        """Mark the event fanned out to these handlers (kept, so its deliveries can be shown)."""
        ...

    def record_matched_chunk(
        self, account: str, event_id: str, chunk: str, handler_ids: Sequence[int], now: int
    ) -> None:
        """Keep the handlers one chunk of a queued fan-out matched (the chunk that starts
        after `chunk`); writing the same chunk again replaces it."""
        ...

    def event_deliveries(self, account: str, event_id: str) -> EventDeliveries | None:
        """The event with the handlers it matched and every delivery record, in one read."""
        ...

    def prefetch(self, tasks: Sequence[DeliveryTask]) -> Prefetched:
        """The handlers, events and delivery records of a batch, read together."""
        ...

    def claim_delivery(self, task: DeliveryTask, now: int, lease_seconds: int) -> Claim:
        """Take the event x handler for one attempt, unless it is delivered or leased."""
        ...

    def claim_all(
        self,
        tasks: Sequence[DeliveryTask],
        seen: Mapping[TaskKey, Item],
        *,
        now: int,
        lease_seconds: int,
        unread: Collection[TaskKey] = (),
    ) -> list[Claim | None]:
        """Claim a batch's deliveries together, decided from the records as read (`seen`);
        None for a task to claim on its own with claim_delivery."""
        ...

    def finish_delivery(self, task: DeliveryTask, status: str, error: str | None) -> None:
        """Record where the event x handler stands and release the lease, at once."""
        ...

    def reset_delivery(self, task: DeliveryTask) -> bool:
        """Give a dead-lettered delivery a fresh set of attempts; False (nothing to send) if
        it was delivered meanwhile or a replay superseded the message."""
        ...

    def requeue_delivery(
        self, account: str, event_id: str, handler_id: int, *, now: int, only_failed: bool
    ) -> int | None:
        """Start a new generation of the event x handler's delivery (attempts from 1, status
        pending) and return it, for the message that replays it; None if an attempt holds
        the lease right now or, with `only_failed`, if the delivery is not failed."""
        ...

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Write a batch's delivery records and attempt log entries together."""
        ...

    def log_attempt(self, account: str, handler_id: int, attempt: Attempt) -> None:
        """Log one attempt on its own (the synchronous test notification)."""
        ...

    def list_attempts(
        self,
        account: str,
        handler_id: int,
        top: int,
        page: int,
        per_page: int,
        *,
        status: str | None = None,
        event_id: str | None = None,
    ) -> AttemptPage:
        """Page `page` of the handler's attempts numbered 1..`top`, newest first; only
        those of a status and an event, if given."""
        ...

    def attempts_since(self, account: str, handler_id: int, top: int, since: datetime) -> list[Attempt]:
        """The handler's attempts made at or after `since`, newest first."""
        ...

    def count_hours(self, account: str, tallies: Sequence[HourTally]) -> None:
        """Add these counts to the account's hours."""
        ...

    def account_hours(self, account: str, since: datetime) -> list[HourTally]:
        """The account's counted hours from `since`'s on, oldest first."""
        ...


def plan_batch_claim(
    tasks: Sequence[DeliveryTask], seen: Mapping[TaskKey, Item], *, now: int, unread: Collection[TaskKey]
) -> tuple[list[Claim | None], list[tuple[int, DeliveryTask, Item]]]:
    """What the records read with a batch decide: the claims already answered (delivered, or
    leased right now), and the (index, task, record as read) to claim together. The other
    tasks (a duplicate within the batch, a record left unread) stay None: claimed alone."""
    claims: list[Claim | None] = [None] * len(tasks)
    wanted: list[tuple[int, DeliveryTask, Item]] = []
    taken: set[TaskKey] = set()
    for index, task in enumerate(tasks):
        if task.key in taken or task.key in unread:
            continue
        taken.add(task.key)
        record = seen.get(task.key, {})
        attempts = int(record.get("attempts", 0))
        status = record.get("status")
        if int(record.get("generation", 0)) != task.generation:
            claims[index] = Claim(attempts, SUPERSEDED)
        elif status == "delivered":
            claims[index] = Claim(attempts, "delivered")
        elif status is not None and int(record.get("lease_until") or 0) >= now:
            claims[index] = Claim(attempts, str(status))
        else:
            wanted.append((index, task, record))
    return claims, wanted


def delivery_key(task: DeliveryTask) -> Key:
    return keys.event_pk(task.account, task.event_id), keys.delivery_sk(task.handler_id)


def event_key(account: str, event_id: str) -> Key:
    return keys.event_pk(account, event_id), keys.event_sk()


class DynamoDeliveryStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put_event(self, event: Event, expires_at: int) -> Item | None:
        item = {
            "PK": keys.event_pk(event.account, event.id),
            "SK": keys.event_sk(),
            **event.model_dump(mode="json", exclude_none=True),
            "fanned_out": False,
            "expires_at": expires_at,
        }
        try:
            self.table.put(item, condition="attribute_not_exists(PK)", return_old=True)
        except ConditionFailed as failed:
            return failed.old
        return None

    def get_event(self, account: str, event_id: str) -> Event | None:
        item = self.table.get(event_key(account, event_id))
        return Event.model_validate(item) if item is not None else None

    def mark_fanned_out(self, account: str, event_id: str, handler_ids: Sequence[int]) -> None:
        """The ids are a list on the event item: 10,000 handlers take about 60 KB of its 400."""
        self.table.update(
            event_key(account, event_id),
            "SET fanned_out = :t, matched = :m, handler_ids = :ids",
            values={":t": True, ":m": len(handler_ids), ":ids": list(handler_ids)},
        )

    def record_matched_chunk(
        self, account: str, event_id: str, chunk: str, handler_ids: Sequence[int], now: int
    ) -> None:
        """A chunk of 1,000 ids takes about 6 KB; the item expires with the event."""
        self.table.put(
            {
                "PK": keys.event_pk(account, event_id),
                "SK": keys.matched_sk(chunk),
                "handler_ids": list(handler_ids),
                "expires_at": now + RETENTION_SECONDS,
            }
        )

    def event_deliveries(self, account: str, event_id: str) -> EventDeliveries | None:
        """The event, the handlers a queued fan-out matched and the delivery records share a
        partition: one Query reads them all."""
        items = self.table.query("PK = :pk", {":pk": keys.event_pk(account, event_id)})
        event = next((item for item in items if item["SK"] == keys.event_sk()), None)
        if event is None:
            return None
        chunks = [item for item in items if item["SK"].startswith(keys.MATCHED_PREFIX)]
        return EventDeliveries(
            event=Event.model_validate(event),
            matched=tuple(int(h) for item in [event, *chunks] for h in item.get("handler_ids", ())),
            deliveries=tuple(
                delivery_state(keys.handler_id_of_delivery(item["SK"]), item)
                for item in items
                if item["SK"].startswith(keys.DELIVERY_PREFIX)
            ),
        )

    def prefetch(self, tasks: Sequence[DeliveryTask]) -> Prefetched:
        """One consistent BatchGetItem (up to 100 keys, so a batch of 10 deliveries is
        always one call); what DynamoDB left unprocessed is reported unread."""
        deliveries = {delivery_key(task): task.key for task in tasks}
        handlers = {
            handler_key(task.account, task.handler_id): (task.account, task.handler_id) for task in tasks
        }
        events = {event_key(task.account, task.event_id): (task.account, task.event_id) for task in tasks}
        items, unread = self.table.batch_get([*deliveries, *handlers, *events])
        if unread:
            wanted = len(deliveries) + len(handlers) + len(events)
            logger.warning(
                "DynamoDB left %d of %d keys unread; they are read one by one", len(unread), wanted
            )
        fetched = Prefetched(
            unread_handlers=frozenset(handlers[key] for key in unread if key in handlers),
            unread_events=frozenset(events[key] for key in unread if key in events),
            unread_deliveries=frozenset(deliveries[key] for key in unread if key in deliveries),
        )
        for item in items:
            key = (item["PK"], item["SK"])
            if key in deliveries:
                fetched.deliveries[deliveries[key]] = item
            elif key in events:
                event = Event.model_validate(item)
                fetched.events[(event.account, event.id)] = event
            else:
                handler = handler_of(item)
                fetched.handlers[(handler.account, handler.id)] = handler
        return fetched

    def claim_delivery(self, task: DeliveryTask, now: int, lease_seconds: int) -> Claim:
        """The conditional update is the idempotency key: a redelivered SQS message finds
        `delivered` and sends nothing; two workers holding the same message cannot both
        send, because only one gets the lease. The claim carries a token, so a claim whose
        answer was lost and that botocore retried recognises itself instead of seeing a
        stranger's lease."""
        token = uuid.uuid4().hex
        request = self._claim_request(task, now=now, lease_seconds=lease_seconds, token=token, seen=None)
        try:
            updated = self.table.update(**request, returns="ALL_NEW", return_old=True)
        except ConditionFailed as failed:
            old = failed.old
            if old.get("claim") == token:
                state = "claimed"
            elif int(old.get("generation", 0)) != task.generation:
                state = SUPERSEDED
            else:
                state = str(old.get("status", ""))
            return Claim(attempt=int(old.get("attempts", 0)), state=state)
        return Claim(attempt=int(updated["attempts"]), state="claimed")

    def claim_all(
        self,
        tasks: Sequence[DeliveryTask],
        seen: Mapping[TaskKey, Item],
        *,
        now: int,
        lease_seconds: int,
        unread: Collection[TaskKey] = (),
    ) -> list[Claim | None]:
        """One TransactWriteItems instead of one conditional UpdateItem each.

        Each update keeps claim_delivery's condition and adds that the record still holds
        the attempts count that was read, so a worker that raced us cancels the transaction
        instead of both holding a lease. A None in the answer means: claim this task on its
        own (a duplicate within the batch, a record the prefetch left unread, or the
        transaction failed). Transactional writes cost two write units each on AWS; the
        batch saves nine round trips and their CPU, which is what bounds a batch's time."""
        claims, wanted = plan_batch_claim(tasks, seen, now=now, unread=unread)
        token = uuid.uuid4().hex
        updates = []
        for index, task, record in wanted:
            request = self._claim_request(
                task, now=now, lease_seconds=lease_seconds, token=token, seen=record
            )
            update = self.table.update_request(**request, return_old=True)
            updates.append((index, int(record.get("attempts", 0)) + 1, update))
        for start in range(0, len(updates), _TRANSACTION_ITEMS):
            chunk = updates[start : start + _TRANSACTION_ITEMS]
            try:
                self.table.transact_once([{"Update": update} for _, _, update in chunk])
            except Cancelled as cancelled:
                # If the answer was lost and botocore's retry found its own claims in place,
                # they are ours all the same (the token says so); the rest go one by one.
                logger.info("claiming %d deliveries together failed: %s", len(chunk), cancelled)
                for (index, _, _), old in zip(chunk, cancelled.old, strict=False):
                    if old.get("claim") == token:
                        claims[index] = Claim(int(old["attempts"]), "claimed")
                continue
            for index, attempt, _ in chunk:
                claims[index] = Claim(attempt, "claimed")
        return claims

    @staticmethod
    def _claim_request(
        task: DeliveryTask, *, now: int, lease_seconds: int, token: str, seen: Item | None
    ) -> dict[str, Any]:
        """The conditional update that leases a delivery record for one attempt. Given the
        record as read earlier (`seen`, {} if there was none), it also requires the record
        to be unchanged since and sets the attempts count that implies; otherwise it counts."""
        values: dict[str, Any] = {
            ":lease": now + lease_seconds,
            ":sending": "sending",
            ":delivered": "delivered",
            ":now": now,
            ":exp": now + RETENTION_SECONDS,
            ":token": token,
        }
        update = "SET lease_until = :lease, #status = :sending, expires_at = :exp, claim = :token"
        condition = f"({_CLAIMABLE}) AND ({_of_generation(task, values)})"
        if seen is None:
            update += " ADD attempts :one"
            values[":one"] = 1
        else:
            update += ", attempts = :next"
            values[":next"] = int(seen.get("attempts", 0)) + 1
            if "attempts" in seen:
                condition += " AND attempts = :seen"
                values[":seen"] = int(seen["attempts"])
            else:
                condition += " AND attribute_not_exists(attempts)"
        return {
            "key": delivery_key(task),
            "expression": update,
            "condition": condition,
            "names": {"#status": "status"},
            "values": values,
        }

    def finish_delivery(self, task: DeliveryTask, status: str, error: str | None) -> None:
        """The paths that send nothing, and an interrupted attempt."""
        self.table.update(
            delivery_key(task),
            "SET #status = :status, last_error = :error REMOVE lease_until",
            names={"#status": "status"},
            values={":status": status, ":error": error},
        )

    def reset_delivery(self, task: DeliveryTask) -> bool:
        values: dict[str, Any] = {":zero": 0, ":pending": PENDING, ":delivered": "delivered"}
        try:
            self.table.update(
                delivery_key(task),
                "SET attempts = :zero, #status = :pending REMOVE lease_until",
                condition=f"(attribute_not_exists(#status) OR #status <> :delivered) AND "
                f"({_of_generation(task, values)})",
                names={"#status": "status"},
                values=values,
            )
        except ConditionFailed:
            return False  # delivered meanwhile, or replayed: nothing to send
        return True

    def requeue_delivery(
        self, account: str, event_id: str, handler_id: int, *, now: int, only_failed: bool
    ) -> int | None:
        """One conditional update, so two replays or recovers never both start the same
        generation's schedule: the second finds the first's lease-free pending record and,
        for a recover, a status that is no longer failed."""
        values: dict[str, Any] = {
            ":zero": 0,
            ":one": 1,
            ":pending": PENDING,
            ":now": now,
            ":exp": now + RETENTION_SECONDS,
        }
        condition = f"({_NOT_LEASED})"
        if only_failed:
            condition += " AND #status = :failed"
            values[":failed"] = "failed"
        task = DeliveryTask(account=account, event_id=event_id, handler_id=handler_id)
        try:
            updated = self.table.update(
                delivery_key(task),
                "SET attempts = :zero, #status = :pending, expires_at = :exp ADD generation :one "
                "REMOVE lease_until, claim, http_status, last_error, next_attempt_at, dead_lettered",
                condition=condition,
                names={"#status": "status"},
                values=values,
                returns="UPDATED_NEW",
            )
        except ConditionFailed:
            return None
        return int(updated["generation"])

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """BatchWriteItem, 25 items a call. Plain puts are safe here: the delivery record
        belongs to the lease holder until this write releases it, and a log entry's seq is
        its own."""
        items = []
        for settlement in settlements:
            items.append(_delivery_record(settlement))
            if settlement.log is not None:
                task = settlement.task
                items.append(_log_item(task.account, task.handler_id, settlement.log))
        self.table.batch_put(items)

    def log_attempt(self, account: str, handler_id: int, attempt: Attempt) -> None:
        self.table.put(_log_item(account, handler_id, attempt))

    def count_hours(self, account: str, tallies: Sequence[HourTally]) -> None:
        """One ADD per hour (a batch spans one, rarely two); kept 8 days, the week's chart."""
        for tally in tallies:
            counts = {name: getattr(tally, name) for name in (*OUTCOME_COUNTS, "sent_ms")}
            self.table.update(
                (keys.account_stats_pk(account), keys.hour_sk(tally.hour)),
                "ADD " + ", ".join(f"#{name} :{name}" for name in counts) + " SET expires_at = :expires",
                names={f"#{name}": name for name in counts},
                values={f":{name}": n for name, n in counts.items()}
                | {":expires": int(tally.hour.timestamp()) + _HOURS_KEPT_SECONDS},
            )

    def account_hours(self, account: str, since: datetime) -> list[HourTally]:
        items = self.table.query(
            "PK = :pk AND SK >= :since",
            {":pk": keys.account_stats_pk(account), ":since": keys.hour_sk(since)},
        )
        return [
            HourTally(
                datetime.strptime(item["SK"], "%Y%m%d%H").replace(tzinfo=UTC),
                **{name: int(item.get(name, 0)) for name in (*OUTCOME_COUNTS, "sent_ms")},
            )
            for item in items
        ]

    def list_attempts(
        self,
        account: str,
        handler_id: int,
        top: int,
        page: int,
        per_page: int,
        *,
        status: str | None = None,
        event_id: str | None = None,
    ) -> AttemptPage:
        """Attempts are numbered 1..top per handler, so page P is one Query on a seq range
        whatever P is. Attempts past the retention have expired, so the oldest pages may
        hold fewer items than the total counts."""
        if status is not None or event_id is not None:
            return self._filtered_attempts(
                account, handler_id, page, per_page, status=status, event_id=event_id
            )
        high = top - (page - 1) * per_page
        low = max(1, high - per_page + 1)
        if high < 1:
            return AttemptPage([], top)
        items = self.table.query(
            "PK = :pk AND SK BETWEEN :low AND :high",
            {":pk": keys.log_pk(account, handler_id), ":low": keys.log_sk(low), ":high": keys.log_sk(high)},
            ScanIndexForward=False,
        )
        return AttemptPage([Attempt.model_validate(item) for item in items], top)

    def _filtered_attempts(
        self,
        account: str,
        handler_id: int,
        page: int,
        per_page: int,
        *,
        status: str | None,
        event_id: str | None,
    ) -> AttemptPage:
        """A FilterExpression on the handler's log: the total is one COUNT Query and the page
        one Query newest first up to its last match, so both read the log of the retention
        period (30 days) at most, and a later page reads more than an earlier one."""
        filters, values, names = [], {":pk": keys.log_pk(account, handler_id)}, {}
        if status is not None:
            filters.append("#status = :status")
            values[":status"] = status
            names["#status"] = "status"
        if event_id is not None:
            filters.append("event_id = :event")
            values[":event"] = event_id
        options: dict[str, Any] = {"FilterExpression": " AND ".join(filters)}
        if names:
            options["ExpressionAttributeNames"] = names
        total = self.table.count("PK = :pk", values, **options)
        if total <= (page - 1) * per_page:
            return AttemptPage([], total)
        items = self.table.query(
            "PK = :pk", values, limit=page * per_page, consistent=False, ScanIndexForward=False, **options
        )
        chosen = items[(page - 1) * per_page : page * per_page]
        return AttemptPage([Attempt.model_validate(item) for item in chosen], total)

    def attempts_since(self, account: str, handler_id: int, top: int, since: datetime) -> list[Attempt]:
        """Walks the log back from its newest seq, 100 at a time, and stops at the first
        chunk made wholly before `since`: it reads the attempts of the window and at most
        one chunk more, whatever the log's length."""
        found: list[Attempt] = []
        high = top
        while high >= 1:
            low = max(1, high - _LOG_CHUNK + 1)
            items = self.table.query(
                "PK = :pk AND SK BETWEEN :low AND :high",
                {
                    ":pk": keys.log_pk(account, handler_id),
                    ":low": keys.log_sk(low),
                    ":high": keys.log_sk(high),
                },
                ScanIndexForward=False,
            )
            chunk = [Attempt.model_validate(item) for item in items]
            recent = [attempt for attempt in chunk if attempt.at >= since]
            found.extend(recent)
            if chunk and not recent:
                break
            high = low - 1
        return found


def _of_generation(task: DeliveryTask, values: dict[str, Any]) -> str:
    """The condition that the record is of the task's generation (a record without one is
    of generation 0); it adds its value to `values`."""
    values[":gen"] = task.generation
    if task.generation == 0:
        return "attribute_not_exists(generation) OR generation = :gen"
    return "generation = :gen"


def _delivery_record(settlement: Settlement) -> Item:
    """The whole delivery record after an attempt: its lease released."""
    pk, sk = delivery_key(settlement.task)
    record: Item = {
        "PK": pk,
        "SK": sk,
        "status": settlement.status,
        "attempts": settlement.attempts,
        "generation": settlement.task.generation,
        "http_status": settlement.http_status,
        "last_error": settlement.error,
        "expires_at": int(time.time()) + RETENTION_SECONDS,
    }
    if settlement.log is not None:
        record["last_attempt_at"] = settlement.log.at.isoformat()
    if settlement.next_attempt_at is not None:
        record["next_attempt_at"] = settlement.next_attempt_at.isoformat()
    if settlement.dead_lettered:
        record["dead_lettered"] = True
    return record


def delivery_state(handler_id: int, record: Item) -> DeliveryState:
    """A delivery record as the domain reads it (the fake stores share this reading)."""

    def moment(name: str) -> datetime | None:
        value = record.get(name)
        return datetime.fromisoformat(value) if value else None

    return DeliveryState(
        handler_id=handler_id,
        status=str(record.get("status", PENDING)),
        attempts=int(record.get("attempts", 0)),
        http_status=int(record["http_status"]) if record.get("http_status") is not None else None,
        error=record.get("last_error"),
        last_attempt_at=moment("last_attempt_at"),
        next_attempt_at=moment("next_attempt_at"),
        dead_lettered=bool(record.get("dead_lettered", False)),
        replays=int(record.get("generation", 0)),
    )


def _log_item(account: str, handler_id: int, attempt: Attempt) -> Item:
    return {
        "PK": keys.log_pk(account, handler_id),
        "SK": keys.log_sk(attempt.seq),
        **attempt.model_dump(mode="json", exclude_none=True),
        "expires_at": int(attempt.at.timestamp()) + RETENTION_SECONDS,
    }
