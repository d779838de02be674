"""A webhook's settings: the receiver's URL (what it receives is signed with the handler's own secret)."""

from __future__ import annotations

from chalicelib.channels.fields import ChannelSettings, HttpUrl


class WebhookSettings(ChannelSettings):
    type_name = "webhook"

    webhook: HttpUrl
