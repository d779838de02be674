"""Drive the real Lambda handlers with real SQS messages from moto, the way Lambda would."""

from __future__ import annotations

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
    the failed messages visible again at once. Returns the number of batches run."""
    queue = queue or get_settings().deliveries_queue
    sqs = clients.client("sqs")
    for batch in range(rounds):
        messages = receive(queue)
        if not messages:
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
