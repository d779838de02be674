"""The in-app inbox has no settings: it writes to the handler's own account."""

from __future__ import annotations

from chalicelib.channels.fields import ChannelSettings


class InternalNotificationSettings(ChannelSettings):
    type_name = "internal_notification"
