"""Test notifications: the same channel, renderer, limits and sender as real events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.channels import get_channel
from chalicelib.delivery.attempts import attempt_log, count_hours
from chalicelib.delivery.context import delivery_context
from chalicelib.models.deliveries import AttemptStatus, Outcome, SendResult
from chalicelib.models.events import Event, new_event_id
from chalicelib.models.handlers import Handler
from chalicelib.storage.stores import Stores


def test_event(
    handler: Handler, now: datetime, app_id: str | None = None, user: dict[str, Any] | None = None
) -> Event:
    """The test notification: a complete event of the handler's app, sent by `user`."""
    return Event(
        account=handler.account,
        id=new_event_id(),
        type="test",
        app=handler.app or None,
        app_id=app_id if handler.app else None,
        user=user,
        type_data={"message": f"Test notification from Herald for handler '{handler.name}'."},
        created_at=now,
    )


def send_test(
    stores: Stores, handler: Handler, *, app_id: str | None = None, user: dict[str, Any] | None = None
) -> SendResult:
    """Deliver a test event synchronously and log it like any attempt (one try, no retry).

    `app_id` is the id of the handler's app and `user` the caller, as the face knows them."""
    missing = handler.missing_settings()
    if missing:  # created awaiting its setup: there is nothing to send to yet
        return SendResult(Outcome.PERMANENT, error=f"not set up yet: {', '.join(missing)} missing")
    context = delivery_context(stores)
    now = context.now()
    event = test_event(handler, now, app_id, user)
    result = get_channel(handler.type).deliver(event, handler, context)
    status = AttemptStatus.DELIVERED if result.outcome == Outcome.SENT else AttemptStatus.FAILED
    noted = stores.handlers.note_attempts(handler, [status], now)
    if noted is not None:
        logged = attempt_log(event, result, seq=noted.seq, attempt=1, status=status, now=now)
        stores.deliveries.log_attempt(handler.account, handler.id, logged)
        count_hours(stores, [(handler.account, logged)])
    return result
