"""Per-destination send rates: a delivery takes its destination's next send slot before it
is claimed; one whose slot is a second or more away is held back in the queue until then,
without an attempt counted, and a 429's Retry-After holds the destination for every sender.

A held delivery is sent again as a new message that carries its slot (`not_before`) with an
SQS delay, rather than made invisible: it then goes at its slot without taking another, and
waiting never uses up the queue's receive count (its redrive to the DLQ) or the retry schedule.
A long retry waits the same way, carrying when it is due (`due_at`; see the worker).
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

from chalicelib import clients
from chalicelib.channels import get_channel
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.models.handlers import Handler
from chalicelib.storage.stores import Stores

logger = logging.getLogger("herald.delivery")

HOLD_BACK_MS = 1000
"""A slot at least this far away is waited for in the queue; a nearer one in the worker."""
MAX_SQS_DELAY_SECONDS = 900
"""SQS's longest DelaySeconds: a slot further away is waited for in several holds."""


def destination_id(handler: Handler) -> str:
    """The digest naming the handler's destination in the table (never a URL or token)."""
    return _digest(handler.type, get_channel(handler.type).destination(handler))


def _digest(channel: str, counted: str) -> str:
    return hashlib.sha256(f"{channel}\n{counted}".encode()).hexdigest()[:32]


def reserve(stores: Stores, handler: Handler, now_ms: int) -> int | None:
    """The slot (epoch ms) the handler's next delivery may go at: the latest of its
    destination's slot and those of the limits its platform shares across destinations
    (a Telegram bot's); None if it is unpaced."""
    channel = get_channel(handler.type)
    rate = channel.rate_for(handler)
    limits = {destination_id(handler): rate} if rate is not None else {}
    limits |= {
        _digest(handler.type, counted): shared for counted, shared in channel.shared_limits(handler).items()
    }
    if not limits:
        return None
    return max(
        stores.destinations.reserve_slot(key, interval_ms=limit.interval_ms, burst=limit.burst, now_ms=now_ms)
        for key, limit in limits.items()
    )


def hold_destination(stores: Stores, handler: Handler, seconds: float, now_ms: int) -> None:
    """The destination asked us to wait: no sender takes a slot before then. Unpaced
    destinations (webhooks without a rate) keep no slots: only their message waits."""
    if get_channel(handler.type).rate_for(handler) is None:
        return
    try:
        stores.destinations.hold(destination_id(handler), now_ms + math.ceil(seconds * 1000))
    except Exception:
        logger.exception("could not hold the destination of handler %s", handler.id)


def hold_back(queue_name: str, held: list[tuple[dict[str, Any], DeliveryTask, int]], now_ms: int) -> set[str]:
    """Send each (record, message to send in its place, when it is due (epoch ms)) again,
    delayed until then (at most SQS's 15 minutes: a later one waits again on arrival), in one
    SendMessageBatch; the message ids of those SQS refused (they must be retried)."""
    if not held:
        return set()
    entries = [
        {
            "Id": str(index),
            "MessageBody": task.model_dump_json(exclude_none=True),
            "DelaySeconds": min(MAX_SQS_DELAY_SECONDS, max(0, math.ceil((due - now_ms) / 1000))),
        }
        for index, (_, task, due) in enumerate(held)
    ]
    try:
        answer = clients.client("sqs").send_message_batch(
            QueueUrl=clients.queue_url(queue_name), Entries=entries
        )
    except Exception:
        logger.exception("could not hold back %d deliveries", len(held))
        return {record["messageId"] for record, _, _ in held}
    return {held[int(failed["Id"])][0]["messageId"] for failed in answer.get("Failed", [])}
