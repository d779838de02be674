"""AWS clients, created lazily once per container.

Endpoints come only from boto3's standard configuration (AWS_ENDPOINT_URL,
AWS_ENDPOINT_URL_DYNAMODB, ...), never from code, so the same build talks to AWS,
moto's server or DynamoDB Local.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from chalicelib.metrics import emf
from chalicelib.settings import get_settings

CALL_TIMEOUTS = {"connect_timeout": 2, "read_timeout": 8}
"""Seconds per try: over its 5 tries a call stays inside a delivery's 60 s lease (botocore's
defaults, 60 s each, would not); AWS answers these calls in milliseconds."""
logger = logging.getLogger("herald.dead_letters")
_clients: dict[str, Any] = {}
_sessions: list[Any] = []
"""The container's one boto3 session: every client shares its credentials and loaded models."""
_queue_urls: dict[str, str] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """The shared boto3 client for `service` (thread-safe, created on first use)."""
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            import boto3  # deferred: boto3 import is most of a cold start
            from botocore.config import Config

            if not _sessions:
                _sessions.append(boto3.session.Session())
            _clients[service] = _sessions[0].client(
                service,
                region_name=get_settings().region,
                config=Config(
                    retries={"mode": "standard", "max_attempts": 5},
                    max_pool_connections=32,
                    # botocore's client-side validation walks every attribute of every item
                    # sent (a quarter of a delivery's CPU in the bench); AWS validates each
                    # request anyway, and only Herald's own code builds them
                    parameter_validation=False,
                    **CALL_TIMEOUTS,
                ),
            )
        return _clients[service]


def queue_url(name: str) -> str:
    """An SQS queue's URL by name, looked up once per container."""
    found = _queue_urls.get(name)
    if found is None:
        found = _queue_urls[name] = client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    return found


def dead_letter(queue_name: str, body: str, reason: str) -> None:
    """Park a message in a dead-letter queue with the reason as a message attribute, and
    count it (the DlqArrivals metric, which an alarm watches)."""
    client("sqs").send_message(QueueUrl=queue_url(queue_name), MessageBody=body, **_with_reason(reason))
    _count_arrival(queue_name, reason)


def dead_letters(queue_name: str, parked: list[tuple[str, str]]) -> None:
    """Park several (body, reason) messages, ten a SendMessageBatch; raises if SQS refused
    any (the batch is then retried whole rather than lose one)."""
    for start in range(0, len(parked), 10):
        chunk = parked[start : start + 10]
        answer = client("sqs").send_message_batch(
            QueueUrl=queue_url(queue_name),
            Entries=[
                {"Id": str(index), "MessageBody": body, **_with_reason(reason)}
                for index, (body, reason) in enumerate(chunk)
            ],
        )
        if answer.get("Failed"):
            raise RuntimeError(f"SQS refused {len(answer['Failed'])} dead letter(s): {answer['Failed']}")
        for _, reason in chunk:
            _count_arrival(queue_name, reason)


def _with_reason(reason: str) -> dict[str, Any]:
    return {"MessageAttributes": {"reason": {"DataType": "String", "StringValue": reason[:1000]}}}


def _count_arrival(queue_name: str, reason: str) -> None:
    arrival = {"reason": reason[:1000], **emf({"DlqArrivals": (1, "Count")}, {"Queue": queue_name})}
    logger.warning("dead-lettered a message", extra={"fields": arrival})


def reset(*, keep_session: bool = False) -> None:
    """Forget every client (tests switch endpoints between runs: a new client reads them
    again). `keep_session` keeps the session, whose credentials are read once, for a caller
    whose credentials never change (the test suite, where a session costs more than a test)."""
    with _lock:
        _clients.clear()
        _queue_urls.clear()
        if not keep_session:
            _sessions.clear()
