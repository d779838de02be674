"""Google Chat incoming webhooks: a cardsV2 card, and the title as the message text.

Card text is a small HTML subset, so event text is HTML-escaped there. The plain `text`
(what notifications show) has its own syntax, <users/all> and <url|label>: a zero-width
space after each "<" keeps event text from mentioning everyone or hiding a link.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import OutboundRequest, SendRate, json_request
from chalicelib.channels.chat import (
    TITLE_LIMIT,
    UNLIMITED,
    ZWSP,
    ChatChannel,
    chat_message,
    field_parts,
    fit,
    fit_all,
    json_size,
    shrink_order,
)
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext

MAX_BYTES = 32_000
"""Google Chat's limit for a whole message, text and cards, in UTF-8 bytes."""


def escape(text: str) -> str:
    return html.escape(text, quote=False).replace("\n", "<br>")


def text_escape(text: str) -> str:
    return text.replace("<", "<" + ZWSP)


def message_payload(card_id: str, text: str, parts: list[str], link: str | None) -> dict[str, Any]:
    title, body, *fields = parts
    widgets: list[dict[str, Any]] = [{"textParagraph": {"text": body}}] if body else []
    widgets += [
        {"decoratedText": {"topLabel": name, "text": value, "wrapText": True}}
        for name, value in zip(fields[::2], fields[1::2], strict=True)
    ]
    if link:
        button = {"text": "Open", "onClick": {"openLink": {"url": link}}}
        widgets.append({"buttonList": {"buttons": [button]}})
    card: dict[str, Any] = {"header": {"title": title}}
    if widgets:
        card["sections"] = [{"widgets": widgets}]
    return {"text": text, "cardsV2": [{"cardId": card_id, "card": card}]}


class GoogleChatChannel(ChatChannel):
    """404 means the space or the webhook was deleted: gone. 400 (a card Chat rejects) and
    401/403 (a revoked key or token, an admin policy) are permanent; 429 waits for
    Retry-After when given, else the schedule."""

    name = "google_chat"
    send_rate = SendRate(1)  # 60 messages a minute per space
    destination_setting = "google_chat"
    gone_statuses = frozenset({404, 410})
    error_paths = (("error", "message"), ("error", "status"))

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        message = chat_message(event)
        card_id = f"herald-{event.id}"
        text = fit(message.title, TITLE_LIMIT, text_escape)
        fields = field_parts(message)
        parts = fit_all(
            [(message.title, TITLE_LIMIT), (message.body, UNLIMITED), *fields],
            escape,
            total=lambda p: json_size(message_payload(card_id, text, p, message.link)) <= MAX_BYTES,
            order=shrink_order(len(fields) // 2, first=1, then=[0]),
        )
        payload = message_payload(card_id, text, parts, message.link)
        return json_request(handler.settings["google_chat"], payload)


CHANNEL = GoogleChatChannel()
