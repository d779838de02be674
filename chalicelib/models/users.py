"""The account's one user, as the PaaS face shows it (`GET /v1/users/self`) and as an email
notifier's `user_ids` name it."""

from __future__ import annotations

import uuid


def user_id(account: str) -> str:
    """A stable id in the PaaS's shape (`us-` + a UUID derived from the account)."""
    return f"us-{uuid.uuid5(uuid.NAMESPACE_URL, f'herald:account:{account}')}"


def user_address(account: str) -> str:
    """The address the account has set: its name when that is an address, else none ("")."""
    return account if "@" in account else ""
