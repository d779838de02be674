"""Browser push's settings: which of the account's registered push subscribers to notify."""

from __future__ import annotations

from pydantic import Field

from chalicelib.channels.fields import ChannelSettings


class PushSubscriberIdSettings(ChannelSettings):
    type_name = "push_subscriber_id"

    push_subscriber_id: str = Field(min_length=1, max_length=64)
