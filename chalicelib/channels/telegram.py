"""Telegram Bot API sendMessage in HTML parse mode, link previews off.

The bot token is a credential that Telegram puts in the URL path: it goes nowhere else,
and `deliver` scrubs it from any error text as a last line of defence (SafeSender's
errors name only scheme://host:port, and Telegram does not echo it).
"""

from __future__ import annotations

import html
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import quote

from chalicelib.channels.base import OutboundRequest, SendRate, json_request
from chalicelib.channels.chat import (
    TITLE_LIMIT,
    UNLIMITED,
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

BOT_RATE = SendRate(30)
"""Telegram's limit per bot over all its chats (its Bot FAQ: "no more than 30 messages per second")."""
TEXT_LIMIT = 4096
"""Telegram counts after parsing the HTML; we count the markup too, which is stricter."""


def _bot_id(handler: Handler) -> str:
    """The token's public half: the bot's id (the half after ':' is the secret)."""
    return handler.settings.get("telegram", "").partition(":")[0]


def escape(text: str) -> str:
    """&, < and > as entities: all that Telegram's HTML mode needs."""
    return html.escape(text, quote=False)


def compose(parts: list[str]) -> str:
    """Bold title, body, "Name: value" lines, then the link (Telegram makes it clickable)."""
    title, body, *fields, link = parts
    lines = [f"<b>{title}</b>"]
    if body:
        lines.append(body)
    if fields:
        lines.append("")
        lines += [f"<b>{name}:</b> {value}" for name, value in zip(fields[::2], fields[1::2], strict=True)]
    if link:
        lines += ["", link]
    return "\n".join(lines)


class TelegramChannel(ChatChannel):
    """401 Unauthorized is a revoked or wrong bot token: gone, no message will ever pass.
    400 "chat not found" and 403 "bot was blocked by the user" / "kicked" are permanent
    (a user can unblock the bot; the handler is disabled if it lasts). A 404 means a
    malformed token, but also a misconfigured HERALD_TELEGRAM_API_URL, so it does not
    disable every Telegram handler at once: permanent. 429 waits parameters.retry_after."""

    name = "telegram"
    gone_statuses = frozenset({401})
    error_paths = (("description",),)

    def destination(self, handler: Handler) -> str:
        """Telegram limits each bot per chat: the bot's id (the token's public half) and the chat."""
        return f"{_bot_id(handler)}/{handler.settings.get('telegram_chat_id', '')}"

    def shared_limits(self, handler: Handler) -> dict[str, SendRate]:
        """And each bot across all its chats: about 30 messages a second."""
        return {f"bot {_bot_id(handler)}": BOT_RATE}

    def platform_rate(self, handler: Handler) -> SendRate | None:
        """One message a second to a chat; a group (negative id) takes 20 a minute."""
        if handler.settings.get("telegram_chat_id", "").startswith("-"):
            return SendRate(20 / 60)
        return SendRate(1)

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        message = chat_message(event)
        # Telegram turns @name into a mention that notifies a group member: not from event text.
        fields = [(defuse_mentions(text), limit) for text, limit in field_parts(message)]
        parts = fit_all(
            [
                (defuse_mentions(message.title), TITLE_LIMIT),
                (defuse_mentions(message.body), UNLIMITED),
                *fields,
                (message.link or "", UNLIMITED),
            ],
            escape,
            total=lambda p: utf16_len(compose(p)) <= TEXT_LIMIT,
            order=shrink_order(len(fields) // 2, first=1, then=[0, len(fields) + 2]),
        )
        # Quoted, so a stray "?", "#" or "/" in a pasted token cannot move part of it out of the path.
        token = quote(handler.settings["telegram"], safe=":")
        url = f"{context.settings.telegram_api_url}/bot{token}/sendMessage"
        payload = {
            "chat_id": handler.settings["telegram_chat_id"],
            "text": compose(parts),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        return json_request(url, payload)

    def deliver(self, event: Event, handler: Handler, context: DeliveryContext) -> SendResult:
        sent = super().deliver(event, handler, context)
        error = sent.error
        token = handler.settings["telegram"]
        for secret in (token, quote(token, safe=":"), token.partition(":")[2]):
            if error and len(secret) >= 8:
                error = error.replace(secret, "<token>")
        return sent if error == sent.error else replace(sent, error=error)

    def classify(self, result: HttpResult) -> SendResult:
        sent = super().classify(result)
        moved = json_value(result.body, "parameters", "migrate_to_chat_id")
        if moved is not None and sent.error:
            error = f"{sent.error} (the group is now chat {moved}: update telegram_chat_id)"
            return replace(sent, error=error)
        return sent

    def retry_after(self, result: HttpResult) -> float | None:
        waited = number(json_value(result.body, "parameters", "retry_after"))
        return waited if waited is not None else super().retry_after(result)


CHANNEL = TelegramChannel()
