"""What the chat channels share: a base class and fitting escaped text into platform limits.

Text is always cut before it is escaped, so an entity or an escape sequence is never split,
and the marker is appended after escaping, so it reads the same in every markup.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from chalicelib.channels.base import CHAT_SCHEDULE, Channel
from chalicelib.channels.render import Message, render
from chalicelib.models.deliveries import SendResult
from chalicelib.models.events import Event
from chalicelib.text import TRUNCATION_MARKER

if TYPE_CHECKING:
    from chalicelib.delivery.safe_http import HttpResult

TITLE_LIMIT = 256
"""Our cap on titles where the platform has none or a larger one."""
NAME_LIMIT = 100
"""Field names are type_data keys: 100 characters is plenty, and it keeps size budgets small."""
VALUE_LIMIT = 256
"""After escaping; render() already caps values at 200 characters of plain text."""
UNLIMITED = 1 << 30
"""For parts only a whole-message budget limits."""
ZWSP = "\u200b"
_MENTION = re.compile(r"(?<![\w])([@\uff20])")
_NOT_IN_URLS = re.compile(r'[\s\x00-\x1f\x7f"<>\\^`{|}]')


def chat_message(event: Event) -> Message:
    """render(event), its link made a valid URL: platforms reject a whole card (400) for a
    link with a space, a quote or a control character in it; they are percent-encoded."""
    message = render(event)
    if message.link is None:
        return message
    return replace(message, link=_NOT_IN_URLS.sub(lambda m: quote(m.group(), safe=""), message.link))


def _same(text: str) -> str:
    return text


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, never less than in code points: under either way of
    counting that a platform uses, the limit then holds."""
    return len(text.encode("utf-16-le")) // 2


def defuse_mentions(text: str) -> str:
    """A zero-width space after an @ that starts a word, so @everyone or @someone never
    becomes a mention; addresses like john@doe.com are left alone."""
    return _MENTION.sub(r"\1" + ZWSP, text)


def fit_escaped(
    text: str,
    fits: Callable[[str], bool],
    escape: Callable[[str], str] = _same,
    marker: str = TRUNCATION_MARKER,
) -> str:
    """`escape(text)` if `fits` accepts it, else the longest escaped prefix plus `marker`
    that it accepts (just the marker if none is). `fits` must be monotonic in length."""
    whole = escape(text)
    if fits(whole):
        return whole

    def candidate(n: int) -> str:
        return escape(text[:n].rstrip()) + marker

    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(candidate(middle)):
            low = middle
        else:
            high = middle - 1
    return candidate(low)


def fit(text: str, limit: int, escape: Callable[[str], str] = _same) -> str:
    """`text` escaped, at most `limit` UTF-16 units, ending in the marker when cut."""
    return fit_escaped(text, lambda candidate: utf16_len(candidate) <= limit, escape)


def fit_all(
    parts: Sequence[tuple[str, int]],
    escape: Callable[[str], str] = _same,
    total: Callable[[list[str]], bool] | None = None,
    order: Sequence[int] = (),
) -> list[str]:
    """Each (text, limit) part escaped within its own limit; then, while `total` rejects the
    whole, the parts at `order` are cut further, one after the other (the body first)."""
    out = [fit(text, limit, escape) for text, limit in parts]
    for index in order:
        if total is None or total(out):
            break
        out[index] = _refit(parts, out, index, escape, total)
    return out


def _refit(
    parts: Sequence[tuple[str, int]],
    out: list[str],
    index: int,
    escape: Callable[[str], str],
    total: Callable[[list[str]], bool],
) -> str:
    text, limit = parts[index]

    def fits(candidate: str) -> bool:
        return utf16_len(candidate) <= limit and total([*out[:index], candidate, *out[index + 1 :]])

    return fit_escaped(text, fits, escape)


def shrink_order(fields: int, first: int = 0, then: Sequence[int] = ()) -> list[int]:
    """Which parts give way first when the whole is too big: the body at `first`, then the
    field values from the last one (names and values alternate after `first`), then `then`."""
    values = [first + 2 + 2 * i for i in reversed(range(fields))]
    names = [first + 1 + 2 * i for i in reversed(range(fields))]
    return [first, *values, *names, *then]


def field_parts(
    message: Message, name_limit: int = NAME_LIMIT, value_limit: int = VALUE_LIMIT
) -> list[tuple[str, int]]:
    """Names and values alternating; an empty value shows as a dash (platforms reject "")."""
    parts: list[tuple[str, int]] = []
    for name, value in message.fields:
        parts += [(name, min(name_limit, NAME_LIMIT)), (value or "—", min(value_limit, VALUE_LIMIT))]
    return parts


def json_size(payload: Any) -> int:
    """Bytes of the body json_request() sends for `payload`."""
    return len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())


def json_value(body: bytes, *path: str | int) -> Any:
    """The value at `path` in a JSON body, or None when the body is not JSON or lacks it."""
    try:
        value: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


class ChatChannel(Channel):
    """A chat platform: short retry schedule, the platform's own words in error texts."""

    retry_schedule: ClassVar[tuple[int, ...]] = CHAT_SCHEDULE
    error_paths: ClassVar[tuple[tuple[str | int, ...], ...]] = ()
    """Where in a JSON error body the platform explains itself, tried in order."""

    def classify(self, result: HttpResult) -> SendResult:
        sent = super().classify(result)
        status = result.status
        if status is None or status < 400 or not sent.error:
            return sent
        for path in self.error_paths:
            detail = json_value(result.body, *path)
            if isinstance(detail, str) and detail.strip():
                return replace(sent, error=f"HTTP {status}: {detail.strip()[:200]}")
        return sent


def number(value: Any) -> float | None:
    """A non-negative number from a JSON or header value, else None."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
