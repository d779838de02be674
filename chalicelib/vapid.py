"""VAPID (RFC 8292): the application server key pair Web Push deliveries are signed with.

Configuration, read on every use (never at import):

- `HERALD_VAPID_PRIVATE_KEY`: the private key as base64url of the raw 32-byte P-256
  scalar, the form `herald vapid generate` prints (the same form as the `web-push` npm
  tool and pywebpush's `vapid_private_key`). A PEM (PKCS#8 or SEC1) private key is
  accepted too; in an environment variable its newlines may be written as `\\n`.
- `HERALD_VAPID_SUBJECT`: how push services reach the operator, a `mailto:` or
  `https:` URL; default `mailto:admin@localhost`.

Browsers need the matching public key, in base64url uncompressed-point form, as the
`applicationServerKey` of `pushManager.subscribe()`: `generate_vapid_keys` returns it
and `application_server_key` derives it from the configured private key.
"""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

PRIVATE_KEY_ENV = "HERALD_VAPID_PRIVATE_KEY"
SUBJECT_ENV = "HERALD_VAPID_SUBJECT"
DEFAULT_SUBJECT = "mailto:admin@localhost"
TOKEN_LIFETIME_SECONDS = 12 * 3600
"""RFC 8292 caps `exp` at 24 h; half of it leaves room for clock skew."""
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class VapidError(ValueError):
    """The configured VAPID key or subject cannot be used; the message says why."""


@dataclass(frozen=True)
class VapidConfig:
    private_key: str
    subject: str


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url with or without padding; raises ValueError on anything else."""
    cleaned = text.strip()
    if not cleaned or any(c not in _B64URL for c in cleaned.rstrip("=")):
        raise ValueError("is not base64url")
    return base64.urlsafe_b64decode(cleaned.rstrip("=") + "=" * (-len(cleaned.rstrip("=")) % 4))


def vapid_config() -> VapidConfig | None:
    """The configured key and subject, or None when no private key is set."""
    key = os.environ.get(PRIVATE_KEY_ENV, "").strip()
    if not key:
        return None
    subject = os.environ.get(SUBJECT_ENV, "").strip() or DEFAULT_SUBJECT
    return VapidConfig(key, subject)


def generate_vapid_keys() -> tuple[str, str]:
    """A new key pair: (private key for HERALD_VAPID_PRIVATE_KEY, public application
    server key for browsers), both base64url without padding."""
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(private), _public_point(key)


def application_server_key(config: VapidConfig) -> str:
    """The public key browsers pass as `applicationServerKey` (base64url, 65 bytes)."""
    return _public_point(_signer(config.private_key).private_key)


def authorization(config: VapidConfig, endpoint: str, now: datetime) -> str:
    """The `Authorization: vapid t=<JWT>,k=<public key>` value for one push endpoint."""
    from py_vapid import VapidException

    claims = {
        "sub": config.subject,
        "aud": audience(endpoint),
        "exp": int(now.timestamp()) + TOKEN_LIFETIME_SECONDS,
    }
    try:
        header: str = _signer(config.private_key).sign(claims)["Authorization"]
    except VapidException as exc:
        if "'sub'" in str(exc):
            raise VapidError(f"{SUBJECT_ENV} must be a mailto: or https: URL") from None
        raise VapidError(f"cannot sign for {claims['aud']}: {exc}") from None
    return header


def audience(endpoint: str) -> str:
    """The push service's origin, scheme://host[:port] (default ports omitted)."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port
    default = {"https": 443, "http": 80}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


@functools.lru_cache(maxsize=4)
def _signer(private_key: str) -> Any:
    """A py_vapid signer for the configured key, parsed once per container."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid

    if "-----BEGIN" in private_key:
        pem = private_key.replace("\\n", "\n").encode()
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise VapidError(f"{PRIVATE_KEY_ENV} is not a usable PEM private key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise VapidError(f"{PRIVATE_KEY_ENV} must be a P-256 (prime256v1) key")
        return Vapid(key)
    try:
        raw = b64url_decode(private_key)
    except ValueError:
        raise VapidError(f"{PRIVATE_KEY_ENV} is neither base64url nor PEM") from None
    if len(raw) != 32:
        raise VapidError(f"{PRIVATE_KEY_ENV} must decode to 32 bytes, not {len(raw)}")
    try:
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError:
        raise VapidError(f"{PRIVATE_KEY_ENV} is not a valid P-256 private key") from None
    return Vapid(key)


def _public_point(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    point: bytes = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)
