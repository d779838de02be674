"""The local stack's faster moto SQS answers as moto's own does.

`keep_moto_bounded` replaces moto's per-message walks (see herald_local/moto_server.py);
these tests hold the replaced parts to SQS's semantics on a queue holding messages in
every state: ready, delayed, in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from herald_local.moto_server import keep_moto_bounded


@pytest.fixture
def sqs() -> Iterator[tuple[Any, str]]:
    keep_moto_bounded()
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        yield client, url


def _counts(client: Any, url: str) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    ]
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {name: int(attributes[name]) for name in names}


def test_counts_receive_and_delay_see_each_message_in_its_state(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=900)
    client.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"now-{i}"} for i in range(3)]
    )
    assert _counts(client, url) == {
        "ApproximateNumberOfMessages": 3,
        "ApproximateNumberOfMessagesDelayed": 1,
        "ApproximateNumberOfMessagesNotVisible": 0,
    }
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    assert {m["Body"] for m in received} <= {"now-0", "now-1", "now-2"}
    assert _counts(client, url) == {
        "ApproximateNumberOfMessages": 1,
        "ApproximateNumberOfMessagesDelayed": 1,
        "ApproximateNumberOfMessagesNotVisible": 2,
    }
    rest = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(rest) == 1  # the delayed message is not handed out


def test_delete_takes_the_current_handle_once_and_refuses_an_unknown_one(sqs: tuple[Any, str]) -> None:
    client, url = sqs
    client.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(5)])
    received = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    first = received[0]["ReceiptHandle"]
    client.delete_message(QueueUrl=url, ReceiptHandle=first)
    client.delete_message(QueueUrl=url, ReceiptHandle=first)  # twice is fine, as on SQS
    answer = client.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "known", "ReceiptHandle": received[1]["ReceiptHandle"]},
            {"Id": "unknown", "ReceiptHandle": "nope"},
        ],
    )
    assert [entry["Id"] for entry in answer["Successful"]] == ["known"]
    assert [(entry["Id"], entry["Code"]) for entry in answer["Failed"]] == [
        ("unknown", "ReceiptHandleIsInvalid")
    ]
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        client.delete_message(QueueUrl=url, ReceiptHandle="never-issued")
    assert _counts(client, url)["ApproximateNumberOfMessagesNotVisible"] == 3


def test_a_message_made_visible_again_is_received_again_and_deleted_by_its_new_handle(
    sqs: tuple[Any, str],
) -> None:
    client, url = sqs
    client.send_message(QueueUrl=url, MessageBody="retry me")
    old = client.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    client.change_message_visibility(QueueUrl=url, ReceiptHandle=old, VisibilityTimeout=0)
    again = client.receive_message(QueueUrl=url)["Messages"][0]
    assert again["Body"] == "retry me"
    client.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert _counts(client, url) == {
        "ApproximateNumberOfMessages": 0,
        "ApproximateNumberOfMessagesDelayed": 0,
        "ApproximateNumberOfMessagesNotVisible": 0,
    }
