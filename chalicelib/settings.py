"""Configuration from the environment.

Read through `get_settings()` on every use rather than at import, so tests and the
local stack can change the environment per call and Lambda pays nothing at cold start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    table_name: str
    region: str


def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("HERALD_TABLE", "herald"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
