"""API keys: random, shown once, stored only as a SHA-256 hash, mapped to an account.

A key carries 256 bits of randomness, so a fast hash is enough (there is nothing to
brute-force); the first 16 hex digits of the hash name the key's item and the full
hash is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

from chalicelib.errors import Unauthorized
from chalicelib.storage.dynamo import Store

KEY_PREFIX = "hk_"
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str:
    return key_hash(key)[:16]


def check_account_name(account: str) -> str:
    if not _ACCOUNT.match(account):
        raise ValueError(
            "account: 1-64 characters, letters, digits and _ . @ -, starting with a letter or digit"
        )
    return account


def create_key(store: Store, account: str, key: str | None = None) -> tuple[str, str]:
    """Register `key` (or a new random one) for `account`; returns (key, key id)."""
    check_account_name(account)
    key = key or new_key()
    if len(key) < 20:
        raise ValueError("an API key must be at least 20 characters")
    digest = key_hash(key)
    store.put_api_key(digest[:16], digest, account, datetime.now(UTC))
    return key, digest[:16]


def revoke_key(store: Store, key_or_id: str) -> bool:
    """Revoke by the key itself or by its id (as printed at creation)."""
    key_id = key_or_id if re.fullmatch(r"[0-9a-f]{16}", key_or_id) else key_id_of(key_or_id)
    return store.revoke_api_key(key_id, datetime.now(UTC))


def account_for(store: Store, authorization: str | None) -> str:
    """The account of a `Bearer <key>` header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
    digest = key_hash(key)
    item = store.get_api_key(digest[:16])
    if item is None or item.get("revoked") or not hmac.compare_digest(item["key_hash"], digest):
        raise Unauthorized("invalid or revoked API key")
    return str(item["account"])
