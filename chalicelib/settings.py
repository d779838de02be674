"""Configuration from the environment.

Read through `get_settings()` on every use rather than at import, so tests and the
local stack can change the environment per call and Lambda pays nothing at cold start.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit


def _deliveries_queue() -> str:
    return os.environ.get("HERALD_DELIVERIES_QUEUE", "herald-deliveries")


def _ingest_queue() -> str:
    return os.environ.get("HERALD_INGEST_QUEUE", "herald-ingest")


def _fan_out_queue() -> str:
    return os.environ.get("HERALD_FANOUT_QUEUE", "herald-fanout")


# Queue names are read at import by app.py's decorators (and at packaging time), so
# they are plain module constants with environment overrides.
DELIVERIES_QUEUE = _deliveries_queue()
INGEST_QUEUE = _ingest_queue()
FANOUT_QUEUE = _fan_out_queue()


class ConfigurationError(RuntimeError):
    """A setting's value is unusable. Not a ValueError, so that a validator reading the
    settings cannot turn the operator's mistake into the client's 400."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    region: str
    deliveries_queue: str
    deliveries_dlq: str
    ingest_queue: str
    ingest_dlq: str
    fan_out_queue: str
    fan_out_dlq: str
    fan_out_inline_limit: int
    """An event whose app and account-wide handlers number at most this many fans out
    inside the publish request; a larger one is handed to the fan-out queue."""
    fan_out_job_seconds: float
    """How long one fan-out invocation pages through handlers before handing on."""
    allow_private_targets: bool
    disable_after_days: int
    delivery_deadline_seconds: float
    telegram_api_url: str
    email_sender: str
    email_confirmation: bool
    public_url: str | None
    token_secret: str
    rate_limit_per_minute: int
    auth_cache_seconds: float
    public_rate_limit_per_minute: int
    auth_failure_limit_per_minute: int
    slack_api_url: str
    slack_client_id: str
    slack_client_secret: str
    token_ttl_seconds: int
    x_api_url: str
    report_batch_item_failures: bool
    portal_session_seconds: int
    """How long a portal link's token works."""
    portal_frame_ancestors: str
    portal_rate_limit_per_minute: int
    """Requests a minute per portal link: one person's page, whose views ask for a few dozen."""
    """The CSP `frame-ancestors` sources allowed to embed the portal (`'none'`: no frame)."""


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _public_url() -> str | None:
    """HERALD_PUBLIC_URL without its trailing slash: the root of every link Herald builds,
    so only an absolute http(s) URL that paths can be appended to is accepted."""
    raw = os.environ.get("HERALD_PUBLIC_URL", "")
    if not raw:
        return None
    if not _is_link_root(raw):
        raise ConfigurationError(
            f"HERALD_PUBLIC_URL={raw!r} is not an absolute http:// or https:// URL without "
            "credentials, query or fragment (e.g. https://herald.example.com)"
        )
    return raw.rstrip("/")


def _is_link_root(raw: str) -> bool:
    if any(c.isspace() for c in raw) or raw.endswith(("?", "#")):
        return False
    try:
        parts = urlsplit(raw)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme.lower() in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and not parts.query
        and not parts.fragment
    )


_FRAME_SOURCE = re.compile(r"'none'|'self'|https?://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?\Z")


def _frame_ancestors() -> str:
    """HERALD_PORTAL_FRAME_ANCESTORS: space-separated origins (or `'self'`, `'none'`) that may
    frame the portal; anything else could smuggle another directive into its CSP."""
    raw = os.environ.get("HERALD_PORTAL_FRAME_ANCESTORS", "").strip() or "'none'"
    sources = raw.split()
    if not all(_FRAME_SOURCE.fullmatch(source) for source in sources):
        raise ConfigurationError(
            f"HERALD_PORTAL_FRAME_ANCESTORS={raw!r}: give space-separated origins such as "
            "https://dashboard.example.com, or 'self' or 'none'"
        )
    return " ".join(sources)


def get_settings() -> Settings:
    deliveries = _deliveries_queue()
    ingest = _ingest_queue()
    fan_out = _fan_out_queue()
    return Settings(
        table_name=os.environ.get("HERALD_TABLE", "herald"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        deliveries_queue=deliveries,
        deliveries_dlq=os.environ.get("HERALD_DELIVERIES_DLQ", f"{deliveries}-dlq"),
        ingest_queue=ingest,
        ingest_dlq=os.environ.get("HERALD_INGEST_DLQ", f"{ingest}-dlq"),
        fan_out_queue=fan_out,
        fan_out_dlq=os.environ.get("HERALD_FANOUT_DLQ", f"{fan_out}-dlq"),
        fan_out_inline_limit=int(os.environ.get("HERALD_FANOUT_INLINE_LIMIT", "100")),
        fan_out_job_seconds=float(os.environ.get("HERALD_FANOUT_JOB_SECONDS", "60")),
        allow_private_targets=_flag("HERALD_ALLOW_PRIVATE_TARGETS"),
        disable_after_days=int(os.environ.get("HERALD_DISABLE_AFTER_DAYS", "5")),
        delivery_deadline_seconds=float(os.environ.get("HERALD_DELIVERY_DEADLINE_SECONDS", "10")),
        email_sender=os.environ.get("HERALD_EMAIL_SENDER", "notifications@herald.example.com"),
        email_confirmation=os.environ.get("HERALD_EMAIL_CONFIRMATION", "1") != "0",
        public_url=_public_url(),
        token_secret=os.environ.get("HERALD_TOKEN_SECRET", ""),
        auth_cache_seconds=float(os.environ.get("HERALD_AUTH_CACHE_SECONDS", "30")),
        rate_limit_per_minute=int(os.environ.get("HERALD_RATE_LIMIT_PER_MINUTE", "60")),
        public_rate_limit_per_minute=int(os.environ.get("HERALD_PUBLIC_RATE_LIMIT_PER_MINUTE", "120")),
        auth_failure_limit_per_minute=int(os.environ.get("HERALD_AUTH_FAILURE_LIMIT_PER_MINUTE", "30")),
        slack_api_url=os.environ.get("HERALD_SLACK_API_URL", "https://slack.com/api").rstrip("/"),
        slack_client_id=os.environ.get("HERALD_SLACK_CLIENT_ID", ""),
        slack_client_secret=os.environ.get("HERALD_SLACK_CLIENT_SECRET", ""),
        token_ttl_seconds=int(os.environ.get("HERALD_TOKEN_TTL_SECONDS", "3600")),
        telegram_api_url=os.environ.get("HERALD_TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/"),
        x_api_url=os.environ.get("HERALD_X_API_URL", "https://api.x.com").rstrip("/"),
        report_batch_item_failures=_flag("HERALD_REPORT_BATCH_ITEM_FAILURES"),
        portal_session_seconds=int(os.environ.get("HERALD_PORTAL_SESSION_SECONDS", "3600")),
        portal_frame_ancestors=_frame_ancestors(),
        portal_rate_limit_per_minute=int(os.environ.get("HERALD_PORTAL_RATE_LIMIT_PER_MINUTE", "600")),
    )
