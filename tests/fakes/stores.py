"""In-memory fakes of every store: the same answers and the same exceptions as the
DynamoDB stores (tests/contract holds them to moto and DynamoDB Local), no TTL deletion
(reads ignore expired items where the DynamoDB stores filter them), no I/O.

A lock per bundle makes each method atomic, as a conditional write or a transaction is.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import Conflict, NotFound
from chalicelib.models.deliveries import (
    OUTCOME_COUNTS,
    PENDING,
    SUPERSEDED,
    Attempt,
    AttemptStatus,
    Claim,
    DeliveryTask,
    EventDeliveries,
    HourTally,
    Noted,
    Prefetched,
    Settlement,
)
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.models.inbox import Counts, InboxPage, Notification, Status
from chalicelib.models.push import PushSubscriber, subscriber_id
from chalicelib.storage import keys
from chalicelib.storage.accounts import PortalSession
from chalicelib.storage.app_events import AppEventPage
from chalicelib.storage.deliveries import AttemptPage, delivery_state, plan_batch_claim
from chalicelib.storage.fan_outs import FanOutProgress
from chalicelib.storage.handlers import HandlerPage, ScopeChunk
from chalicelib.storage.stores import Stores
from chalicelib.storage.table import RETENTION_SECONDS, ConditionFailed, Item

TaskKey = tuple[str, str, int]


class MemoryApiKeyStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._keys: dict[str, Item] = {}

    def put_api_key(self, key_id: str, key_hash: str, account: str, created_at: datetime) -> None:
        with self._lock:
            if key_id in self._keys:
                raise ConditionFailed("key id taken")
            self._keys[key_id] = {
                "PK": keys.api_key_pk(key_id),
                "SK": keys.api_key_sk(),
                "key_hash": key_hash,
                "account": account,
                "created_at": created_at.isoformat(),
                "revoked": False,
            }

    def get_api_key(self, key_id: str) -> Item | None:
        with self._lock:
            found = self._keys.get(key_id)
            return dict(found) if found is not None else None

    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> bool:
        with self._lock:
            if key_id not in self._keys:
                return False
            self._keys[key_id] |= {"revoked": True, "revoked_at": revoked_at.isoformat()}
            return True


class MemoryPortalSessionStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._sessions: dict[str, PortalSession] = {}

    def put_portal_session(self, session_id: str, session: PortalSession, created_at: datetime) -> None:
        with self._lock:
            if session_id in self._sessions:
                raise ConditionFailed("session id taken")
            whole_seconds = session.expires_at.replace(microsecond=0)  # as the item's TTL keeps it
            self._sessions[session_id] = replace(session, expires_at=whole_seconds)

    def get_portal_session(self, session_id: str) -> PortalSession | None:
        with self._lock:
            return self._sessions.get(session_id)


class MemoryRateStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._hits: dict[str, dict[int, int]] = {}

    def add_hits(self, subject: str, window: int, count: int, expires_at: int) -> tuple[int, int]:
        with self._lock:
            windows = self._hits.setdefault(subject, {})
            windows[window] = windows.get(window, 0) + count
            windows.pop(window - 2, None)
            return windows[window], windows.get(window - 1, 0)

    def take_back_hits(self, subject: str, window: int, count: int) -> None:
        with self._lock:
            windows = self._hits.setdefault(subject, {})
            windows[window] = windows.get(window, 0) - count

    def rate_window(self, subject: str, window: int) -> tuple[int, int]:
        with self._lock:
            windows = self._hits.get(subject, {})
            return windows.get(window, 0), windows.get(window - 1, 0)


class MemoryAppStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._ids: dict[tuple[str, str], str] = {}

    def app_id(self, account: str, name: str, candidate_id: str) -> str:
        with self._lock:
            return self._ids.setdefault((account, name), candidate_id)

    def app_named_by_id(self, account: str, app_id: str) -> str | None:
        with self._lock:
            names = sorted(
                name for (owner, name), found in self._ids.items() if owner == account and found == app_id
            )
            return names[0] if names else None


class MemoryHandlerStore:
    """Handlers as the JSON items DynamoDB would hold (so partial updates behave alike)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.items: dict[tuple[str, int], Item] = {}
        self._next_id: dict[str, int] = {}
        self._counters: dict[tuple[str, int], int] = {}
        """Live handlers per (account, block); a block's counter stays, at 0, once used."""

    def allocate_handler_id(self, account: str) -> int:
        with self._lock:
            self._next_id[account] = self._next_id.get(account, 0) + 1
            return self._next_id[account]

    def skip_taken_ids(self, account: str) -> None:
        with self._lock:
            taken = [handler_id for owner, handler_id in self.items if owner == account]
            if taken and self._next_id.get(account, 0) < max(taken):
                self._next_id[account] = max(taken)

    def create_handler(self, handler: Handler) -> None:
        with self._lock:
            if (handler.account, handler.id) in self.items:
                raise ConditionFailed("handler id taken")
            self.items[(handler.account, handler.id)] = handler.model_dump(mode="json", exclude_none=True)
            self._count(handler.account, handler.id, +1)

    def _count(self, account: str, handler_id: int, delta: int) -> None:
        block = (account, keys.block_of(handler_id))
        self._counters[block] = self._counters.get(block, 0) + delta

    def get_handler(self, account: str, handler_id: int) -> Handler | None:
        with self._lock:
            item = self.items.get((account, handler_id))
            return _handler(item) if item is not None else None

    def update_handler(
        self,
        account: str,
        handler_id: int,
        *,
        fields: dict[str, Any],
        settings: dict[str, str],
        replace_settings: bool,
        expected_type: str | None,
        now: datetime,
    ) -> None:
        with self._lock:
            item = self.items.get((account, handler_id))
            if item is None:
                raise NotFound(f"notification handler {handler_id} not found")
            if expected_type is not None and item["type"] != expected_type:
                raise Conflict(
                    f"notification handler {handler_id} changed type meanwhile; send the update again"
                )
            item |= {"updated_at": now.isoformat(), **{k: v for k, v in fields.items() if v is not None}}
            for cleared in (name for name, value in fields.items() if value is None):
                item.pop(cleared, None)
            item["settings"] = dict(settings) if replace_settings else {**item["settings"], **settings}

    def delete_handler(self, account: str, handler_id: int) -> bool:
        with self._lock:
            if self.items.pop((account, handler_id), None) is None:
                return False
            self._count(account, handler_id, -1)
            return True

    def block_counts(self, account: str) -> list[tuple[int, int]]:
        with self._lock:
            return sorted((block, n) for (owner, block), n in self._counters.items() if owner == account)

    def count_handlers(self, account: str) -> int:
        return sum(n for _, n in self.block_counts(account))

    def list_handlers(self, account: str, page: int, per_page: int) -> HandlerPage:
        handlers = self._all(account)
        start = (page - 1) * per_page
        return HandlerPage(handlers[start : start + per_page], len(handlers))

    def _all(self, account: str) -> list[Handler]:
        with self._lock:
            return [_handler(self.items[key]) for key in sorted(self.items) if key[0] == account]

    def app_handlers(self, account: str, app: str) -> list[Handler]:
        return [h for h in self._all(account) if h.app == app]

    def handlers_in_scope(self, account: str, app: str | None) -> list[Handler]:
        return [h for h in self._all(account) if not h.app or h.app == app]

    def scope_chunk(self, account: str, app: str | None, after: str | None, limit: int) -> ScopeChunk:
        ordered = sorted(
            (keys.app_hid(h.app, h.type, h.id), h.id) for h in self.handlers_in_scope(account, app)
        )
        chunk = [(key, handler_id) for key, handler_id in ordered if after is None or key > after][:limit]
        return ScopeChunk(
            [handler_id for _, handler_id in chunk], chunk[-1][0] if len(chunk) == limit else None
        )

    def handlers_by_id(self, account: str, ids: Sequence[int]) -> list[Handler]:
        with self._lock:
            found = [self.items.get((account, handler_id)) for handler_id in sorted(set(ids))]
            return [_handler(item) for item in found if item is not None]

    def list_app_handlers(
        self, account: str, app: str, types: Sequence[str], page: int, per_page: int
    ) -> HandlerPage:
        handlers = [h for h in self.app_handlers(account, app) if h.type in types]
        start = (page - 1) * per_page
        return HandlerPage(handlers[start : start + per_page], len(handlers))

    def rotate_secret(self, account: str, handler_id: int, new_secret: str, overlap_until: datetime) -> None:
        with self._lock:
            item = self.items.get((account, handler_id))
            if item is None or "signing_secret" not in item:
                raise NotFound(f"notification handler {handler_id} not found")
            item |= {
                "previous_secret": item["signing_secret"],
                "signing_secret": new_secret,
                "previous_secret_expires_at": overlap_until.isoformat(),
            }

    def note_attempts(
        self, handler: Handler, statuses: Sequence[AttemptStatus], now: datetime
    ) -> Noted | None:
        with self._lock:
            item = self.items.get((handler.account, handler.id))
            if item is None:
                return None
            first = item.get("attempt_seq", 0) + 1
            item["attempt_seq"] = first + len(statuses) - 1
            if AttemptStatus.DELIVERED in statuses:
                item["last_datetime"] = now.isoformat()
                ended = item.pop("failing_since", None)
                recovered_from = datetime.fromisoformat(ended) if ended else None
                return Noted(first, None, recovered_from=recovered_from)
            failed = any(status != AttemptStatus.SKIPPED for status in statuses)
            if failed and item.get("failing_since") is None:
                item["failing_since"] = now.isoformat()
            since = item.get("failing_since")
            return Noted(first, datetime.fromisoformat(since) if since else handler.failing_since)

    def attempt_count(self, account: str, handler_id: int) -> int:
        with self._lock:
            return int(self.items.get((account, handler_id), {}).get("attempt_seq", 0))

    def disable_handler(self, account: str, handler_id: int, reason: str, now: datetime) -> bool:
        with self._lock:
            item = self.items.get((account, handler_id))
            if item is None or item.get("is_enabled") is not True:
                return False
            item |= {"is_enabled": False, "disabled_reason": reason, "updated_at": now.isoformat()}
            return True


def _handler(item: Item) -> Handler:
    return Handler.model_validate({k: v for k, v in item.items() if k != "attempt_seq"})


class MemoryDeliveryStore:
    def __init__(self, lock: threading.RLock, handlers: MemoryHandlerStore) -> None:
        self._lock = lock
        self._handlers = handlers
        self._events: dict[tuple[str, str], Item] = {}
        self._records: dict[TaskKey, Item] = {}
        self._matched_chunks: dict[tuple[str, str], dict[str, list[int]]] = {}
        self._hours: dict[tuple[str, datetime], HourTally] = {}
        self._log: dict[tuple[str, int], dict[int, Attempt]] = {}

    def put_event(self, event: Event, expires_at: int) -> Item | None:
        with self._lock:
            key = (event.account, event.id)
            if key in self._events:
                return dict(self._events[key])
            self._events[key] = {
                "PK": keys.event_pk(event.account, event.id),
                "SK": keys.event_sk(),
                **event.model_dump(mode="json", exclude_none=True),
                "fanned_out": False,
                "expires_at": expires_at,
            }
            return None

    def get_event(self, account: str, event_id: str) -> Event | None:
        with self._lock:
            item = self._events.get((account, event_id))
            return Event.model_validate(item) if item is not None else None

    def mark_fanned_out(self, account: str, event_id: str, handler_ids: Sequence[int]) -> None:
        with self._lock:
            self._events.setdefault((account, event_id), {}).update(
                fanned_out=True, matched=len(handler_ids), handler_ids=list(handler_ids)
            )

    def record_matched_chunk(
        self, account: str, event_id: str, chunk: str, handler_ids: Sequence[int], now: int
    ) -> None:
        with self._lock:
            self._matched_chunks.setdefault((account, event_id), {})[chunk] = list(handler_ids)

    def event_deliveries(self, account: str, event_id: str) -> EventDeliveries | None:
        with self._lock:
            event = self.get_event(account, event_id)
            if event is None:
                return None
            records = sorted(
                (key[2], record) for key, record in self._records.items() if key[:2] == (account, event_id)
            )
            return EventDeliveries(
                event=event,
                matched=(
                    *self._events[(account, event_id)].get("handler_ids", ()),
                    *(h for ids in self._matched_chunks.get((account, event_id), {}).values() for h in ids),
                ),
                deliveries=tuple(delivery_state(handler_id, record) for handler_id, record in records),
            )

    def prefetch(self, tasks: Sequence[DeliveryTask]) -> Prefetched:
        fetched = Prefetched()
        with self._lock:
            for task in tasks:
                handler = self._handlers.get_handler(task.account, task.handler_id)
                if handler is not None:
                    fetched.handlers[(task.account, task.handler_id)] = handler
                event = self.get_event(task.account, task.event_id)
                if event is not None:
                    fetched.events[(task.account, task.event_id)] = event
                if task.key in self._records:
                    fetched.deliveries[task.key] = dict(self._records[task.key])
        return fetched

    def claim_delivery(self, task: DeliveryTask, now: int, lease_seconds: int) -> Claim:
        with self._lock:
            record = self._records.get(task.key, {})
            if int(record.get("generation", 0)) != task.generation:
                return Claim(int(record.get("attempts", 0)), SUPERSEDED)
            if not _claimable(record, now):
                return Claim(int(record.get("attempts", 0)), str(record.get("status", "")))
            attempt = int(record.get("attempts", 0)) + 1
            self._records[task.key] = _claimed(record, attempt, now, lease_seconds)
            return Claim(attempt, "claimed")

    def claim_all(
        self,
        tasks: Sequence[DeliveryTask],
        seen: Mapping[TaskKey, Item],
        *,
        now: int,
        lease_seconds: int,
        unread: Collection[TaskKey] = (),
    ) -> list[Claim | None]:
        """All or nothing, like the transaction: one record changed since `seen` and every
        claim the batch would have taken is left to claim_delivery."""
        with self._lock:
            claims, wanted = plan_batch_claim(tasks, seen, now=now, unread=unread)
            current = [self._records.get(task.key, {}) for _, task, _ in wanted]
            if all(
                _claimable(record, now)
                and record.get("attempts") == read.get("attempts")
                and int(record.get("generation", 0)) == task.generation
                for (_, task, read), record in zip(wanted, current, strict=True)
            ):
                for (index, task, _), record in zip(wanted, current, strict=True):
                    attempt = int(record.get("attempts", 0)) + 1
                    self._records[task.key] = _claimed(record, attempt, now, lease_seconds)
                    claims[index] = Claim(attempt, "claimed")
            return claims

    def finish_delivery(self, task: DeliveryTask, status: str, error: str | None) -> None:
        with self._lock:
            record = self._records.setdefault(task.key, {})
            record |= {"status": status, "last_error": error}
            record.pop("lease_until", None)

    def reset_delivery(self, task: DeliveryTask) -> bool:
        with self._lock:
            record = self._records.setdefault(task.key, {})
            if record.get("status") == "delivered" or int(record.get("generation", 0)) != task.generation:
                return False
            record |= {"attempts": 0, "status": PENDING}
            record.pop("lease_until", None)
            return True

    def requeue_delivery(
        self, account: str, event_id: str, handler_id: int, *, now: int, only_failed: bool
    ) -> int | None:
        with self._lock:
            key = (account, event_id, handler_id)
            record = self._records.get(key, {})
            if record.get("lease_until", now - 1) >= now or (
                only_failed and record.get("status") != "failed"
            ):
                return None
            generation = int(record.get("generation", 0)) + 1
            kept = {k: v for k, v in record.items() if k == "last_attempt_at"}
            self._records[key] = {**kept, "attempts": 0, "status": PENDING, "generation": generation}
            return generation

    def settle(self, settlements: Sequence[Settlement]) -> None:
        with self._lock:
            for settlement in settlements:
                task = settlement.task
                record: Item = {
                    "status": settlement.status,
                    "attempts": settlement.attempts,
                    "generation": task.generation,
                    "http_status": settlement.http_status,
                    "last_error": settlement.error,
                }
                if settlement.log is not None:
                    record["last_attempt_at"] = settlement.log.at.isoformat()
                if settlement.next_attempt_at is not None:
                    record["next_attempt_at"] = settlement.next_attempt_at.isoformat()
                if settlement.dead_lettered:
                    record["dead_lettered"] = True
                self._records[task.key] = record
                if settlement.log is not None:
                    self.log_attempt(task.account, task.handler_id, settlement.log)

    def log_attempt(self, account: str, handler_id: int, attempt: Attempt) -> None:
        with self._lock:
            self._log.setdefault((account, handler_id), {})[attempt.seq] = attempt

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
        with self._lock:
            logged = self._log.get((account, handler_id), {})
            if status is None and event_id is None:
                high = top - (page - 1) * per_page
                low = max(1, high - per_page + 1)
                return AttemptPage([logged[seq] for seq in range(high, low - 1, -1) if seq in logged], top)
            matching = [
                attempt
                for _, attempt in sorted(logged.items(), reverse=True)
                if status in (None, attempt.status) and event_id in (None, attempt.event_id)
            ]
            start = (page - 1) * per_page
            return AttemptPage(matching[start : start + per_page], len(matching))

    def attempts_since(self, account: str, handler_id: int, top: int, since: datetime) -> list[Attempt]:
        with self._lock:
            logged = self._log.get((account, handler_id), {})
            return [
                attempt
                for seq, attempt in sorted(logged.items(), reverse=True)
                if seq <= top and attempt.at >= since
            ]

    def count_hours(self, account: str, tallies: Sequence[HourTally]) -> None:
        with self._lock:
            for tally in tallies:
                hour = tally.hour.astimezone(UTC)
                found = self._hours.get((account, hour), HourTally(hour))
                self._hours[(account, hour)] = HourTally(
                    hour, **{n: getattr(found, n) + getattr(tally, n) for n in (*OUTCOME_COUNTS, "sent_ms")}
                )

    def account_hours(self, account: str, since: datetime) -> list[HourTally]:
        start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        with self._lock:
            return [
                t for (owner, hour), t in sorted(self._hours.items()) if owner == account and hour >= start
            ]

    def record(self, task: DeliveryTask) -> Item:
        """The delivery record as it stands (for tests' assertions)."""
        with self._lock:
            return dict(self._records.get(task.key, {}))


def _claimable(record: Item, now: int) -> bool:
    if "status" not in record:
        return True
    return record["status"] != "delivered" and ("lease_until" not in record or record["lease_until"] < now)


def _claimed(record: Item, attempt: int, now: int, lease_seconds: int) -> Item:
    return {
        **record,
        "lease_until": now + lease_seconds,
        "status": "sending",
        "expires_at": now + RETENTION_SECONDS,
        "claim": uuid.uuid4().hex,
        "attempts": attempt,
    }


class MemoryConfirmationStore:
    def __init__(self, lock: threading.RLock, handlers: MemoryHandlerStore) -> None:
        self._lock = lock
        self._handlers = handlers
        self._tokens: dict[str, Item] = {}

    def put_confirmation(self, token: str, handler: Handler, address: str, expires_at: int) -> None:
        with self._lock:
            self._tokens[token] = {
                "PK": keys.confirmation_pk(token),
                "SK": keys.confirmation_sk(),
                "account": handler.account,
                "handler_id": handler.id,
                "email": handler.settings["email"],
                "address": address,
                "expires_at": expires_at,
            }

    def confirm_email(self, token: str, now: int) -> Item | None:
        with self._lock:
            item = self._tokens.get(token)
            if item is None or item["expires_at"] < now:
                return None
            handler = self._handlers.items.get((item["account"], item["handler_id"]))
            if handler is None or handler["settings"].get("email") != item["email"]:
                return None
            handler["confirmed_emails"] = [*handler.get("confirmed_emails", []), item["address"]]
            del self._tokens[token]
            return dict(item)


class MemoryInboxStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._unread: dict[str, dict[str, Notification]] = {}
        self._read: dict[str, dict[str, Notification]] = {}

    def add(self, account: str, notification: Notification) -> bool:
        with self._lock:
            unread, read = self._unread.setdefault(account, {}), self._read.setdefault(account, {})
            if notification.id in unread or notification.id in read:
                return False
            unread[notification.id] = notification
            return True

    def mark_read(self, account: str, notification_id: str, now: datetime) -> Notification | None:
        with self._lock:
            unread = self._live(self._unread, account, notification_id, now)
            if unread is None:
                return self._live(self._read, account, notification_id, now)
            read = unread.model_copy(update={"read": True, "read_at": now})
            del self._unread[account][notification_id]
            self._read.setdefault(account, {})[notification_id] = read
            return read

    def get(self, account: str, notification_id: str, now: datetime) -> Notification | None:
        with self._lock:
            found = self._live(self._unread, account, notification_id, now)
            return found or self._live(self._read, account, notification_id, now)

    @staticmethod
    def _live(
        where: dict[str, dict[str, Notification]], account: str, notification_id: str, now: datetime
    ) -> Notification | None:
        found = where.get(account, {}).get(notification_id)
        return found if found is not None and found.expires_at > now.timestamp() else None

    def _listed(
        self, where: dict[str, dict[str, Notification]], account: str, now: datetime
    ) -> list[Notification]:
        """Live ones, newest first (ids start with the creation time)."""
        found = where.get(account, {})
        return [found[i] for i in sorted(found, reverse=True) if found[i].expires_at > now.timestamp()]

    def counts(self, account: str, now: datetime) -> Counts:
        with self._lock:
            unread = len(self._listed(self._unread, account, now))
            return Counts(unread, unread + len(self._listed(self._read, account, now)))

    def list_page(
        self, account: str, status: Status | None, page: int, per_page: int, *, now: datetime
    ) -> InboxPage:
        with self._lock:
            tally = self.counts(account, now)
            total = {None: tally.total, "unread": tally.unread, "read": tally.read}[status]
            listed = []
            if status in (None, "unread"):
                listed += self._listed(self._unread, account, now)
            if status in (None, "read"):
                listed += self._listed(self._read, account, now)
            start = (page - 1) * per_page
            return InboxPage(listed[start : start + per_page], total, tally)


class MemoryPushStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._subscribers: dict[tuple[str, str], PushSubscriber] = {}

    def save(
        self,
        account: str,
        *,
        endpoint: str,
        p256dh: str,
        auth: str,
        expiration_time: int | None,
        now: datetime,
    ) -> PushSubscriber:
        with self._lock:
            ident = subscriber_id(account, endpoint)
            before = self._subscribers.get((account, ident))
            saved = PushSubscriber(
                id=ident,
                endpoint=endpoint,
                p256dh=p256dh,
                auth=auth,
                expiration_time=expiration_time,
                created_at=before.created_at if before is not None else now,
                updated_at=now,
            )
            self._subscribers[(account, ident)] = saved
            return saved

    def get(self, account: str, ident: str) -> PushSubscriber | None:
        with self._lock:
            return self._subscribers.get((account, ident))

    def delete(self, account: str, ident: str) -> bool:
        with self._lock:
            return self._subscribers.pop((account, ident), None) is not None


class MemoryAppEventStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._events: dict[tuple[str, str | None], dict[tuple[datetime, str], tuple[Event, int]]] = {}

    def record(self, event: Event, expires_at: int) -> None:
        """One list per account (app None) and one per app, as the table keeps them."""
        with self._lock:
            for app in {None, event.app}:
                listed = self._events.setdefault((event.account, app), {})
                listed.setdefault((_utc(event.created_at), event.id), (event, expires_at))

    def page(
        self,
        account: str,
        app: str | None,
        number: int,
        per_page: int,
        *,
        since: datetime | None,
        now: datetime,
        event_type: str | None = None,
    ) -> AppEventPage:
        with self._lock:
            listed = self._events.get((account, app), {})
            live = [
                event
                for (created, _), (event, expires_at) in sorted(listed.items(), reverse=True)
                if expires_at > math.floor(now.timestamp())
                and (since is None or created >= _utc(since))
                and event_type in (None, event.type)
            ]
            start = (number - 1) * per_page
            return AppEventPage(live[start : start + per_page], len(live))


class MemoryFanOutStore:
    """Fan-out progress on the event items of the bundle's delivery store."""

    def __init__(self, lock: threading.RLock, deliveries: MemoryDeliveryStore) -> None:
        self._lock = lock
        self._events = deliveries._events  # the same items, as in the table

    def take_fan_out(self, account: str, event_id: str, job: str, after: str | None) -> FanOutProgress | None:
        with self._lock:
            item = self._events.get((account, event_id))
            if item is None or item.get("fanned_out") is not False:
                return None
            if item.get("fan_out_job") != job and item.get("fan_out_after") != after:
                return None
            item["fan_out_job"] = job
            return FanOutProgress(item.get("fan_out_after"), int(item.get("matched", 0)))

    def advance_fan_out(
        self, account: str, event_id: str, job: str, done: FanOutProgress, now: FanOutProgress
    ) -> bool:
        with self._lock:
            item = self._events.get((account, event_id), {})
            if item.get("fan_out_job") != job or item.get("fan_out_after") != done.after:
                return False
            item["matched"] = now.matched
            if now.after is None:
                item |= {"fanned_out": True, "fan_out": "queued"}
                item.pop("fan_out_after", None)
            else:
                item["fan_out_after"] = now.after
            return True


class MemoryDestinationStore:
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self.next_ms: dict[str, int] = {}

    def reserve_slot(self, destination: str, *, interval_ms: int, burst: int, now_ms: int) -> int:
        with self._lock:
            floor = now_ms - (burst - 1) * interval_ms
            slot = max(self.next_ms.get(destination, floor), floor)
            self.next_ms[destination] = slot + interval_ms
            return slot

    def hold(self, destination: str, until_ms: int) -> None:
        with self._lock:
            self.next_ms[destination] = max(self.next_ms.get(destination, until_ms), until_ms)


def _utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def memory_stores() -> Stores:
    """A bundle of fresh fakes, sharing one lock (and the handlers, where DynamoDB shares
    items between stores: the prefetch and email confirmations)."""
    lock = threading.RLock()
    handlers = MemoryHandlerStore(lock)
    deliveries = MemoryDeliveryStore(lock, handlers)
    return Stores(
        api_keys=MemoryApiKeyStore(lock),
        portal_sessions=MemoryPortalSessionStore(lock),
        rates=MemoryRateStore(lock),
        apps=MemoryAppStore(lock),
        handlers=handlers,
        deliveries=deliveries,
        confirmations=MemoryConfirmationStore(lock, handlers),
        inbox=MemoryInboxStore(lock),
        push=MemoryPushStore(lock),
        app_events=MemoryAppEventStore(lock),
        fan_outs=MemoryFanOutStore(lock, deliveries),
        destinations=MemoryDestinationStore(lock),
    )


def every_handler(stores: Stores, account: str) -> list[Handler]:
    """Every handler of the account in id order, through the paged list (a test's oracle)."""
    return stores.handlers.list_handlers(account, 1, 10_000).handlers
