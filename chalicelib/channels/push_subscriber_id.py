"""Web Push to a browser subscription: RFC 8291 (aes128gcm) payload, RFC 8292 VAPID.

Built on http_ece and py_vapid, the libraries pywebpush uses, rather than pywebpush
itself: it would add aiohttp to the Lambda zip and send through its own HTTP client,
around the SSRF-guarded SafeSender every channel must use.

The payload is the JSON `{"title", "body", "url", "event_id", "type"}`, at most
MAX_PLAINTEXT bytes so that it fits one 4096-byte record with the aes128gcm header
(86 bytes) and the tag and padding delimiter (17 bytes); text that does not fit is cut
with the visible truncation marker (see `payload`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import CHAT_SCHEDULE, Channel, OutboundRequest
from chalicelib.channels.render import render
from chalicelib.models import push
from chalicelib.models.deliveries import Outcome, SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.text import truncate

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext
    from chalicelib.vapid import VapidConfig

MAX_PLAINTEXT = 3800
MAX_TITLE_BYTES = 512
MAX_URL_BYTES = 2100
PUSH_TTL_SECONDS = 86400
"""How long the push service keeps a message for an offline browser."""


def payload(event: Event, limit: int = MAX_PLAINTEXT) -> bytes:
    """The notification JSON for the service worker, at most `limit` bytes of UTF-8.

    When it is too big, an outsized title is cut to MAX_TITLE_BYTES and an outsized url
    dropped first (only hostile or broken events have those), then the body is cut to
    whatever room is left, so an ordinary long message keeps its title and link."""
    message = render(event)
    content: dict[str, Any] = {
        "title": message.title,
        "body": message.body,
        "url": message.link,
        "event_id": event.id,
        "type": event.type,
    }
    if _size(content) > limit and _size(content["title"]) > MAX_TITLE_BYTES:
        content["title"] = _cut(content["title"], lambda title: _size(title) <= MAX_TITLE_BYTES)
    if _size(content) > limit and _size(content["url"]) > MAX_URL_BYTES:
        content["url"] = None
    if _size(content) > limit:
        content["body"] = _cut(content["body"], lambda body: _size({**content, "body": body}) <= limit)
    if _size(content) > limit:  # only for limits far below MAX_PLAINTEXT
        content["url"] = None
    return _dump(content)


def _dump(content: Any) -> bytes:
    # Lone surrogates (valid in JSON text, not in UTF-8) become "?" rather than an error.
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def _size(content: Any) -> int:
    return len(_dump(content))


def _cut(text: str, fits: Callable[[str], bool]) -> str:
    """The longest `truncate(text, n)` that fits (just the marker if none does)."""
    low, high = 0, len(text) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if fits(truncate(text, middle)):
            low = middle
        else:
            high = middle - 1
    return truncate(text, low)


def encrypt(plaintext: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """RFC 8291 aes128gcm with a fresh ephemeral key: one record, the key id is our
    ephemeral public key, as the browser expects."""
    import http_ece
    from cryptography.hazmat.primitives.asymmetric import ec

    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        plaintext, private_key=ephemeral, dh=p256dh, auth_secret=auth, version="aes128gcm"
    )
    return body


def push_request(
    event: Event, subscriber: push.PushSubscriber, config: VapidConfig, now: datetime
) -> OutboundRequest:
    """The encrypted, VAPID-signed POST to the subscription's endpoint."""
    from chalicelib.vapid import authorization, b64url_decode

    body = encrypt(payload(event), b64url_decode(subscriber.p256dh), b64url_decode(subscriber.auth))
    headers = {
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(PUSH_TTL_SECONDS),
        "Urgency": "normal",
        "Authorization": authorization(config, subscriber.endpoint, now),
    }
    return OutboundRequest(subscriber.endpoint, body, headers)


class PushChannel(Channel):
    name = "push_subscriber_id"
    retry_schedule = CHAT_SCHEDULE
    gone_statuses = frozenset({404, 410})

    def deliver(self, event: Event, handler: Handler, context: DeliveryContext) -> SendResult:
        from chalicelib.vapid import VapidError

        config = context.vapid
        if config is None:
            return SendResult(Outcome.PERMANENT, None, "VAPID keys are not configured")
        stores, now = context.stores, context.now()
        ident = handler.settings.get("push_subscriber_id", "")
        subscriber = stores.push.get(handler.account, ident)
        if subscriber is None:
            return SendResult(Outcome.GONE, None, f"push subscriber {ident} no longer exists")
        if subscriber.expired(now):
            stores.push.delete(handler.account, ident)
            return SendResult(Outcome.GONE, None, f"push subscription {ident} expired")
        try:
            request = push_request(event, subscriber, config, now)
        except VapidError as exc:
            return SendResult(Outcome.PERMANENT, None, f"VAPID: {exc}")
        except ValueError as exc:  # keys stored before validation tightened, say
            return SendResult(Outcome.PERMANENT, None, f"the subscription's keys are unusable: {exc}")
        result = self.classify(context.sender.post(request.url, body=request.body, headers=request.headers))
        if result.outcome == Outcome.GONE:  # the browser unsubscribed: forget the subscription
            stores.push.delete(handler.account, ident)
        return result


CHANNEL = PushChannel()
