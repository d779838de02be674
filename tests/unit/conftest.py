"""The delivery worker's fakes, shared by its unit tests: `deliver_batch` reads its stores and
sender through `get_stores()` and `get_sender()`, which these fixtures swap for the fakes; its
SQS calls go through the shared boto3 client, which `RecordingQueues` answers from memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import clients
from chalicelib.delivery import context as delivery_context
from chalicelib.delivery import worker
from chalicelib.storage.stores import Stores
from tests.fakes.delivery import RecordingQueues, RecordingSender
from tests.fakes.stores import memory_stores


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> Stores:
    """The worker's stores, for the batch under test: fresh fakes."""
    fakes = memory_stores()
    monkeypatch.setattr(worker, "get_stores", lambda: fakes)
    return fakes


@pytest.fixture
def sender(monkeypatch: pytest.MonkeyPatch) -> RecordingSender:
    """The worker's sender: records every POST, answers 200 unless told otherwise."""
    recording = RecordingSender()
    monkeypatch.setattr(delivery_context, "get_sender", lambda: recording)
    return recording


@pytest.fixture
def queues() -> Iterator[RecordingQueues]:
    """The SQS client the worker will use, answered from memory."""
    yield RecordingQueues(clients.client("sqs"))
