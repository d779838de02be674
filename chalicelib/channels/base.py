"""The channel interface: render an event into a request, classify the answer.

A channel never does network I/O itself: `render` is pure and the context's sender sends
what it returns. Channels whose platform is not an HTTP endpoint we call directly (email
through the context's mailer, the in-app inbox through its store) override `deliver`.
Everything a channel uses comes in the `DeliveryContext` its caller built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from chalicelib.models.deliveries import Outcome, SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext
    from chalicelib.delivery.safe_http import HttpResult

# Svix's schedule: seconds to wait after each failed attempt (8 attempts in all).
WEBHOOK_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)
# Chat messages lose their point when hours late: 7 attempts within about 1.5 h.
CHAT_SCHEDULE = (5, 30, 120, 600, 1800, 3600)
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendRate:
    """How fast one destination takes messages: `per_second` on average, `burst` at once."""

    per_second: float
    burst: int = 1

    @property
    def interval_ms(self) -> int:
        return max(1, round(1000 / self.per_second))


def json_request(url: str, payload: Any, headers: dict[str, str] | None = None) -> OutboundRequest:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return OutboundRequest(url, body, {"Content-Type": "application/json", **(headers or {})})


def retry_after_seconds(headers: Any) -> float | None:
    """A Retry-After header in seconds (delta form; HTTP dates are rare from these APIs)."""
    raw = headers.get("Retry-After") if headers is not None else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


class Channel:
    """Base channel: standard HTTP classification, Svix-like retry schedule."""

    name: ClassVar[str]
    retry_schedule: ClassVar[tuple[int, ...]] = WEBHOOK_SCHEDULE
    gone_statuses: ClassVar[frozenset[int]] = frozenset({410})
    send_rate: ClassVar[SendRate | None] = None
    """The platform's published limit per destination; None: sent unpaced unless the
    handler sets `rate_limit_per_second`."""
    destination_setting: ClassVar[str | None] = None
    """The setting that names what the platform's limit counts (its webhook URL)."""

    def destination(self, handler: Handler) -> str:
        """What the platform limits: the same for every handler sending to it."""
        if self.destination_setting is not None:
            return handler.settings.get(self.destination_setting, "")
        return f"handler {handler.account}/{handler.id}"

    def platform_rate(self, handler: Handler) -> SendRate | None:
        return self.send_rate

    def rate_for(self, handler: Handler) -> SendRate | None:
        """The handler's own rate if it sets one, else the platform's."""
        if handler.rate_limit_per_second:
            return SendRate(handler.rate_limit_per_second)
        return self.platform_rate(handler)

    def shared_limits(self, handler: Handler) -> dict[str, SendRate]:
        """Limits the platform counts across destinations (Telegram's per bot), by what
        they count; a delivery waits for the latest of its slots. None by default."""
        return {}

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        """The request for `event`, from the context's clock and settings only (no I/O)."""
        raise NotImplementedError

    def deliver(self, event: Event, handler: Handler, context: DeliveryContext) -> SendResult:
        request = self.render(event, handler, context)
        return self.classify(context.sender.post(request.url, body=request.body, headers=request.headers))

    def classify(self, result: HttpResult) -> SendResult:
        """2xx sent; refused target permanent; no answer, 5xx, 408/409/425/429 retry;
        the channel's gone statuses disable the handler; other 3xx/4xx permanent."""
        status = result.status
        ms = result.duration_ms
        if result.refused:
            return SendResult(Outcome.PERMANENT, None, result.error, duration_ms=ms)
        if status is None:
            return SendResult(Outcome.RETRY, None, result.error or "no response", duration_ms=ms)
        if 200 <= status < 300:
            return SendResult(Outcome.SENT, status, result.error, duration_ms=ms)  # e.g. a cut body
        error = f"HTTP {status}: {_snippet(result.body)}".rstrip(": ")
        if status in self.gone_statuses:
            return SendResult(Outcome.GONE, status, error, duration_ms=ms)
        if status in RETRYABLE_4XX or status >= 500:
            retry_after = self.retry_after(result)
            return SendResult(Outcome.RETRY, status, error, retry_after=retry_after, duration_ms=ms)
        if 300 <= status < 400:
            error = f"HTTP {status}: redirects are not followed; use the final URL"
        return SendResult(Outcome.PERMANENT, status, error, duration_ms=ms)

    def retry_after(self, result: HttpResult) -> float | None:
        """How long the platform asked us to wait; channels read their own 429 bodies."""
        return retry_after_seconds(result.headers)


def _snippet(body: bytes, limit: int = 200) -> str:
    return body[:limit].decode("utf-8", "replace").strip()
