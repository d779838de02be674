"""A recording sender and mailer and a fixed clock: a channel's delivery context with no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.channels.base import SendResult
from chalicelib.delivery.context import DeliveryContext
from chalicelib.delivery.safe_http import HttpResult
from chalicelib.models.deliveries import Outcome
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
    """Records every POST and answers each with `answer` (200, empty, by default)."""

    answer: HttpResult = field(default_factory=lambda: HttpResult(200, {}, b"", 3, None))
    posted: list[Posted] = field(default_factory=list)

    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], deadline: float | None = None
    ) -> HttpResult:
        self.posted.append(Posted(url, body, dict(headers)))
        return self.answer


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html_body: str


@dataclass
class RecordingMailer:
    """Records every mail and answers `answer` (sent, by default)."""

    answer: SendResult = field(default_factory=lambda: SendResult(Outcome.SENT, 200))
    sent: list[Mail] = field(default_factory=list)

    def send(self, to: str, subject: str, text: str, html_body: str) -> SendResult:
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
