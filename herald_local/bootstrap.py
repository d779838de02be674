"""Create Herald's AWS resources idempotently, from the same definition infra/ deploys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.settings import Settings

INFRA_TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "resources.json"
_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "LocalSecondaryIndexes",
    "GlobalSecondaryIndexes",
    "BillingMode",
)
MAX_RECEIVE_COUNT = 12
"""Safety net only: the worker itself dead-letters a delivery after its last attempt."""


def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(INFRA_TEMPLATE.read_text())["Resources"]
    return resources


def table_definition() -> dict[str, Any]:
    """CreateTable arguments derived from infra/resources.json's HeraldTable."""
    props = _resources()["HeraldTable"]["Properties"]
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
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


def ensure_queue(sqs: Any, name: str, dlq: str) -> str:
    """Create `name` with `dlq` as its dead-letter queue (both idempotent); returns its URL."""
    dlq_url = sqs.create_queue(QueueName=dlq, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
    url: str = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": "360", "MessageRetentionPeriod": "345600", "RedrivePolicy": redrive},
    )["QueueUrl"]
    return url


def ensure_email_sender(session: Any, settings: Settings) -> None:
    """Verify the sender address in (moto's) SES; in AWS verifying it is an operator step."""
    session.client("ses").verify_email_identity(EmailAddress=settings.email_sender)


def ensure_resources(session: Any, settings: Settings) -> None:
    """The table, both queues (with their DLQs) and the SES sender, wherever the session's
    endpoints point."""
    ensure_table(session.client("dynamodb"), settings.table_name)
    ensure_email_sender(session, settings)
    sqs = session.client("sqs")
    ensure_queue(sqs, settings.deliveries_queue, settings.deliveries_dlq)
    ensure_queue(sqs, settings.ingest_queue, settings.ingest_dlq)
