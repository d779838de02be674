"""What a channel needs to deliver, built once by its caller (the worker, the test-send).

Channels take it instead of fetching the stores, the sender, the clock or the configuration
themselves, so a unit test hands them `memory_stores()`, a recording sender and a fixed
clock, and no channel knows where these come from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chalicelib import clock
from chalicelib.delivery.mail import Mailer, SesMailer
from chalicelib.delivery.safe_http import HttpResult, SafeSender
from chalicelib.settings import Settings, get_settings
from chalicelib.storage.stores import Stores
from chalicelib.vapid import VapidConfig, vapid_config

POOL_SIZE = 10
"""Deliveries of one batch run at once; the sender keeps as many connections per host."""


class Sender(Protocol):
    def post(
        self, url: str, *, body: bytes, headers: Mapping[str, str], deadline: float | None = None
    ) -> HttpResult:
        """POST `body`; remote trouble is answered, never raised."""
        ...


@dataclass(frozen=True)
class DeliveryContext:
    stores: Stores
    sender: Sender
    mailer: Mailer
    now: Callable[[], datetime]
    settings: Settings
    vapid: VapidConfig | None
    """None when no VAPID key is configured (push deliveries then fail permanently)."""


def delivery_context(
    stores: Stores, sender: Sender | None = None, now: Callable[[], datetime] | None = None
) -> DeliveryContext:
    """The context on the configuration as it is now; the container's pooled sender unless
    another is given."""
    settings = get_settings()
    return DeliveryContext(
        stores=stores,
        sender=sender or get_sender(),
        mailer=SesMailer(settings.email_sender),
        now=now or clock.now,
        settings=settings,
        vapid=vapid_config(),
    )


_sender: SafeSender | None = None
_sender_lock = threading.Lock()


def get_sender() -> SafeSender:
    """One pooled sender per container, sized to the batch concurrency."""
    global _sender  # noqa: PLW0603 - a per-container singleton, like the AWS clients
    with _sender_lock:
        if _sender is None:
            settings = get_settings()
            _sender = SafeSender(
                pool_size=POOL_SIZE,
                allow_private=settings.allow_private_targets,
                deadline=settings.delivery_deadline_seconds,
            )
        return _sender


def reset_sender() -> None:
    """Close the container's sender; the next use builds one on the configuration then."""
    global _sender  # noqa: PLW0603
    with _sender_lock:
        if _sender is not None:
            _sender.close()
        _sender = None
