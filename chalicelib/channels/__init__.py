"""The channels registry: every handler type's settings model, and its channel on first use.

A handler type is a module `chalicelib.channels.<type>` (its `CHANNEL`: render, send,
classify) and its settings model in `<type>_settings.py`. The settings models are all
imported here, cheaply (pydantic declarations, built only when used); a channel's sending
code is imported by `get_channel` when a delivery first needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from chalicelib.channels.discord_settings import DiscordSettings
from chalicelib.channels.email_settings import EmailSettings
from chalicelib.channels.fields import ChannelSettings
from chalicelib.channels.google_chat_settings import GoogleChatSettings
from chalicelib.channels.internal_notification_settings import InternalNotificationSettings
from chalicelib.channels.microsoft_teams_settings import MicrosoftTeamsSettings
from chalicelib.channels.push_subscriber_id_settings import PushSubscriberIdSettings
from chalicelib.channels.slack_settings import SlackSettings
from chalicelib.channels.telegram_settings import TelegramSettings
from chalicelib.channels.webhook_settings import WebhookSettings
from chalicelib.channels.x_settings import XSettings

if TYPE_CHECKING:
    from chalicelib.channels.base import Channel

SETTINGS: dict[str, type[ChannelSettings]] = {
    model.type_name: model
    for model in (
        EmailSettings,
        WebhookSettings,
        SlackSettings,
        DiscordSettings,
        TelegramSettings,
        MicrosoftTeamsSettings,
        GoogleChatSettings,
        XSettings,
        InternalNotificationSettings,
        PushSubscriberIdSettings,
    )
}
"""Handler type -> its settings model, in the order the API lists types."""

_loaded: dict[str, Channel] = {}


def get_channel(handler_type: str) -> Channel:
    """The channel for a handler type; its module is `chalicelib.channels.<type>`."""
    channel = _loaded.get(handler_type)
    if channel is None:
        module = importlib.import_module(f"chalicelib.channels.{handler_type}")
        channel = module.CHANNEL
        _loaded[handler_type] = channel
    return channel
