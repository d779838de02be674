"""`herald dlq redrive` and `POST /v1/dead-letters/redrive`: give dead-lettered deliveries a
fresh set of attempts."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from chalicelib import clients
from chalicelib.models.deliveries import DeliveryTask
from chalicelib.settings import get_settings
from chalicelib.storage.stores import Stores

logger = logging.getLogger("herald.redrive")


def redrive(stores: Stores, limit: int = 1000, account: str | None = None) -> int:
    """Move up to `limit` messages from the deliveries DLQ back to the deliveries queue;
    with `account`, only that account's (the others are put back at once, untouched).

    Each delivery's attempt count is reset first, so it gets the whole retry schedule
    again; one already delivered, or replayed since, is dropped from the DLQ and not sent.
    The DLQ is shared by every account, so an account's redrive reads past the others'
    messages: it stops once a receive brings only messages it has already seen."""
    sqs = clients.client("sqs")
    settings = get_settings()
    dlq = clients.queue_url(settings.deliveries_dlq)
    target = clients.queue_url(settings.deliveries_queue)
    moved = 0
    seen: set[str] = set()
    while moved < limit:
        messages = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=min(10, limit - moved), WaitTimeSeconds=0, VisibilityTimeout=60
        ).get("Messages", [])
        if not messages or all(m["MessageId"] in seen for m in messages):
            _put_back(sqs, dlq, messages)
            break
        for message in messages:
            seen.add(message["MessageId"])
            task = _task_of(message)
            if task is None or (account is not None and task.account != account):
                _put_back(sqs, dlq, [message])
                continue
            if stores.deliveries.reset_delivery(task):
                sqs.send_message(QueueUrl=target, MessageBody=task.model_dump_json())
                moved += 1
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    return moved


def _task_of(message: dict[str, str]) -> DeliveryTask | None:
    try:
        return DeliveryTask.model_validate_json(message["Body"])
    except ValidationError:
        logger.error("leaving malformed message %s in the DLQ", message["MessageId"])
        return None


def _put_back(sqs: Any, dlq: str, messages: list[dict[str, str]]) -> None:
    """Make messages this redrive does not move visible again at once, for the next one."""
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
