"""Fault injection: a receiver that fails, hangs and resets connections while DynamoDB
throttles; in the end every event x handler is delivered, recorded failed, or dead-lettered."""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib import clients
from chalicelib.settings import get_settings
from chalicelib.storage import keys
from chalicelib.storage.table import from_ddb, to_ddb
from tests.functional.sqs_driver import drain, receive

pytestmark = pytest.mark.usefixtures("stack")
EVENTS = 10
FLAKY = 4


class FaultyReceiver:
    """/flakyN: 45 % OK, else 500, a hang past the deadline or a connection reset;
    /down always 500 (ends dead-lettered); /reject always 400 (ends failed)."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        lock = threading.Lock()
        self.delivered_ids: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    roll = rng.random()
                if self.path == "/down" or (self.path.startswith("/flaky") and roll < 0.25):
                    return self._answer(500)
                if self.path == "/reject":
                    return self._answer(400)
                if roll < 0.40:
                    time.sleep(1.5)  # the sender's deadline is 0.5 s
                    return self._answer(200)
                if roll < 0.55:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()  # RST instead of an answer
                    return None
                with lock:
                    receiver.delivered_ids.append(self.headers["webhook-id"])
                return self._answer(200)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


class Throttle:
    """A botocore before-send hook answering a share of DynamoDB calls with a throttling error."""

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.throttled = 0

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        with self.lock:
            if self.rng.random() >= self.share:
                return None
            self.throttled += 1
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "slow",
            }
        ).encode()
        return AWSResponse(request.url, 400, {"x-amzn-RequestId": "throttle"}, _Raw(body))


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyReceiver]:
    from chalicelib.delivery.context import reset_sender

    monkeypatch.setenv("HERALD_DELIVERY_DEADLINE_SECONDS", "0.5")
    reset_sender()
    receiver = FaultyReceiver(seed=20261123)
    yield receiver
    receiver.close()


def _states(event_ids: list[str]) -> dict[tuple[str, int], dict[str, Any]]:
    ddb = clients.client("dynamodb")
    states = {}
    for event_id in event_ids:
        items = ddb.query(
            TableName=get_settings().table_name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :dlv)",
            ExpressionAttributeValues=to_ddb({":pk": keys.event_pk("acme", event_id), ":dlv": "DLV#"}),
        )["Items"]
        for item in map(from_ddb, items):
            states[(event_id, int(item["SK"][4:]))] = item
    return states


def test_under_faults_every_delivery_ends_delivered_failed_or_dead_lettered(
    api: Any, auth: dict[str, str], faulty: FaultyReceiver
) -> None:
    from app import deliver

    paths = [f"/flaky{i}" for i in range(FLAKY)] + ["/down", "/reject"]
    handler_of = {}
    for path in paths:
        body = {"name": path, "type": "webhook", "webhook": faulty.base + path}
        answer = api.http.post(
            "/notification-handlers",
            headers={**auth, "Content-Type": "application/json"},
            body=json.dumps(body),
        )
        handler_of[path] = answer.json_body["data"]["id"]
    event_ids = []
    for number in range(EVENTS):
        answer = api.http.post(
            "/v1/events",
            headers={**auth, "Content-Type": "application/json"},
            body=json.dumps({"type": "deployment", "id": f"ev-{number}"}),
        )
        assert answer.json_body["matched"] == len(paths)
        event_ids.append(answer.json_body["id"])
    sent = EVENTS * len(paths)

    throttle = Throttle(share=0.1, seed=7)
    events = clients.client("dynamodb").meta.events
    events.register_first("before-send.dynamodb", throttle)
    try:
        drain(deliver, rounds=500)
    finally:
        events.unregister("before-send.dynamodb", throttle)
    assert throttle.throttled > 0, "the fault injection must have fired"

    states = _states(event_ids)
    assert len(states) == sent
    delivered = {pair for pair, state in states.items() if state["status"] == "delivered"}
    failed = {pair for pair, state in states.items() if state["status"] == "failed"}
    dead = {
        (m["event_id"], m["handler_id"])
        for m in map(lambda m: json.loads(m["Body"]), _all(get_settings().deliveries_dlq))
    }
    assert len(delivered) + len(failed) == sent, "every event x handler ended delivered or failed"
    assert dead <= failed, "every dead-lettered delivery is recorded failed"
    assert {(e, handler_of["/down"]) for e in event_ids} <= dead
    assert not {(e, handler_of["/reject"]) for e in event_ids} & dead, "a permanent 4xx is not dead-lettered"
    assert sent == len(delivered) + len(failed - dead) + len(dead)
    flaky_ids = {handler_of[p] for p in paths if p.startswith("/flaky")}
    assert {f"msg_{e}_{h}" for e, h in delivered} == set(faulty.delivered_ids) | {
        f"msg_{e}_{h}" for e, h in delivered if h not in flaky_ids
    }


def _all(queue: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while batch := receive(queue):
        found += batch
        for message in batch:
            clients.client("sqs").delete_message(
                QueueUrl=clients.queue_url(queue), ReceiptHandle=message["ReceiptHandle"]
            )
    return found
