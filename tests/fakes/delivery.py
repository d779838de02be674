"""A recording sender and mailer and a fixed clock: a channel's delivery context with no I/O."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from botocore.awsrequest import AWSResponse

from chalicelib.delivery.context import DeliveryContext
from chalicelib.delivery.safe_http import HttpResult
from chalicelib.models.deliveries import Outcome, Prefetched, SendResult
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores
from chalicelib.vapid import VapidConfig
from tests.fakes.stores import memory_stores


@dataclass(frozen=True)
class Posted:
    url: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RecordingSender:
    """Records every POST and answers each with `answer` (200, empty, by default), or with
    `answers[url]` for the URLs given there."""

    answer: HttpResult = field(default_factory=lambda: HttpResult(200, {}, b"", 3, None))
    posted: list[Posted] = field(default_factory=list)
    answers: dict[str, HttpResult] = field(default_factory=dict)

    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], deadline: float | None = None
    ) -> HttpResult:
        self.posted.append(Posted(url, body, dict(headers)))
        return self.answers.get(url, self.answer)


@dataclass(frozen=True)
class Mail:
    to: list[str]
    subject: str
    text: str
    html_body: str


@dataclass
class RecordingMailer:
    """Records every mail and answers `answer` (sent, by default)."""

    answer: SendResult = field(default_factory=lambda: SendResult(Outcome.SENT, 200))
    sent: list[Mail] = field(default_factory=list)

    def send(self, to: list[str], subject: str, text: str, html_body: str) -> SendResult:
        self.sent.append(Mail(to, subject, text, html_body))
        return self.answer


def fake_context(
    now: datetime,
    *,
    stores: Stores | None = None,
    sender: RecordingSender | None = None,
    mailer: RecordingMailer | None = None,
    vapid: VapidConfig | None = None,
    **settings: Any,
) -> DeliveryContext:
    """A context at the fixed time `now` on fakes; `settings` override the configuration."""
    return DeliveryContext(
        stores=stores or memory_stores(),
        sender=sender or RecordingSender(),
        mailer=mailer or RecordingMailer(),
        now=lambda: now,
        settings=replace(get_settings(), **settings),
        vapid=vapid,
    )


@dataclass(frozen=True)
class SqsCall:
    operation: str
    params: dict[str, Any]


class RecordingQueues:
    """Answers every SQS call of one boto3 client from memory and records its parameters.

    Attached to the client `chalicelib.clients` hands out (botocore's own hooks, as its
    Stubber uses them), so the code under test runs unchanged and no request leaves the
    process. Queue URLs are made up from the queue's name; every other call succeeds."""

    def __init__(self, client: Any) -> None:
        self.calls: list[SqsCall] = []
        self.refuse_batches = False
        """Answer every SendMessageBatch entry as failed (SQS refusing messages)."""
        self._lock = threading.Lock()
        client.meta.events.register("before-parameter-build.sqs.*", self._record)
        client.meta.events.register_first("before-call.sqs.*", self._answer)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.calls.append(SqsCall(model.name, dict(params)))

    def _answer(self, model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        ok = AWSResponse(None, 200, {}, None)
        with self._lock:
            params = next(c.params for c in reversed(self.calls) if c.operation == model.name)
        if model.name == "GetQueueUrl":
            return ok, {"QueueUrl": queue_url(params["QueueName"])}
        if model.name == "SendMessageBatch" and self.refuse_batches:
            failed = [
                {"Id": e["Id"], "SenderFault": False, "Code": "ServiceUnavailable"} for e in params["Entries"]
            ]
            return ok, {"Successful": [], "Failed": failed}
        if model.name == "SendMessageBatch":
            return ok, {"Successful": [{"Id": e["Id"]} for e in params["Entries"]], "Failed": []}
        return ok, {}

    def made(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every `operation` call (e.g. "SendMessage"), in order."""
        with self._lock:
            return [c.params for c in self.calls if c.operation == operation]

    def visibility_changes(self) -> list[dict[str, Any]]:
        """Every message made invisible for a while (QueueUrl, ReceiptHandle,
        VisibilityTimeout), one by one or in batches."""
        return self._one_by_one("ChangeMessageVisibility")

    def parked(self) -> list[dict[str, Any]]:
        """Every message sent to a dead-letter queue (QueueUrl, MessageBody,
        MessageAttributes), one by one or in batches."""
        return [sent for sent in self._one_by_one("SendMessage") if sent["QueueUrl"].endswith("-dlq")]

    def _one_by_one(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of `operation` and of its batch form, one dict per message."""
        found = []
        with self._lock:
            for call in self.calls:
                if call.operation == operation:
                    found.append(call.params)
                elif call.operation == f"{operation}Batch":
                    url = call.params["QueueUrl"]
                    found += [
                        {"QueueUrl": url, **{k: v for k, v in entry.items() if k != "Id"}}
                        for entry in call.params["Entries"]
                    ]
        return found


def queue_url(name: str) -> str:
    """The URL `RecordingQueues` gives the queue `name`."""
    return f"https://sqs.us-east-1.amazonaws.com/000000000000/{name}"


def unread_keys(fetched: Prefetched) -> int:
    """How many keys a batch read could not answer for."""
    return len(fetched.unread_handlers) + len(fetched.unread_events) + len(fetched.unread_deliveries)
