"""Google Chat's settings: the incoming webhook URL of the space to post to."""

from __future__ import annotations

from chalicelib.channels.fields import ChannelSettings, HttpUrl


class GoogleChatSettings(ChannelSettings):
    type_name = "google_chat"

    google_chat: HttpUrl
