"""Create Herald's AWS resources idempotently, from the same definition infra/ deploys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INFRA_TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "resources.json"
_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "LocalSecondaryIndexes",
    "GlobalSecondaryIndexes",
    "BillingMode",
)


def table_definition() -> dict[str, Any]:
    """CreateTable arguments derived from infra/resources.json's HeraldTable."""
    props = json.loads(INFRA_TEMPLATE.read_text())["Resources"]["HeraldTable"]["Properties"]
    return {k: props[k] for k in _TABLE_KEYS if k in props}


def ensure_table(ddb: Any, name: str) -> bool:
    """Create the table unless it exists; True if it was created."""
    try:
        ddb.describe_table(TableName=name)
        return False
    except ddb.exceptions.ResourceNotFoundException:
        pass
    try:
        ddb.create_table(TableName=name, **table_definition())
    except ddb.exceptions.ResourceInUseException:
        return False
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return True


def ensure_resources(session: Any, table_name: str) -> None:
    ensure_table(session.client("dynamodb"), table_name)
