"""Discord execute-webhook: one embed, no content, and `allowed_mentions` that pings nobody.

Embeds render markdown, including masked links [text](url): event text has Discord's
markdown characters backslash-escaped and a zero-width space after a word-initial @, so
neither a fake link nor @everyone can come out of it (allowed_mentions is the second lock).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC
from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import OutboundRequest, SendRate, json_request
from chalicelib.channels.chat import (
    ChatChannel,
    chat_message,
    defuse_mentions,
    field_parts,
    fit_all,
    json_value,
    number,
    shrink_order,
    utf16_len,
)
from chalicelib.models.deliveries import SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext
    from chalicelib.delivery.safe_http import HttpResult

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
EMBED_LIMIT = 6000
"""Title, description, field names and values together."""
_MARKDOWN = re.compile(r"([\\*_~`|<>\[\]])")
_LINE_START = re.compile(r"(?m)^(\s*)([#-])")  # headings, lists and -# subtext


def escape(text: str) -> str:
    text = _MARKDOWN.sub(r"\\\1", defuse_mentions(text))
    return _LINE_START.sub(r"\1\\\2", text)


class DiscordChannel(ChatChannel):
    """401 (invalid webhook token), 403 and 404 (unknown webhook: deleted) are gone; 429
    waits for the body's `retry_after` (float seconds), or Retry-After."""

    name = "discord"
    gone_statuses = frozenset({401, 403, 404})
    error_paths = (("message",),)
    send_rate = SendRate(2.5, burst=5)  # a webhook's bucket: 5 requests per 2 s
    destination_setting = "discord"

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        message = chat_message(event)
        fields = field_parts(message, FIELD_NAME_LIMIT, FIELD_VALUE_LIMIT)
        title, description, *texts = fit_all(
            [(message.title, TITLE_LIMIT), (message.body, DESCRIPTION_LIMIT), *fields],
            escape,
            total=lambda parts: sum(utf16_len(p) for p in parts) <= EMBED_LIMIT,
            order=shrink_order(len(fields) // 2, first=1, then=[0]),
        )
        created = event.created_at
        moment = created if created.tzinfo else created.replace(tzinfo=UTC)  # Discord needs the offset
        embed: dict[str, Any] = {"title": title, "timestamp": moment.isoformat(timespec="seconds")}
        if description:
            embed["description"] = description
        if message.link:
            embed["url"] = message.link
        if texts:
            embed["fields"] = [
                {"name": name, "value": value, "inline": True}
                for name, value in zip(texts[::2], texts[1::2], strict=True)
            ]
        payload = {"embeds": [embed], "allowed_mentions": {"parse": []}}
        return json_request(handler.settings["discord"], payload)

    def retry_after(self, result: HttpResult) -> float | None:
        waited = number(json_value(result.body, "retry_after"))
        return waited if waited is not None else super().retry_after(result)

    def classify(self, result: HttpResult) -> SendResult:
        """Discord names its bucket's state on every answer: an emptied bucket (Remaining
        0) holds the webhook until it refills (Reset-After), before any 429."""
        sent = super().classify(result)
        if sent.retry_after is None and result.headers.get("X-RateLimit-Remaining") == "0":
            return replace(sent, retry_after=number(result.headers.get("X-RateLimit-Reset-After")))
        return sent


CHANNEL = DiscordChannel()
