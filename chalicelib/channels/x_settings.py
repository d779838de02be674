"""X's settings: the app's OAuth 1.0a consumer key and secret, and the user's access token and secret."""

from __future__ import annotations

from chalicelib.channels.fields import ChannelSettings, Credential


class XSettings(ChannelSettings):
    type_name = "x"

    x_consumer_key: Credential
    x_consumer_secret: Credential
    x_access_token: Credential
    x_access_token_secret: Credential
