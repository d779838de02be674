"""Drive the real Lambda handlers with real SQS messages from moto, the way Lambda would."""

from __future__ import annotations

import json
from typing import Any

from chalicelib import clients
from chalicelib.settings import get_settings


def lambda_record(message: dict[str, Any], queue: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
        "awsRegion": "us-east-1",
    }


def receive(queue: str, limit: int = 10) -> list[dict[str, Any]]:
    answer = clients.client("sqs").receive_message(
        QueueUrl=clients.queue_url(queue),
        MaxNumberOfMessages=limit,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    )
    messages: list[dict[str, Any]] = answer.get("Messages", [])
    return messages


def run_batch(handler: Any, queue: str, messages: list[dict[str, Any]]) -> set[str]:
    """Invoke `handler` (an app.py SQS handler) on `messages`; delete what it did not
    report as failed, as Lambda's event source mapping does. Returns the failed ids."""
    records = [lambda_record(m, queue) for m in messages]
    answer = handler({"Records": records}, None)
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    sqs = clients.client("sqs")
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=clients.queue_url(queue), ReceiptHandle=message["ReceiptHandle"])
    return failed


def drain(handler: Any, queue: str | None = None, rounds: int = 50) -> int:
    """Run batches until the queue is empty, skipping each retry's backoff wait by making
    the failed messages visible again at once, and the long retries waiting as delayed
    messages due at once. Returns the number of batches run."""
    queue = queue or get_settings().deliveries_queue
    sqs = clients.client("sqs")
    for batch in range(rounds):
        messages = receive(queue)
        if not messages and not hurry_retries(queue):
            return batch
        failed = run_batch(handler, queue, messages)
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=clients.queue_url(queue),
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
    raise AssertionError(f"queue {queue} still had messages after {rounds} batches")


def queue_depth(queue: str) -> int:
    attrs = clients.client("sqs").get_queue_attributes(
        QueueUrl=clients.queue_url(queue),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def hurry_retries(queue: str) -> bool:
    """Make the retries waiting in `queue` as delayed messages due and receivable now, as if
    their wait were over (moto keeps them in its own state; SQS has no call for this).
    Deliveries held for a send slot keep waiting. True if any retry was waiting."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    waiting = sqs_backends[DEFAULT_ACCOUNT_ID][get_settings().region].queues[queue]._messages
    hurried = False
    for message in waiting:
        if message.delayed and '"due_at"' in message.body:
            task = json.loads(message.body)
            del task["due_at"]
            message.body = json.dumps(task)
            message.delayed_until = 0
            hurried = True
    return hurried
