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
from urllib.parse import urlsplit

from chalicelib.channels.base import OutboundRequest, json_request
from chalicelib.channels.chat import ChatChannel, defuse_mentions, fit_all, number
from chalicelib.channels.render import render
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.settings import get_settings

if TYPE_CHECKING:
    from chalicelib.delivery.safe_http import HttpResult

POST_LIMIT = 280
URL_WEIGHT = 23
UNLIMITED = 1 << 30
_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))
"""Code point ranges weighing 1 (twitter-text v3 configuration); everything else weighs 2."""
_DOMAIN_LIKE = re.compile(r"\w\.[^\W\d_]{2,}")
"""A stretch X may take for (part of) a URL: each counts at least 23."""
_PLAIN_LINK = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[A-Za-z0-9._~:/?#\[\]!$&'*+,;=%-]*)?")
_PRIVATE_TLDS = frozenset(
    {"local", "localhost", "localdomain", "internal", "intranet", "lan", "home", "corp", "private"}
    | {"test", "example", "invalid"}
)


def _char_weight(char: str) -> int:
    code = ord(char)
    return 1 if any(low <= code <= high for low, high in _LIGHT) else 2


def _weight(text: str) -> int:
    return sum(_char_weight(c) for c in text)


def weighted_length(text: str) -> int:
    """An upper bound of X's count for `text`: anything domain-like counts at least 23."""
    total = _weight(text)
    for match in _DOMAIN_LIKE.finditer(text):
        weight = _weight(match.group())
        total += max(weight, URL_WEIGHT) - weight
    return total


def link_weight(link: str) -> int:
    """23 for a link X is sure to shorten whole (plain ASCII, a public-looking host, ending
    in a letter, digit or slash); anything else is counted as text."""
    if _PLAIN_LINK.fullmatch(link) and (link[-1].isalnum() or link.endswith("/")):
        host = urlsplit(link).hostname or ""
        tld = host.rpartition(".")[2] if "." in host else ""
        if len(tld) >= 2 and tld.isalpha() and tld.lower() not in _PRIVATE_TLDS:
            return URL_WEIGHT
    return weighted_length(link)


def compose(title: str, body: str, link: str) -> str:
    return "\n".join(part for part in (title, body, link) if part)


def post_length(title: str, body: str, link: str, original_link: str | None) -> int:
    text = weighted_length(compose(title, body, ""))
    if not link:
        return text
    weight = link_weight(link) if link == original_link else weighted_length(link)
    return text + (1 if text else 0) + weight


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

    def render(self, event: Event, handler: Handler, now: datetime) -> OutboundRequest:
        message = render(event)
        link = unicodedata.normalize("NFC", message.link or "")

        def clean(text: str) -> str:
            # X counts NFC text; @name in event text must not mention (and notify) anyone.
            return defuse_mentions(unicodedata.normalize("NFC", text))

        title, body, link_text = fit_all(
            [(clean(message.title), UNLIMITED), (clean(message.body), UNLIMITED), (link, UNLIMITED)],
            total=lambda p: post_length(p[0], p[1], p[2], link) <= POST_LIMIT,
            order=[1, 0, 2],
        )
        url = f"{get_settings().x_api_url}/2/tweets"
        request = json_request(url, {"text": compose(title, body, link_text)})
        headers = {**request.headers, "Authorization": authorization(url, handler, now)}
        return OutboundRequest(url, request.body, headers)

    def retry_after(self, result: HttpResult) -> float | None:
        reset = number(result.headers.get("x-rate-limit-reset"))
        if reset is not None:
            return max(0.0, reset - time.time())
        return super().retry_after(result)


CHANNEL = XChannel()
