"""Run a Chalice app's SQS handlers locally, the way Lambda's event source mapping would.

`chalice local` serves HTTP only, so without this nothing would consume the queues in
development. Each `@app.on_sqs_message` source gets a thread that long-polls its queue,
hands the batch to the registered handler as a Lambda SQS event and then deletes what
Lambda would delete: everything on success, nothing when the handler raises, and all but
the reported `batchItemFailures` otherwise (those come back after their visibility timeout).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any

import boto3
from chalice.app import Chalice, SQSEventConfig
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from chalice.local import LambdaContext

logger = logging.getLogger(__name__)

WAIT_SECONDS = 1
"""Long-poll wait: short, so `stop()` is noticed within about a second."""
ERROR_PAUSE_SECONDS = 2.0
"""After a failed receive (queue missing, endpoint down), so errors do not spin."""
SQS_MAX_MESSAGES = 10
"""ReceiveMessage and DeleteMessageBatch take at most 10 messages."""


def _queue_name(source: SQSEventConfig) -> str:
    if source.queue:
        return source.queue
    if source.queue_arn:
        return source.queue_arn.rsplit(":", 1)[-1]
    raise ValueError(f"SQS event source {source.name} names no queue")


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda spells it (camelCase, binary as base64)."""
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return converted


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of Lambda's SQS event."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _failed_ids(answer: Any, batch_ids: set[str]) -> set[str] | None:
    """The ids to keep per a partial-batch answer; None means keep the whole batch.

    Like Lambda, an answer naming a message that is not in the batch fails it all."""
    failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
    if not failures:
        return set()
    ids = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
    if not all(i in batch_ids for i in ids):
        logger.error("invalid batchItemFailures %r: the whole batch will be retried", failures)
        return None
    return {str(i) for i in ids}


class LocalPoller:
    """Consumes every SQS event source of `app` with one thread per source.

    `lambda_timeout` and `lambda_memory_size` only fill the context handed to handlers,
    so that `context.get_remaining_time_in_millis()` counts down as it would in Lambda."""

    def __init__(
        self,
        app: Chalice,
        session: boto3.session.Session | None = None,
        *,
        lambda_timeout: int = DEFAULT_LAMBDA_TIMEOUT,
        lambda_memory_size: int = DEFAULT_LAMBDA_MEMORY_SIZE,
    ) -> None:
        self.app = app
        self._sqs = (session or boto3.session.Session()).client("sqs")
        self._region: str = self._sqs.meta.region_name
        self._lambda_timeout = lambda_timeout
        self._lambda_memory_size = lambda_memory_size
        self._queues: dict[str, tuple[str, str]] = {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def sources(self) -> list[SQSEventConfig]:
        return [source for source in self.app.event_sources if isinstance(source, SQSEventConfig)]

    def _queue(self, source: SQSEventConfig) -> tuple[str, str]:
        """The queue's (URL, ARN), looked up once."""
        name = _queue_name(source)
        if name not in self._queues:
            url = self._sqs.get_queue_url(QueueName=name)["QueueUrl"]
            arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self._queues[name] = (url, arn)
        return self._queues[name]

    def poll_once(self, source: SQSEventConfig) -> int:
        """Receive one batch for `source`, run its handler and settle the messages.

        Returns how many messages were handed to the handler."""
        url, arn = self._queue(source)
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(source.batch_size, SQS_MAX_MESSAGES)),
            WaitTimeSeconds=WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [lambda_record(m, arn, self._region) for m in messages]}
        context = LambdaContext(
            source.name, self._lambda_memory_size, max_runtime_ms=self._lambda_timeout * 1000
        )
        try:
            answer = self.app.handler_map[source.name](event, context)
        except Exception:
            logger.exception("%s raised on %d message(s); they will be retried", source.name, len(messages))
            return len(messages)
        failed = _failed_ids(answer, {m["MessageId"] for m in messages})
        if failed is None:
            return len(messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(url, done)
        logger.info(
            "%s: %d message(s) handled, %d to retry", source.name, len(messages), len(messages) - len(done)
        )
        return len(messages)

    def _delete(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_MESSAGES):
            chunk = messages[start : start + SQS_MAX_MESSAGES]
            answer = self._sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in answer.get("Failed", []):
                logger.error("could not delete a message from %s: %s", url, failure.get("Message"))

    def _run(self, source: SQSEventConfig) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once(source)
            except Exception:
                if self._stopping.is_set():
                    return
                logger.exception("polling %s for %s failed", _queue_name(source), source.name)
                self._stopping.wait(ERROR_PAUSE_SECONDS)

    def start(self) -> None:
        """One daemon thread per SQS source; an app without any runs nothing."""
        self._stopping.clear()
        for source in self.sources:
            thread = threading.Thread(
                target=self._run, args=(source,), name=f"sqs-{source.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        names = ", ".join(source.name for source in self.sources) or "none"
        logger.info("SQS handlers polled locally: %s", names)

    def request_stop(self) -> None:
        """Ask the threads to finish after their current batch, without waiting."""
        self._stopping.set()

    def stop(self, timeout: float = WAIT_SECONDS + 4.0) -> None:
        """Ask the threads to finish and wait up to `timeout` for them.

        A handler still running after that is abandoned (its thread is a daemon): its
        messages were not deleted, so they come back, as after a Lambda timeout."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s is still running; abandoning it", thread.name)
        self._threads.clear()
