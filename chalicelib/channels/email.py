"""Email through Amazon SES v2 SendEmail: a text and an HTML part from a configured sender."""

from __future__ import annotations

import html
import time
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib import clients
from chalicelib.channels.base import Channel, SendResult
from chalicelib.channels.render import Message, render, truncate
from chalicelib.models.deliveries import Outcome
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from chalicelib.delivery.safe_http import SafeSender

MAX_SUBJECT = 200
RETRYABLE_SES_ERRORS = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "Throttling",
        "ThrottlingException",
        "SendingPausedException",
    }
)


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


def send_email(to: str, subject: str, text: str, html_body: str) -> SendResult:
    """One SendEmail call, its failure classified like an HTTP answer."""
    from botocore.exceptions import BotoCoreError, ClientError

    started = time.monotonic()
    try:
        clients.client("sesv2").send_email(
            FromEmailAddress=get_settings().email_sender,
            Destination={"ToAddresses": [to]},
            Content={
                "Simple": {
                    "Subject": {
                        "Data": truncate(subject.replace("\n", " "), MAX_SUBJECT),
                        "Charset": "UTF-8",
                    },
                    "Body": {
                        "Text": {"Data": text, "Charset": "UTF-8"},
                        "Html": {"Data": html_body, "Charset": "UTF-8"},
                    },
                }
            },
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        outcome = (
            Outcome.RETRY if code in RETRYABLE_SES_ERRORS or (status or 500) >= 500 else Outcome.PERMANENT
        )
        return SendResult(outcome, status, f"SES {code}: {exc.response.get('Error', {}).get('Message', '')}")
    except BotoCoreError as exc:
        return SendResult(Outcome.RETRY, None, f"SES unreachable: {type(exc).__name__}")
    return SendResult(Outcome.SENT, 200, duration_ms=int((time.monotonic() - started) * 1000))


class EmailChannel(Channel):
    name = "email"

    def deliver(self, event: Event, handler: Handler, sender: SafeSender, now: datetime) -> SendResult:
        message = render(event)
        return send_email(handler.settings["email"], message.title, message.plain_text(), html_part(message))


CHANNEL = EmailChannel()
