"""Herald's operational events about an account's handlers (one disabled, a delivery that
exhausted its retries, one that recovered), and the account's operational webhook.

Each event goes to the account's inbox and, if the account registered one, to its
operational webhook. That webhook is a webhook handler (id 1) of the account's operations
namespace, `<account>#operations`: an account no API key belongs to, so it never shows in
the account's handler lists, never matches the account's events, and is reachable only
through `/v1/operational-webhook`. An operational event is an event of that namespace,
delivered to that one handler through the deliveries queue like any other: the same
claims, retries, Standard Webhooks signature, attempt log and dead-letter queue.

No loops: the operational webhook's own failures and recoveries raise no operational
event, and its being disabled only reaches the account's inbox.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clients, clock, services
from chalicelib.delivery import notices
from chalicelib.delivery.fanout import enqueue
from chalicelib.delivery.safe_http import UnsafeTarget, check_target
from chalicelib.delivery.signing import new_secret
from chalicelib.errors import InvalidInput, NotFound, QueueUnavailable
from chalicelib.models.deliveries import DeliveryTask, SendResult
from chalicelib.models.events import Event, new_event_id
from chalicelib.models.handlers import Handler
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores
from chalicelib.storage.table import RETENTION_SECONDS, ConditionFailed

logger = logging.getLogger("herald.operational")

NAMESPACE_SUFFIX = "#operations"
WEBHOOK_ID = 1
"""The operational webhook's id in its namespace: an account has at most one."""


def namespace_of(account: str) -> str:
    """The account's operations namespace (account names never hold `#`: keys split on it)."""
    return account + NAMESPACE_SUFFIX


def owner_of(account: str) -> str | None:
    """The account whose operations namespace `account` is, or None for a real account."""
    return account.removesuffix(NAMESPACE_SUFFIX) if account.endswith(NAMESPACE_SUFFIX) else None


# ---------------------------------------------------------------- the operational webhook


@dataclass(frozen=True)
class Registered:
    webhook: Handler
    secret: str | None
    """The signing secret, whole, when this registration created it (shown once)."""


def get_webhook(stores: Stores, account: str) -> Handler | None:
    return stores.handlers.get_handler(namespace_of(account), WEBHOOK_ID)


def register_webhook(stores: Stores, account: str, url: str) -> Registered:
    """Point the account's operational webhook at `url` (the handlers' URL policy applies)
    and enable it; the first registration makes its signing secret, later ones keep it."""
    try:
        check_target(url, allow_private=get_settings().allow_private_targets)
    except UnsafeTarget as exc:
        raise InvalidInput("url", str(exc)) from None
    now = clock.now()
    namespace = namespace_of(account)
    if get_webhook(stores, account) is None:
        secret = new_secret()
        webhook = Handler(
            account=namespace,
            id=WEBHOOK_ID,
            type="webhook",
            name="Operational webhook",
            settings={"webhook": url},
            send_all_events=False,
            send_all_alerts=False,
            signing_secret=secret,
            created_at=now,
            updated_at=now,
        )
        try:
            stores.handlers.create_handler(webhook)
            return Registered(webhook, secret)
        except ConditionFailed:  # registered meanwhile: point that one at `url`
            pass
    stores.handlers.update_handler(
        namespace,
        WEBHOOK_ID,
        fields={"is_enabled": True, "disabled_reason": None, "failing_since": None},
        settings={"webhook": url},
        replace_settings=False,
        expected_type="webhook",
        now=now,
    )
    return Registered(webhook_of(stores, account), None)


def webhook_of(stores: Stores, account: str) -> Handler:
    """The account's operational webhook; NotFound if it has none."""
    webhook = get_webhook(stores, account)
    if webhook is None:
        raise NotFound("no operational webhook is registered; PUT /v1/operational-webhook first")
    return webhook


def rotate_webhook_secret(stores: Stores, account: str) -> tuple[Handler, str]:
    """A new signing secret for the operational webhook (the old one keeps signing for 24 h,
    as a handler's does); answers the webhook and the new secret."""
    webhook = webhook_of(stores, account)
    return webhook, services.rotate_secret(stores, webhook.account, webhook.id)


def remove_webhook(stores: Stores, account: str) -> None:
    if not stores.handlers.delete_handler(namespace_of(account), WEBHOOK_ID):
        raise NotFound("no operational webhook is registered")


# ---------------------------------------------------------------- operational events


def _handler_fields(handler: Handler) -> dict[str, Any]:
    return {"handler_id": handler.id, "handler_name": handler.name, "handler_type": handler.type}


def handler_disabled(stores: Stores, handler: Handler, reason: str, now: datetime) -> None:
    """Herald disabled `handler` (once: the caller's conditional write made it so)."""
    owner = owner_of(handler.account)
    if owner is not None:  # the operational webhook itself: the inbox only
        notices.notify(
            stores.inbox,
            owner,
            "Your operational webhook was disabled",
            f"Herald disabled your operational webhook: {reason}. "
            "PUT /v1/operational-webhook again to enable it.",
            kind="handler_disabled",
            now=now,
        )
        return
    _emit(
        stores,
        handler,
        "handler_disabled",
        {**_handler_fields(handler), "reason": reason, "disabled_at": now.isoformat()},
        title=f"Notification handler '{handler.name}' was disabled",
        body=f"Herald disabled notification handler {handler.id} ({handler.type}): {reason}. "
        "Fix its settings and enable it again.",
        now=now,
    )


def delivery_exhausted(
    stores: Stores,
    handler: Handler,
    event: Event,
    result: SendResult,
    *,
    attempts: int,
    generation: int,
    now: datetime,
) -> None:
    """A delivery (of its `generation`: each replay is one) failed its last attempt and was
    dead-lettered. Its operational event's id is derived from the delivery, so the same
    exhaustion told again (its batch's records failed to write and the attempt was made
    again) is the same event: enqueued again, claimed once, and the same `webhook-id`."""
    if owner_of(handler.account) is not None:
        return
    seed = f"delivery_exhausted|{handler.id}|{event.id}|{generation}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
    _emit(
        stores,
        handler,
        "delivery_exhausted",
        {
            **_handler_fields(handler),
            "event_id": event.id,
            "event_type": event.type,
            "attempts": attempts,
            "http_status": result.http_status,
            "error": result.error,
        },
        title=f"A delivery to '{handler.name}' failed {attempts} times",
        body=f"Herald gave up delivering event {event.id} ({event.type}) to notification handler "
        f"{handler.id} after {attempts} attempts: {result.error}. Recover or replay it once fixed.",
        now=now,
        event_id=f"{int(event.created_at.timestamp()):08x}{digest}",
    )


def handler_recovered(stores: Stores, handler: Handler, failing_since: datetime, now: datetime) -> None:
    """A handler that had been failing since `failing_since` delivered again."""
    if owner_of(handler.account) is not None:
        return
    _emit(
        stores,
        handler,
        "handler_recovered",
        {
            **_handler_fields(handler),
            "failing_since": failing_since.isoformat(),
            "recovered_at": now.isoformat(),
        },
        title=f"Notification handler '{handler.name}' recovered",
        body=f"Notification handler {handler.id} ({handler.type}) delivered again after failing "
        f"since {failing_since.isoformat(timespec='seconds')}.",
        now=now,
    )


def _emit(
    stores: Stores,
    handler: Handler,
    kind: str,
    type_data: dict[str, Any],
    *,
    title: str,
    body: str,
    now: datetime,
    event_id: str | None = None,
) -> None:
    """The inbox notice, then the event (a new id unless given) to the operational webhook if
    one is enabled. An
    event SQS refuses is parked in the deliveries DLQ; any other failure here is logged and
    never fails the delivery that raised the event."""
    try:
        notices.notify(stores.inbox, handler.account, title, body, kind=kind, handler_id=handler.id, now=now)
        webhook = get_webhook(stores, handler.account)
        if webhook is None or not webhook.is_enabled:
            return
        event = Event(
            account=webhook.account,
            id=event_id or new_event_id(),
            type=kind,
            type_data=type_data,
            created_at=now,
        )
        stores.deliveries.put_event(event, int(now.timestamp()) + RETENTION_SECONDS)
        task = DeliveryTask(account=webhook.account, event_id=event.id, handler_id=webhook.id)
        try:
            enqueue([task])
        except QueueUnavailable as refused:  # parked, not lost: a redrive sends it
            clients.dead_letter(
                get_settings().deliveries_dlq, task.model_dump_json(), f"not queued: {refused}"
            )
        stores.deliveries.mark_fanned_out(webhook.account, event.id, [webhook.id])
    except Exception:
        logger.exception(
            "operational event %s was not sent",
            kind,
            extra={"fields": {"account": handler.account, "handler_id": handler.id, "event_type": kind}},
        )
