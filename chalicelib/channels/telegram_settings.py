"""Telegram's settings: the bot token (a credential Telegram puts in the URL path) and the chat."""

from __future__ import annotations

from pydantic import Field

from chalicelib.channels.fields import ChannelSettings, Credential


class TelegramSettings(ChannelSettings):
    type_name = "telegram"

    telegram: Credential
    telegram_chat_id: str = Field(min_length=1, max_length=64)
