"""Email's settings: the addresses a handler mails, each confirmed by a link before it is used."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from chalicelib.channels.fields import ChannelSettings, EmailAddresses


class EmailSettings(ChannelSettings):
    type_name = "email"

    email: EmailAddresses
    email_user_ids: Annotated[str, Field(max_length=500)] = ""
    """The account's user ids whose address was added to `email` (the PaaS face's `user_ids`)."""
