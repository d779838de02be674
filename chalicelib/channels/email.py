"""Email: the event as a text and an HTML part, sent by the context's mailer (SES v2) in one
mail to the handler's confirmed addresses."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from chalicelib.channels.base import Channel
from chalicelib.channels.render import Message, render
from chalicelib.models.deliveries import Outcome, SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext


def html_part(message: Message) -> str:
    """The HTML body; every event-supplied string is escaped."""
    rows = "".join(
        f"<tr><th align='left'>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in message.fields
    )
    link = f"<p><a href='{html.escape(message.link)}'>Open</a></p>" if message.link else ""
    return (
        f"<h2>{html.escape(message.title)}</h2><p>{html.escape(message.body)}</p>"
        f"{'<table>' + rows + '</table>' if rows else ''}{link}"
    )


class EmailChannel(Channel):
    name = "email"

    def deliver(self, event: Event, handler: Handler, context: DeliveryContext) -> SendResult:
        recipients = handler.recipients()
        if not recipients:
            return SendResult(
                Outcome.PERMANENT, None, "no address has confirmed yet: follow the link mailed to it"
            )
        message = render(event)
        return context.mailer.send(recipients, message.title, message.plain_text(), html_part(message))


CHANNEL = EmailChannel()
