"""The local SQS poller against moto, with a throwaway Chalice app (not Herald's)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from chalice.app import Chalice, SQSEvent

from herald_local.poller import LocalPoller

QUEUE = "q-test"


@dataclass
class Recorder:
    """What the throwaway handler saw, batch by batch."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for batch in self.batches for record in batch]

    @property
    def bodies(self) -> list[str]:
        return [record["body"] for record in self.records]


def make_app(
    recorder: Recorder, *, raises: bool = False, answer: Any = None, batch_size: int = 10
) -> Chalice:
    """An app whose SQS handler records each batch and fails the bodies containing "fail"."""
    app = Chalice(app_name="poller-test")

    @app.on_sqs_message(queue=QUEUE, batch_size=batch_size)
    def consume(event: SQSEvent) -> Any:
        records = event.to_dict()["Records"]
        recorder.batches.append(records)
        if raises:
            raise RuntimeError("handler crashed")
        if answer is not None:
            return answer
        return {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if "fail" in r["body"]]
        }

    return app


@pytest.fixture
def sqs(moto_aws: None) -> Any:
    return boto3.session.Session().client("sqs")


@pytest.fixture
def queue_url(sqs: Any) -> str:
    """The test queue; a zero visibility timeout makes a kept message visible again at once."""
    url: str = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    return url


def send(sqs: Any, url: str, *bodies: str) -> list[str]:
    return [sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"] for body in bodies]


def depth(sqs: Any, url: str) -> int:
    """Messages still in the queue, visible or in flight."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def visible_bodies(sqs: Any, url: str, expected: int, timeout: float = 10.0) -> list[str]:
    """Receive until `expected` distinct messages were seen (or the deadline passes)."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        ):
            seen[message["MessageId"]] = message["Body"]
    return sorted(seen.values())


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def only_source(poller: LocalPoller) -> Any:
    (source,) = poller.sources
    return source


def test_handled_messages_are_deleted_and_reported_failures_come_back(sqs: Any, queue_url: str) -> None:
    recorder = Recorder()
    poller = LocalPoller(make_app(recorder))
    sent = send(sqs, queue_url, "ok-1", "fail-2", "ok-3")

    assert poller.poll_once(only_source(poller)) == 3

    assert sorted(recorder.bodies) == ["fail-2", "ok-1", "ok-3"]
    assert sorted(r["messageId"] for r in recorder.records) == sorted(sent)
    assert depth(sqs, queue_url) == 1
    assert visible_bodies(sqs, queue_url, expected=1) == ["fail-2"]

    recorder.batches.clear()
    assert poller.poll_once(only_source(poller)) == 1
    (again,) = recorder.records
    assert again["body"] == "fail-2"
    assert int(again["attributes"]["ApproximateReceiveCount"]) >= 2
    assert depth(sqs, queue_url) == 1


def test_a_raising_handler_deletes_nothing(sqs: Any, queue_url: str) -> None:
    recorder = Recorder()
    poller = LocalPoller(make_app(recorder, raises=True))
    send(sqs, queue_url, "a", "b", "c")

    assert poller.poll_once(only_source(poller)) == 3

    assert sorted(recorder.bodies) == ["a", "b", "c"]
    assert depth(sqs, queue_url) == 3
    assert visible_bodies(sqs, queue_url, expected=3) == ["a", "b", "c"]


def test_a_failure_naming_a_message_outside_the_batch_keeps_the_whole_batch(sqs: Any, queue_url: str) -> None:
    poller = LocalPoller(make_app(Recorder(), answer={"batchItemFailures": [{"itemIdentifier": "nope"}]}))
    send(sqs, queue_url, "a", "b")

    assert poller.poll_once(only_source(poller)) == 2

    assert depth(sqs, queue_url) == 2


def test_records_have_lambdas_shape(sqs: Any, queue_url: str) -> None:
    recorder = Recorder()
    poller = LocalPoller(make_app(recorder))
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sent = sqs.send_message(
        QueueUrl=queue_url,
        MessageBody="hello",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "greeting"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    assert poller.poll_once(only_source(poller)) == 1

    (record,) = recorder.records
    assert record["messageId"] == sent["MessageId"]
    assert record["receiptHandle"]
    assert record["md5OfBody"] == hashlib.md5(b"hello").hexdigest()  # noqa: S324 - SQS's own checksum
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in record["attributes"]
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "greeting",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert depth(sqs, queue_url) == 0


def test_each_batch_is_at_most_batch_size(sqs: Any, queue_url: str) -> None:
    recorder = Recorder()
    poller = LocalPoller(make_app(recorder, batch_size=4))
    send(sqs, queue_url, *(f"m{i}" for i in range(15)))

    while poller.poll_once(only_source(poller)):
        pass

    assert all(len(batch) <= 4 for batch in recorder.batches)
    assert sorted(recorder.bodies) == sorted(f"m{i}" for i in range(15))
    assert depth(sqs, queue_url) == 0


def test_an_app_without_sqs_sources_polls_nothing(moto_aws: None) -> None:
    app = Chalice(app_name="no-queues")

    @app.route("/")
    def index() -> dict[str, str]:
        return {}

    poller = LocalPoller(app)
    assert poller.sources == []
    poller.start()
    assert not sqs_threads()
    poller.stop()


def sqs_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sqs-") and t.is_alive()]


@pytest.fixture
def running(sqs: Any, queue_url: str) -> Iterator[tuple[LocalPoller, Recorder]]:
    recorder = Recorder()
    poller = LocalPoller(make_app(recorder))
    poller.start()
    yield poller, recorder
    poller.stop()


def test_started_poller_consumes_in_the_background_and_stops(
    sqs: Any, queue_url: str, running: tuple[LocalPoller, Recorder]
) -> None:
    poller, recorder = running
    assert [t.name for t in sqs_threads()] == ["sqs-consume"]
    send(sqs, queue_url, "one", "two")

    assert wait_for(lambda: sorted(set(recorder.bodies)) == ["one", "two"] and depth(sqs, queue_url) == 0)

    poller.stop()
    assert not sqs_threads()
