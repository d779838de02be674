"""Discord's settings: the execute-webhook URL of the channel to post to."""

from __future__ import annotations

from chalicelib.channels.fields import ChannelSettings, HttpUrl


class DiscordSettings(ChannelSettings):
    type_name = "discord"

    discord: HttpUrl
