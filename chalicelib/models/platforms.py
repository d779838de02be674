"""Seed 000's notification platforms: one per Herald handler type, a fixed catalog.

A platform is what a PaaS-style notifier is sent through; in Herald that is a handler
type. Slack, webhook and email keep the seeds' ids (and Slack and webhook the seed's
logos and descriptions); the others get stable 24-hex ids derived from their names and a
small inline SVG badge as logo, so that no platform points at someone else's assets.
`available_event_ids` are the seed's lists where it gives one (Slack's five, the webhook's
three); every other platform posts a message a person reads, as Slack does, so it offers
Slack's five. A notifier may select only those events (422 naming the event otherwise).
Herald's own event types (alerts, app distribution) are not in these lists: notifiers get
alerts with `send_all_alerts` and everything with `send_all_events`, and the other faces
(notification handlers, app notifications) select them by name.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from pydantic import BaseModel

from chalicelib.models.events import BY_NAME as BY_EVENT_NAME

SCALINGO_CDN = "https://cdn2.scalingo.com/dashboard/assets/images/notification"


class NotificationPlatform(BaseModel):
    """The seed 000 platform object, attributes exactly."""

    id: str
    name: str
    display_name: str
    logo_url: str
    available_event_ids: list[str]
    description: str


class PlatformList(BaseModel):
    notification_platforms: list[NotificationPlatform]


class PlatformEnvelope(BaseModel):
    notification_platform: NotificationPlatform


SLACK_EVENT_IDS: tuple[str, ...] = (
    BY_EVENT_NAME["deployment"].id,
    BY_EVENT_NAME["app_crashed"].id,
    BY_EVENT_NAME["app_restarted"].id,
    BY_EVENT_NAME["app_scaled"].id,
    BY_EVENT_NAME["app_deleted"].id,
)
"""Seed 000's Slack list; every platform that posts a message for a person offers it."""
WEBHOOK_EVENT_IDS: tuple[str, ...] = (
    BY_EVENT_NAME["deployment"].id,
    BY_EVENT_NAME["app_crashed"].id,
    BY_EVENT_NAME["app_deleted"].id,
)
"""Seed 000's webhook list."""


def _platform_id(name: str) -> str:
    """A stable ObjectId-shaped id for the platforms the seeds give no id for."""
    return hashlib.sha256(f"herald-notification-platform:{name}".encode()).hexdigest()[:24]


def _badge(letter: str, color: str) -> str:
    """A self-contained logo: the platform's initial on its colour, as a data: URL."""
    svg = (
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 64 64'>"
        f"<rect width='64' height='64' rx='12' fill='{color}'/>"
        "<text x='32' y='43' font-family='sans-serif' font-size='30' font-weight='bold' "
        f"text-anchor='middle' fill='#fff'>{letter}</text></svg>"
    )
    return "data:image/svg+xml," + quote(svg, safe="")


def _platform(
    name: str,
    display: str,
    description: str,
    logo: str,
    ident: str | None = None,
    *,
    events: tuple[str, ...] = SLACK_EVENT_IDS,
) -> NotificationPlatform:
    return NotificationPlatform(
        id=ident or _platform_id(name),
        name=name,
        display_name=display,
        logo_url=logo,
        available_event_ids=list(events),
        description=description,
    )


PLATFORMS: tuple[NotificationPlatform, ...] = (
    _platform(
        "slack",
        "Slack",
        "Send events to your team thanks to Slack Incoming WebHooks.",
        f"{SCALINGO_CDN}/slack-831fd1b21576dbb3e0037b7211ecfd93.svg",
        "5982f145d48c3600273ef089",
    ),
    _platform(
        "webhook",
        "Webhook",
        "Send HTTP requests to any target when events happen.",
        f"{SCALINGO_CDN}/webhook-1f16734c1d9b61dff4460d067ab980ec.svg",
        "5982f145d48c3600273ef08a",
        events=WEBHOOK_EVENT_IDS,
    ),
    _platform(
        "email",
        "Email",
        "Send events by email to one address, once it confirmed it wants them.",
        _badge("@", "#4b5563"),
        "59c52ac27651ce002c1d4620",
    ),
    _platform(
        "discord",
        "Discord",
        "Send events to a Discord channel through its webhook.",
        _badge("D", "#5865f2"),
    ),
    _platform(
        "telegram",
        "Telegram",
        "Send events to a Telegram chat through your bot.",
        _badge("T", "#229ed9"),
    ),
    _platform(
        "microsoft_teams",
        "Microsoft Teams",
        "Send events to a Microsoft Teams channel through its incoming webhook.",
        _badge("T", "#4b53bc"),
    ),
    _platform(
        "google_chat",
        "Google Chat",
        "Send events to a Google Chat space through its incoming webhook.",
        _badge("G", "#00ac47"),
    ),
    _platform("x", "X", "Post events to an X account.", _badge("X", "#000000")),
    _platform(
        "internal_notification",
        "In-app notifications",
        "Keep events in the account's in-app inbox.",
        _badge("i", "#d97706"),
    ),
    _platform(
        "push_subscriber_id",
        "Web Push",
        "Send events as Web Push notifications to a subscribed browser.",
        _badge("P", "#7c3aed"),
    ),
)
BY_ID = {p.id: p for p in PLATFORMS}
BY_NAME = {p.name: p for p in PLATFORMS}


def search(name: str) -> list[NotificationPlatform]:
    """The platforms called `name` (case-insensitive): zero or one."""
    wanted = name.strip().lower()
    return [p for p in PLATFORMS if p.name == wanted]
