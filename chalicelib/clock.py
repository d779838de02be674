"""The one clock Herald reads: every "now" of the app comes from `now()`, so a test moves
time for all of it in one place (`monkeypatch.setattr(clock, "now", ...)`)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
