"""Web Push subscribers: a browser's PushSubscription, stored per account.

Items live under PK `PUSH#<account>`, SK `<subscriber id>`. The id is derived from the
account and the endpoint, so a browser that registers the same subscription again (every
page load, typically) gets the same id back and its keys are refreshed in place instead
of piling up duplicates. A subscription with an `expirationTime` expires then (TTL).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Protocol

from chalicelib.models.push import PushSubscriber, subscriber_id
from chalicelib.storage import keys
from chalicelib.storage.table import ConditionFailed, Key, Table


class PushStore(Protocol):
    """An account's Web Push subscribers."""

    def save(
        self,
        account: str,
        *,
        endpoint: str,
        p256dh: str,
        auth: str,
        expiration_time: int | None,
        now: datetime,
    ) -> PushSubscriber:
        """Create the subscriber, or refresh the keys of the same endpoint."""
        ...

    def get(self, account: str, ident: str) -> PushSubscriber | None: ...

    def delete(self, account: str, ident: str) -> bool:
        """Delete the subscriber; False if there was none."""
        ...


def _key(account: str, ident: str) -> Key:
    return keys.push_pk(account), keys.push_sk(ident)


class DynamoPushStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def save(
        self,
        account: str,
        *,
        endpoint: str,
        p256dh: str,
        auth: str,
        expiration_time: int | None,
        now: datetime,
    ) -> PushSubscriber:
        """One UpdateItem."""
        ident = subscriber_id(account, endpoint)
        fields: dict[str, Any] = {"id": ident, "endpoint": endpoint, "p256dh": p256dh, "auth": auth}
        if expiration_time is not None:
            fields["expiration_time"] = expiration_time
            fields["expires_at"] = math.ceil(expiration_time / 1000)
        names = {f"#{name}": name for name in [*fields, "created_at", "updated_at"]}
        values = {f":{name}": value for name, value in fields.items()} | {":now": now.isoformat()}
        clauses = [f"#{name} = :{name}" for name in fields]
        clauses += ["#created_at = if_not_exists(#created_at, :now)", "#updated_at = :now"]
        expression = "SET " + ", ".join(clauses)
        if expiration_time is None:
            names |= {"#expiration_time": "expiration_time", "#expires_at": "expires_at"}
            expression += " REMOVE #expiration_time, #expires_at"
        item = self.table.update(
            _key(account, ident), expression, names=names, values=values, returns="ALL_NEW"
        )
        return PushSubscriber.model_validate(item)

    def get(self, account: str, ident: str) -> PushSubscriber | None:
        item = self.table.get(_key(account, ident))
        return PushSubscriber.model_validate(item) if item is not None else None

    def delete(self, account: str, ident: str) -> bool:
        try:
            self.table.delete(_key(account, ident), condition="attribute_exists(SK)")
        except ConditionFailed:
            return False
        return True
