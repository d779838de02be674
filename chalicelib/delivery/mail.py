"""Email through Amazon SES v2 SendEmail, for the email channel and the services' confirmation links.

Not a channel: the services mail confirmation links without importing any channel's code, and
the email channel receives a `Mailer` in its delivery context instead of creating the client.
"""

from __future__ import annotations

import time
from typing import Protocol

from chalicelib import clients
from chalicelib.models.deliveries import Outcome, SendResult
from chalicelib.settings import get_settings
from chalicelib.text import truncate

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


class Mailer(Protocol):
    def send(self, to: list[str], subject: str, text: str, html_body: str) -> SendResult:
        """Mail a text and an HTML part to every address of `to` at once; a failure is
        classified like an HTTP answer."""
        ...


class SesMailer:
    """One SendEmail call per mail, from the configured sender address."""

    def __init__(self, from_address: str) -> None:
        self.from_address = from_address

    def send(self, to: list[str], subject: str, text: str, html_body: str) -> SendResult:
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        try:
            clients.client("sesv2").send_email(
                FromEmailAddress=self.from_address,
                Destination={"ToAddresses": to},
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
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            retry = code in RETRYABLE_SES_ERRORS or (status or 500) >= 500
            outcome = Outcome.RETRY if retry else Outcome.PERMANENT
            return SendResult(outcome, status, f"SES {code}: {error.get('Message', '')}")
        except BotoCoreError as exc:
            return SendResult(Outcome.RETRY, None, f"SES unreachable: {type(exc).__name__}")
        return SendResult(Outcome.SENT, 200, duration_ms=int((time.monotonic() - started) * 1000))


def ses_mailer() -> SesMailer:
    """The mailer for the configured sender (HERALD_EMAIL_SENDER, read on each call)."""
    return SesMailer(get_settings().email_sender)
