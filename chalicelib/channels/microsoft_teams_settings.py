"""Microsoft Teams' settings: the URL of the Workflows (Power Automate) webhook that posts the card."""

from __future__ import annotations

from chalicelib.channels.fields import ChannelSettings, HttpUrl


class MicrosoftTeamsSettings(ChannelSettings):
    type_name = "microsoft_teams"

    microsoft_teams: HttpUrl
