"""The in-app inbox: the rendered event goes into the account's inbox, no outbound call."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.channels.base import Channel
from chalicelib.channels.render import render
from chalicelib.delivery.notices import new_notification
from chalicelib.models import inbox
from chalicelib.models.deliveries import Outcome, SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.storage.table import Cancelled

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext


def notification(event: Event, handler: Handler, now: datetime) -> inbox.Notification:
    """The inbox item for `event` x `handler`; its id depends only on them, so a redelivery
    finds the item already there."""
    message = render(event)
    return new_notification(
        notification_id=inbox.notification_id(event.created_at, f"{event.id}\n{handler.id}"),
        kind=event.type,
        title=message.title,
        body=message.body,
        link=message.link,
        fields=list(message.fields),
        event_id=event.id,
        handler_id=handler.id,
        created_at=event.created_at,
        now=now,
    )


class InternalNotificationChannel(Channel):
    name = "internal_notification"

    def deliver(self, event: Event, handler: Handler, context: DeliveryContext) -> SendResult:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            context.stores.inbox.add(handler.account, notification(event, handler, context.now()))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            return SendResult(Outcome.RETRY, None, f"inbox write failed: {code}")
        except Cancelled as exc:  # the inbox's transaction, cancelled by throttling
            return SendResult(Outcome.RETRY, None, f"inbox write failed: {exc.code}")
        except BotoCoreError as exc:
            return SendResult(Outcome.RETRY, None, f"inbox write failed: {type(exc).__name__}")
        return SendResult(Outcome.SENT)


CHANNEL = InternalNotificationChannel()
