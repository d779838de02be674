"""The one clock Herald decides with (claims and leases, rate limits, expiries, schedules):
a test moves time for all of it in one place (`monkeypatch.setattr(clock, "now", ...)`).
Only what another party checks against the system clock reads it directly: JWT times
(PyJWT verifies them), metric timestamps and time-ordered ids."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
