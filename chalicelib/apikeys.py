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
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib import clock, ratelimit
from chalicelib.errors import Unauthorized
from chalicelib.settings import get_settings
from chalicelib.storage.accounts import PortalSession
from chalicelib.storage.stores import Stores

KEY_PREFIX = "hk_"
PORTAL_PREFIX = "hp_"
"""A portal link's token: random like a key, stored hashed like a key, but it expires."""
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
_CREDENTIAL = r"[A-Za-z0-9._~+/-]+=*"
"""RFC 6750's b64token: no space and no comma, so two credentials never pass for one."""
_BEARER = re.compile(rf"bearer +({_CREDENTIAL})", re.IGNORECASE)


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


def create_key(stores: Stores, account: str, key: str | None = None) -> tuple[str, str]:
    """Register `key` (or a new random one) for `account`; returns (key, key id)."""
    check_account_name(account)
    key = key or new_key()
    if len(key) < 20 or not re.fullmatch(_CREDENTIAL, key):
        raise ValueError("an API key must be at least 20 characters: letters, digits and - . _ ~ + / =")
    digest = key_hash(key)
    stores.api_keys.put_api_key(digest[:16], digest, account, clock.now())
    return key, digest[:16]


def revoke_key(stores: Stores, key_or_id: str) -> bool:
    """Revoke by the key itself or by its id (as printed at creation)."""
    key_id = key_or_id if re.fullmatch(r"[0-9a-f]{16}", key_or_id) else key_id_of(key_or_id)
    return stores.api_keys.revoke_api_key(key_id, clock.now())


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, and the API key (directly or behind a token)."""

    account: str
    key_id: str
    portal: bool = False
    """Behind a portal link's token: may use the account's API, may not make more links."""


def authenticate(stores: Stores, authorization: str | None, source: str | None = None) -> Principal:
    """The caller of a `Bearer <api key or exchanged token>` header, or Unauthorized.

    `source` is the caller's address, whose failed key lookups are limited (see `_key_item`)."""
    if not authorization:
        raise Unauthorized("missing Authorization header: send 'Authorization: Bearer <api key>'")
    bearer = _BEARER.fullmatch(authorization.strip())
    if bearer is None:
        raise Unauthorized("the Authorization header must be 'Bearer <api key>', with one credential")
    credential = bearer.group(1)
    if credential.startswith(PORTAL_PREFIX):
        return principal_of_portal_token(stores, credential, source)
    if credential.count(".") == 2 and not credential.startswith(KEY_PREFIX):
        return principal_of_token(stores, credential, source)
    return Principal(account_of_key(stores, credential, source), key_id_of(credential))


_key_items: dict[str, tuple[float, Any]] = {}


def _key_item(stores: Stores, key_id: str, source: str | None) -> Any:
    """The key's item, remembered for HERALD_AUTH_CACHE_SECONDS per container (as API
    Gateway caches authorizer answers): a revocation reaches warm containers that late.

    A read for an address (`source`) is refused while the address is past its limit of
    failed authentications, and counts as one if it finds no live key (a key that matches
    a stored key id but not its hash would take a 64-bit collision)."""
    ttl = get_settings().auth_cache_seconds
    now = time.monotonic()
    if ttl > 0:
        cached = _key_items.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
    if source is not None:
        ratelimit.refuse_failing_address(stores.rates, source)
    item = stores.api_keys.get_api_key(key_id)
    if source is not None and (item is None or item.get("revoked")):
        ratelimit.count_failure(stores.rates, source)
    if ttl > 0:
        if len(_key_items) > 10_000:  # bounded: a flood of wrong keys must not grow it forever
            _key_items.clear()
        _key_items[key_id] = (now + ttl, item)
    return item


def account_of_key(stores: Stores, key: str, source: str | None = None) -> str:
    digest = key_hash(key)
    item = _key_item(stores, digest[:16], source)
    if item is None or item.get("revoked") or not hmac.compare_digest(item["key_hash"], digest):
        raise Unauthorized("invalid or revoked API key")
    return str(item["account"])


def _token_secret() -> str:
    secret = get_settings().token_secret
    if len(secret) < 32:
        raise Unauthorized("token exchange is not configured on this server (HERALD_TOKEN_SECRET)")
    return secret


def exchange_for_token(stores: Stores, key: str, source: str) -> str:
    """A short-lived JWT for an API key (the PaaS clients' `POST /v1/tokens/exchange`); a
    wrong key counts against `source`'s failed authentications, as on every other route."""
    import jwt

    account = account_of_key(stores, key, source)
    now = int(time.time())
    claims = {
        "sub": account,
        "kid": key_id_of(key),
        "iat": now,
        "exp": now + get_settings().token_ttl_seconds,
    }
    return jwt.encode(claims, _token_secret(), algorithm="HS256")


def principal_of_token(stores: Stores, token: str, source: str | None = None) -> Principal:
    """The account of a token we issued; expired, tampered or foreign tokens are 401,
    and so is a token whose API key was revoked since."""
    import jwt

    try:
        claims = jwt.decode(token, _token_secret(), algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; exchange your API key again") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token") from None
    key_id = str(claims.get("kid", ""))
    item = _key_item(stores, key_id, source)
    if item is None or item.get("revoked") or item.get("account") != claims["sub"]:
        raise Unauthorized("the API key behind this token was revoked")
    return Principal(str(claims["sub"]), key_id)


def create_portal_session(stores: Stores, account: str, now: datetime) -> tuple[str, datetime]:
    """A new portal token for `account` and when it expires; only its hash is stored."""
    check_account_name(account)
    token = PORTAL_PREFIX + secrets.token_urlsafe(32)
    digest = key_hash(token)
    expires_at = (now + timedelta(seconds=get_settings().portal_session_seconds)).replace(microsecond=0)
    stores.portal_sessions.put_portal_session(digest[:16], PortalSession(digest, account, expires_at), now)
    return token, expires_at


PORTAL_EXPIRED = "this portal link has expired: ask the app you came from for a new one"


def principal_of_portal_token(stores: Stores, token: str, source: str | None = None) -> Principal:
    """The account of a live portal token. Not cached: a session is one GetItem, and its
    expiry must hold to the second. An unknown token counts as a failed authentication."""
    digest = key_hash(token)
    if source is not None:
        ratelimit.refuse_failing_address(stores.rates, source)
    session = stores.portal_sessions.get_portal_session(digest[:16])
    if session is None or not hmac.compare_digest(session.token_hash, digest):
        if source is not None:
            ratelimit.count_failure(stores.rates, source)
        raise Unauthorized("invalid portal link: ask the app you came from for a new one")
    if session.expires_at <= clock.now():
        raise Unauthorized(PORTAL_EXPIRED)
    return Principal(session.account, "portal:" + digest[:16], portal=True)
