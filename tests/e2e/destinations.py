"""A destination of every handler type on one loopback receiver: the stack's settings that
send the platforms there, and the settings of a handler of each type."""

from __future__ import annotations

from chalicelib.vapid import generate_vapid_keys
from tests.receiver import Receiver


def loopback_stack_env(receiver: Receiver) -> dict[str, str]:
    """Telegram's and X's APIs on the receiver, addresses confirmed, push keys, no rate limit."""
    vapid_private, _ = generate_vapid_keys()
    return {
        "HERALD_TELEGRAM_API_URL": receiver.url("/telegram"),
        "HERALD_X_API_URL": receiver.url("/x"),
        "HERALD_EMAIL_CONFIRMATION": "0",
        "HERALD_VAPID_PRIVATE_KEY": vapid_private,
        "HERALD_RATE_LIMIT_PER_MINUTE": "0",
    }


def settings_of_every_type(receiver: Receiver, push_subscriber_id: str) -> dict[str, dict[str, str]]:
    """Handler type -> its settings, every URL on the receiver (Telegram's and X's through
    `loopback_stack_env`)."""
    return {
        "email": {"email": "ops@example.com"},
        "webhook": {"webhook": receiver.url("/webhook")},
        "slack": {"slack": receiver.url("/slack")},
        "discord": {"discord": receiver.url("/discord")},
        "microsoft_teams": {"microsoft_teams": receiver.url("/teams")},
        "google_chat": {"google_chat": receiver.url("/chat")},
        "telegram": {"telegram": "123:secret", "telegram_chat_id": "42"},
        "x": {
            "x_consumer_key": "ck",
            "x_consumer_secret": "cs",
            "x_access_token": "at",
            "x_access_token_secret": "as",
        },
        "internal_notification": {},
        "push_subscriber_id": {"push_subscriber_id": push_subscriber_id},
    }
