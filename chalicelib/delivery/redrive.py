"""`herald dlq redrive`: give dead-lettered deliveries a fresh set of attempts."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from chalicelib import clients
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores

logger = logging.getLogger("herald.redrive")


def redrive(stores: Stores, limit: int = 1000) -> int:
    """Move up to `limit` messages from the deliveries DLQ back to the deliveries queue.

    Each delivery's attempt count is reset first, so it gets the whole retry schedule
    again; one already delivered is dropped from the DLQ and not sent twice."""
    sqs = clients.client("sqs")
    settings = get_settings()
    dlq = clients.queue_url(settings.deliveries_dlq)
    target = clients.queue_url(settings.deliveries_queue)
    moved = 0
    while moved < limit:
        messages = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=min(10, limit - moved), WaitTimeSeconds=0, VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            try:
                task = DeliveryTask.model_validate_json(message["Body"])
            except ValidationError:
                logger.error("leaving malformed message %s in the DLQ", message["MessageId"])
                continue
            stores.deliveries.reset_delivery(task)
            sqs.send_message(QueueUrl=target, MessageBody=task.model_dump_json())
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved
