"""X API v2 `POST /2/tweets`, signed with OAuth 1.0a in the user's context.

A post holds 280 *weighted* characters (twitter-text v3): most scripts and punctuation
count 1, other characters (CJK, emoji) 2, and every URL X recognises counts 23 whatever
its length. We count so that we never under-count: emoji sequences and text that merely
looks like a domain ("main.py") may cost us a few characters, a post X refuses cannot.
"""

from __future__ import annotations

import re
import time
import unicodedata
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.channels.base import OutboundRequest, json_request
from chalicelib.channels.chat import UNLIMITED, ChatChannel, chat_message, defuse_mentions, fit_all, number
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler

if TYPE_CHECKING:
    from chalicelib.delivery.context import DeliveryContext
    from chalicelib.delivery.safe_http import HttpResult

POST_LIMIT = 280
URL_WEIGHT = 23
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
"""Code point ranges weighing 1 (twitter-text v3 configuration); everything else weighs 2."""
_DOMAIN_LIKE = re.compile(r"\w\.[^\W\d_]{2,}")
"""The end of a domain name: X may make a link of what surrounds it, which costs 23."""
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SHORTENED = re.compile(
    rf"https?://(?:{_LABEL}\.)+(?P<tld>[A-Za-z]{{2,63}})(?::\d{{1,5}})?"
    r"(?:/[A-Za-z0-9._~:/?#\[\]!$&'*+,;=%-]*[A-Za-z0-9/])?/?"
)
"""A link X shortens whole: plain ASCII, a host name, no character that ends X's match early."""
_PRIVATE_TLDS = frozenset(
    {"local", "localhost", "localdomain", "internal", "intranet", "lan", "home", "corp", "private"}
    | {"test", "example", "invalid"}
)
MAX_SHORTENED = 2048


def _char_weight(char: str) -> int:
    code = ord(char)
    return 1 if any(low <= code <= high for low, high in _LIGHT) else 2


def _weight(text: str) -> int:
    return sum(_char_weight(c) for c in text)


def _is_shortened(token: str) -> bool:
    found = _SHORTENED.fullmatch(token) if len(token) <= MAX_SHORTENED else None
    return found is not None and found["tld"].lower() not in _PRIVATE_TLDS


def _token_length(token: str) -> int:
    if _is_shortened(token):
        return URL_WEIGHT
    total = _weight(token)
    for match in _DOMAIN_LIKE.finditer(token):
        weight = _weight(match.group())
        total += max(weight, URL_WEIGHT) - weight
    return total


def weighted_length(text: str) -> int:
    """An upper bound of X's count: a whitespace-separated link X surely shortens counts 23,
    every other stretch that ends like a domain name at least 23, the rest per character."""
    return sum(_token_length(token) for token in re.split(r"(\s+)", text) if token)


def compose(title: str, body: str, link: str) -> str:
    return "\n".join(part for part in (title, body, link) if part)


def post_length(title: str, body: str, link: str) -> int:
    return weighted_length(compose(title, body, link))


def authorization(url: str, handler: Handler, now: datetime) -> str:
    """The OAuth 1.0a HMAC-SHA1 header; a JSON body is not part of the signature base string."""
    from oauthlib.oauth1 import Client

    settings = handler.settings
    client = Client(
        settings["x_consumer_key"],
        client_secret=settings["x_consumer_secret"],
        resource_owner_key=settings["x_access_token"],
        resource_owner_secret=settings["x_access_token_secret"],
        timestamp=str(int(now.timestamp())),
    )
    _, headers, _ = client.sign(url, http_method="POST", headers={"Content-Type": "application/json"})
    return str(headers["Authorization"])


class XChannel(ChatChannel):
    """201 Created is success. 401 means the keys or tokens are wrong or revoked: gone.
    403 is a duplicate post or an app without write access: permanent. 429 waits until
    x-rate-limit-reset (epoch seconds)."""

    name = "x"
    gone_statuses = frozenset({401})
    error_paths = (("detail",), ("errors", 0, "message"), ("title",))

    def render(self, event: Event, handler: Handler, context: DeliveryContext) -> OutboundRequest:
        message = chat_message(event)
        link = unicodedata.normalize("NFC", message.link or "")

        def clean(text: str) -> str:
            # X counts NFC text; @name in event text must not mention (and notify) anyone.
            return defuse_mentions(unicodedata.normalize("NFC", text))

        title, body, link_text = fit_all(
            [(clean(message.title), UNLIMITED), (clean(message.body), UNLIMITED), (link, UNLIMITED)],
            total=lambda p: post_length(p[0], p[1], p[2]) <= POST_LIMIT,
            order=[1, 0, 2],
        )
        url = f"{context.settings.x_api_url}/2/tweets"
        request = json_request(url, {"text": compose(title, body, link_text)})
        headers = {**request.headers, "Authorization": authorization(url, handler, context.now())}
        return OutboundRequest(url, request.body, headers)

    def retry_after(self, result: HttpResult) -> float | None:
        reset = number(result.headers.get("x-rate-limit-reset"))
        if reset is not None:
            return max(0.0, reset - time.time())
        return super().retry_after(result)


CHANNEL = XChannel()
