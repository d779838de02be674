"""Web Push subscribers: a browser's PushSubscription as stored and answered, and its id
(derived from the account and the endpoint, so registering again finds the same one)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.models.api import DATETIME_FORMAT

ID_PREFIX = "ps_"


class PushSubscriber(BaseModel):
    """A stored subscription; `p256dh` and `auth` are base64url as the browser sent them."""

    model_config = ConfigDict(extra="ignore")

    id: str
    endpoint: str
    p256dh: str
    auth: str
    expiration_time: int | None = None
    """Milliseconds since the epoch, as PushSubscription.expirationTime."""
    created_at: datetime
    updated_at: datetime

    def expired(self, now: datetime) -> bool:
        return self.expiration_time is not None and self.expiration_time <= now.timestamp() * 1000

    def public(self) -> dict[str, Any]:
        """The API shape: the endpoint, never the keys."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "expiration_time": self.expiration_time,
            "datetime": self.created_at.strftime(DATETIME_FORMAT),
            "updated_datetime": self.updated_at.strftime(DATETIME_FORMAT),
        }


def subscriber_id(account: str, endpoint: str) -> str:
    digest = hashlib.sha256(f"{account}\n{endpoint}".encode()).hexdigest()
    return f"{ID_PREFIX}{digest[:24]}"


def is_subscriber_id(value: str) -> bool:
    tail = value.removeprefix(ID_PREFIX)
    return len(value) == len(ID_PREFIX) + 24 and all(c in "0123456789abcdef" for c in tail)
