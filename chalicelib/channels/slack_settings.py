"""Slack's settings: an incoming webhook URL, and the workspace and channel an OAuth install named."""

from __future__ import annotations

from pydantic import Field

from chalicelib.channels.fields import ChannelSettings, HttpUrl


class SlackSettings(ChannelSettings):
    type_name = "slack"

    slack: HttpUrl
    slack_team: str | None = Field(default=None, max_length=256)
    slack_channel: str | None = Field(default=None, max_length=256)
