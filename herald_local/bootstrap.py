"""Create Herald's AWS resources idempotently, from the same definition infra/ deploys."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
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
_QUEUE_KEYS = ("VisibilityTimeout", "MessageRetentionPeriod")


@functools.cache
def _resources() -> dict[str, Any]:
    """Read once: the template does not change while a process runs (tests create a table
    per test)."""
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


@dataclass(frozen=True)
class QueueShape:
    """A queue's and its DLQ's attributes as the template deploys them (names excluded)."""

    attributes: dict[str, str]
    dlq_attributes: dict[str, str]
    max_receive_count: int


def queue_shape(logical_id: str) -> QueueShape:
    """The template's `logical_id` queue and the DLQ its RedrivePolicy names, so local queues
    time out, expire and dead-letter exactly like the deployed ones."""
    resources = _resources()
    props = resources[logical_id]["Properties"]
    redrive = props["RedrivePolicy"]
    dlq_props = resources[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    return QueueShape(
        attributes={k: str(props[k]) for k in _QUEUE_KEYS if k in props},
        dlq_attributes={k: str(dlq_props[k]) for k in _QUEUE_KEYS if k in dlq_props},
        max_receive_count=int(redrive["maxReceiveCount"]),
    )


def ensure_queue(sqs: Any, name: str, dlq: str, logical_id: str = "DeliveriesQueue") -> str:
    """Create `name` with `dlq` as its dead-letter queue (both idempotent), shaped like the
    template's `logical_id` queue; returns its URL."""
    shape = queue_shape(logical_id)
    dlq_url = sqs.create_queue(QueueName=dlq, Attributes=shape.dlq_attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": shape.max_receive_count})
    url: str = sqs.create_queue(QueueName=name, Attributes={**shape.attributes, "RedrivePolicy": redrive})[
        "QueueUrl"
    ]
    return url


def ensure_email_sender(session: Any, settings: Settings) -> None:
    """Verify the sender address in (moto's) SES; in AWS verifying it is an operator step."""
    session.client("ses").verify_email_identity(EmailAddress=settings.email_sender)


def ensure_resources(session: Any, settings: Settings) -> None:
    """The table, the queues (with their DLQs) and the SES sender, wherever the session's
    endpoints point."""
    ensure_table(session.client("dynamodb"), settings.table_name)
    ensure_email_sender(session, settings)
    ensure_queues(session.client("sqs"), settings)


def ensure_queues(sqs: Any, settings: Settings) -> None:
    """The deliveries, ingest and fan-out queues, each with its DLQ."""
    ensure_queue(sqs, settings.deliveries_queue, settings.deliveries_dlq)
    ensure_queue(sqs, settings.ingest_queue, settings.ingest_dlq, "IngestQueue")
    ensure_queue(sqs, settings.fan_out_queue, settings.fan_out_dlq, "FanOutQueue")
