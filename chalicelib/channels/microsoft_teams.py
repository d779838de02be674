"""Microsoft Teams through a Workflows (Power Automate) webhook: one Adaptive Card 1.4.

TextBlocks and FactSets render a markdown subset whose only active syntax that matters is
the link. Teams clients disagree on backslash escapes, so event text gets a zero-width
space after every "]" instead: no [text](url), [text][ref] or [ref]: url can form, and
the text looks unchanged. The whole request must stay under Teams' 28 KB message limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.channels.base import OutboundRequest, SendRate, json_request
from chalicelib.channels.chat import (
    TITLE_LIMIT,
    UNLIMITED,
    ZWSP,
    ChatChannel,
    chat_message,
    field_parts,
    fit_all,
    json_size,
    shrink_order,
)
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext

MAX_BYTES = 28_000
"""Teams' "28 KB", read as the smaller decimal value, of the UTF-8 JSON we send."""


def escape(text: str) -> str:
    # A single newline is no line break in TextBlock markdown: a blank line is.
    return text.replace("]", "]" + ZWSP).replace("\n", "\n\n")


def card(title: str, body: str, facts: list[str], link: str | None) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
    ]
    if body:
        blocks.append({"type": "TextBlock", "text": body, "wrap": True})
    if facts:
        pairs = zip(facts[::2], facts[1::2], strict=True)
        blocks.append({"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in pairs]})
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": blocks,
    }
    if link:
        content["actions"] = [{"type": "Action.OpenUrl", "title": "Open", "url": link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}
        ],
    }


class MicrosoftTeamsChannel(ChatChannel):
    """Workflows answer 202 Accepted. 404 means the workflow was deleted: gone. 401/403 come
    from a bad signature in the URL or a tenant policy an admin may lift: permanent for
    this event, and the handler is disabled if they last. 429 waits for Retry-After."""

    name = "microsoft_teams"
    send_rate = SendRate(1, burst=4)  # connectors throttle past 4 requests a second
    destination_setting = "microsoft_teams"
    gone_statuses = frozenset({404, 410})
    error_paths = (("error", "message"), ("error", "code"))

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        message = chat_message(event)
        fields = field_parts(message)
        title, body, *facts = fit_all(
            [(message.title, TITLE_LIMIT), (message.body, UNLIMITED), *fields],
            escape,
            total=lambda p: json_size(card(p[0], p[1], p[2:], message.link)) <= MAX_BYTES,
            order=shrink_order(len(fields) // 2, first=1, then=[0]),
        )
        return json_request(handler.settings["microsoft_teams"], card(title, body, facts, message.link))


CHANNEL = MicrosoftTeamsChannel()
