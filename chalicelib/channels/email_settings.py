"""Email's settings: the one address a handler mails (confirmed by a link before it is used)."""

from __future__ import annotations

from chalicelib.channels.fields import ChannelSettings, EmailAddress


class EmailSettings(ChannelSettings):
    type_name = "email"

    email: EmailAddress
