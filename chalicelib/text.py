"""Text helpers shared by the channels, the mailer and the inbox notices."""

from __future__ import annotations

TRUNCATION_MARKER = "… [truncated]"


def truncate(text: str, limit: int, marker: str = TRUNCATION_MARKER) -> str:
    """At most `limit` characters, ending in a visible marker when anything was cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker
