"""Email confirmations: a one-time token per link mailed to a handler's address."""

from __future__ import annotations

from typing import Protocol

from chalicelib.models.handlers import Handler
from chalicelib.storage import keys
from chalicelib.storage.handlers import handler_key
from chalicelib.storage.table import ConditionFailed, Item, Key, Table


class ConfirmationStore(Protocol):
    def put_confirmation(self, token: str, handler: Handler, address: str, expires_at: int) -> None:
        """Remember that `token` confirms `address`, one of the handler's current addresses,
        until `expires_at`."""
        ...

    def confirm_email(self, token: str, now: int) -> Item | None:
        """Add the link's address to the handler's confirmed ones if the handler's address
        list is still the one the link was mailed for, spending the token at once; the
        confirmation (`address` is the one confirmed), or None if the token is unknown,
        expired or stale."""
        ...


def _confirmation_key(token: str) -> Key:
    return keys.confirmation_pk(token), keys.confirmation_sk()


class DynamoConfirmationStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put_confirmation(self, token: str, handler: Handler, address: str, expires_at: int) -> None:
        pk, sk = _confirmation_key(token)
        self.table.put(
            {
                "PK": pk,
                "SK": sk,
                "account": handler.account,
                "handler_id": handler.id,
                "email": handler.settings["email"],
                "address": address,
                "expires_at": expires_at,
            }
        )

    def confirm_email(self, token: str, now: int) -> Item | None:
        """One transaction: the handler's update, conditional on its address, and the
        token's deletion."""
        item = self.table.get(_confirmation_key(token))
        if item is None or int(item["expires_at"]) < now:
            return None
        try:
            self.table.transact(
                [
                    {
                        "Update": self.table.update_request(
                            handler_key(item["account"], int(item["handler_id"])),
                            "SET confirmed_emails = "
                            "list_append(if_not_exists(confirmed_emails, :none), :one)",
                            condition="settings.email = :email",
                            values={":none": [], ":one": [item["address"]], ":email": item["email"]},
                        )
                    },
                    # conditional: of two clicks at once, one confirms and the other finds no token
                    {
                        "Delete": self.table.delete_request(
                            _confirmation_key(token), condition="attribute_exists(PK)"
                        )
                    },
                ]
            )
        except ConditionFailed:
            return None
        return item
