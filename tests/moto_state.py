"""The table as moto holds it, read from moto's own state rather than through a Scan.

Tests that compare the whole table before and after each request (nothing written by a
refused one) spent most of their time serialising and parsing Scans; moto's backend has
the same items in DynamoDB's JSON.
"""

from __future__ import annotations

from typing import Any

from chalicelib.settings import get_settings


def table_items(*skipped_prefixes: str) -> list[dict[str, Any]]:
    """Every item in DynamoDB's JSON, sorted by key, but those whose PK starts with a skipped prefix."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    settings = get_settings()
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region].get_table(settings.table_name)
    items = [item.to_json()["Attributes"] for item in table.all_items()]
    return sorted(
        (item for item in items if not item["PK"]["S"].startswith(skipped_prefixes)),
        key=lambda item: (item["PK"]["S"], item["SK"]["S"]),
    )
