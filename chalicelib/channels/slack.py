"""Slack incoming webhooks: Block Kit (header, mrkdwn sections, fields) plus a fallback text.

Slack parses &, < and > in every text object (links, <!channel>, <@user>), so event text
gets exactly those three escaped, as Slack asks; nothing else needs escaping.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import OutboundRequest, SendRate, json_request
from chalicelib.channels.chat import ChatChannel, chat_message, field_parts, fit, fit_all, utf16_len
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext

HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_PER_SECTION = 10
FALLBACK_LIMIT = 3000
"""Slack truncates `text` far later (40,000), but it is only read in notifications."""


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link_markup(url: str) -> str:
    """`<url|Open>`, or the address as plain text when it is too long to be a link."""
    markup = f"<{escape(url).replace('|', '%7C')}|Open>"
    return markup if utf16_len(markup) <= SECTION_LIMIT else fit(url, SECTION_LIMIT, escape)


class SlackChannel(ChatChannel):
    """403 (action_prohibited), 404 (channel_not_found, no_service) and 410
    (channel_is_archived) mean the webhook will never work again: gone. 400 invalid_payload,
    no_text... are permanent; 429 waits for Retry-After."""

    name = "slack"
    gone_statuses = frozenset({403, 404, 410})
    send_rate = SendRate(1)  # "1 message per second" per incoming webhook, short bursts allowed
    destination_setting = "slack"

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        message = chat_message(event)
        # A field's text is "*name*\nvalue": NAME_LIMIT + VALUE_LIMIT keep it far below FIELD_LIMIT.
        title, body, *fields = fit_all(
            [
                (message.title, HEADER_LIMIT),
                (message.body, SECTION_LIMIT),
                *field_parts(message),
            ],
            escape,
        )
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}
        ]
        if body:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
        texts = [f"*{name}*\n{value}" for name, value in zip(fields[::2], fields[1::2], strict=True)]
        for start in range(0, len(texts), FIELDS_PER_SECTION):
            chunk = texts[start : start + FIELDS_PER_SECTION]
            blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": t} for t in chunk]})
        if message.link:
            blocks.append(
                {"type": "context", "elements": [{"type": "mrkdwn", "text": link_markup(message.link)}]}
            )
        payload = {"text": fit(message.plain_text(), FALLBACK_LIMIT, escape), "blocks": blocks}
        return json_request(handler.settings["slack"], payload)


CHANNEL = SlackChannel()
