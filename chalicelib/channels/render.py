"""One renderer for every channel: an event becomes a title, a body, a link and fields.

Channels format this in their own markup and escape it themselves: everything here is
plain text straight from the event, so it is untrusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.models.events import Event, event_type
from chalicelib.text import truncate

MAX_FIELDS = 10
MAX_FIELD_VALUE = 200


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    link: str | None
    fields: tuple[tuple[str, str], ...]

    def plain_text(self) -> str:
        """Title, body, fields and link as plain lines (SMS-like channels, fallbacks)."""
        lines = [self.title, self.body] if self.body else [self.title]
        lines += [f"{name}: {value}" for name, value in self.fields]
        if self.link:
            lines.append(self.link)
        return "\n".join(lines)


def render(event: Event) -> Message:
    known = event_type(event.type)
    data = event.type_data
    display = known.display_name if known else event.type
    if event.type == "deployment":
        return _deployment(event, data)
    subject = f" — {event.app}" if event.app else ""
    body = _text(data.get("message") or data.get("description") or (known.description if known else ""))
    return Message(
        f"{display}{subject}", body, _link(data), _fields(event, data, skip={"message", "description"})
    )


def _deployment(event: Event, data: dict[str, Any]) -> Message:
    status = _text(data.get("status") or "finished")
    app = event.app or "an app"
    who = _text(data.get("pusher") or (event.user or {}).get("username") or "someone")
    ref = _text(data.get("git_ref") or "")
    title = f"Deployment of {app}: {status}"
    body = f"{who} deployed {ref[:12] + ' ' if ref else ''}to {app}"
    if data.get("duration") is not None:
        body += f" in {_text(data['duration'])} s"
    return Message(title, body + ".", _link(data), _fields(event, data, skip={"pusher"}))


def _fields(event: Event, data: dict[str, Any], skip: set[str]) -> tuple[tuple[str, str], ...]:
    fields: list[tuple[str, str]] = []
    if event.app:
        fields.append(("App", event.app))
    for key, value in data.items():
        if key in skip or key in ("url", "link") or isinstance(value, dict | list) or value is None:
            continue
        fields.append((key.replace("_", " ").capitalize(), truncate(_text(value), MAX_FIELD_VALUE)))
    if len(fields) > MAX_FIELDS:  # never silently: say how many did not fit
        extra = len(fields) - (MAX_FIELDS - 1)
        fields = [*fields[: MAX_FIELDS - 1], ("More", f"… and {extra} more fields")]
    return tuple(fields)


def _link(data: dict[str, Any]) -> str | None:
    for key in ("url", "link"):
        value = data.get(key)
        if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 2048:
            return value
    return None


def _text(value: Any) -> str:
    return str(value).strip()
