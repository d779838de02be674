"""CPU per delivery: the delivery function against a bare pooled urllib3 POST, side by side.

The physical floor for our sender is a POST through a urllib3 pool of 10, ten at a time, to
the same receiver (a process of its own, answering at once, so waiting costs no CPU on
either side). The function runs through the real Lambda handler on batches of 10 in rounds
that alternate with the bare POSTs, so a busy spell of the shared machine weighs on both.

This process's CPU (time.process_time) is what is counted. DynamoDB Local is a JVM of its
own, so its CPU is not; the boto3 client's is (serialising, signing, parsing), as it is on
Lambda. moto's SQS server runs in this process, but a batch that delivers makes no SQS call.
The same function on the in-memory stores shows Herald's own share without the AWS client.

Two shapes of batch: a fan-out (one event to 10 handlers, what a publish enqueues) and a
burst (10 events to one handler, what a busy source sends its few handlers).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from bench.delivery import _tasks
from bench.scale import AwsCalls
from bench.support import SlowReceiver, environment, local_aws
from chalicelib.models.commands import CreateHandler

ACCOUNT = "bench"
BATCH = 10
DELIVERIES = 500
"""Per shape and round."""
ROUNDS = 4
TARGET = 2.0
"""The function's CPU per delivery at most this many times a bare POST's (issue 17)."""


def run() -> dict[str, Any]:
    with local_aws():
        from chalicelib import clients
        from chalicelib.settings import get_settings
        from herald_local.bootstrap import ensure_table

        ensure_table(clients.client("dynamodb"), get_settings().table_name)
        receiver = SlowReceiver(0)
        try:
            with environment({"HERALD_ALLOW_PRIVATE_TARGETS": "1", "HERALD_REPORT_BATCH_ITEM_FAILURES": "1"}):
                return _run(receiver)
        finally:
            receiver.close()


def _handlers(stores: Any, url: str, count: int) -> list[int]:
    from chalicelib import services

    body = CreateHandler(name="bench", type="webhook", settings={"webhook": url})
    return [services.create_handler(stores, ACCOUNT, body, "http://bench").id for _ in range(count)]


def _fan_out(stores: Any, handler_ids: list[int], prefix: str) -> list[dict[str, Any]]:
    """Batches of one event to 10 handlers: the records in the order a publish enqueues them."""
    return _tasks(stores, handler_ids, DELIVERIES // BATCH, prefix)


def _burst(stores: Any, handler_ids: list[int], prefix: str) -> list[dict[str, Any]]:
    """Batches of 10 events to one handler."""
    return [
        record
        for handler_id in handler_ids
        for record in _tasks(stores, [handler_id], DELIVERIES // len(handler_ids), f"{prefix}-{handler_id}")
    ]


def _deliver(records: list[dict[str, Any]]) -> None:
    from app import deliver

    for start in range(0, len(records), BATCH):
        answer = deliver({"Records": records[start : start + BATCH]}, None)
        if answer["batchItemFailures"]:
            raise RuntimeError(f"a bench delivery failed: {answer}")


@contextmanager
def _on(fakes: Any) -> Iterator[None]:
    """The delivery function on `fakes`, the in-memory stores of the unit tier."""
    from chalicelib.delivery import worker

    real = worker.get_stores
    worker.get_stores = lambda: fakes
    try:
        yield
    finally:
        worker.get_stores = real


def _bare_posts(url: str, count: int, body: bytes) -> None:
    """The floor: `count` POSTs through one urllib3 pool, ten at a time."""
    import urllib3

    with ThreadPoolExecutor(BATCH) as pool:
        http = urllib3.PoolManager(maxsize=BATCH)

        def post(_: int) -> int:
            return int(
                http.request("POST", url, body=body, headers={"Content-Type": "application/json"}).status
            )

        for _ in range(0, count, BATCH):
            if set(pool.map(post, range(BATCH))) != {200}:
                raise RuntimeError("the receiver refused a bare POST")
        http.clear()


def _cpu_ms(action: Callable[[], None], count: int) -> float:
    started = time.process_time()
    action()
    return (time.process_time() - started) * 1000 / count


def _run(receiver: SlowReceiver) -> dict[str, Any]:
    from chalicelib import clients
    from chalicelib.delivery.context import reset_sender
    from chalicelib.storage.stores import get_stores
    from tests.fakes.stores import memory_stores

    reset_sender()
    stores = get_stores()
    handler_ids = _handlers(stores, receiver.url, BATCH)
    body = _fan_out(stores, handler_ids[:1], "body")[0]["body"].encode() * 4  # about a webhook's size
    _deliver(_fan_out(stores, handler_ids, "warm-up"))
    calls = AwsCalls(clients.client("dynamodb"), clients.client("sqs"))
    samples: dict[str, list[float]] = {"fan-out": [], "burst": [], "in-memory": [], "bare": []}
    counted: dict[str, Counter[str]] = {"fan-out": Counter(), "burst": Counter()}
    fakes = memory_stores()
    memory_ids = _handlers(fakes, receiver.url, BATCH)
    arrived = receiver.count
    for round_number in range(ROUNDS):
        for shape, make in (("fan-out", _fan_out), ("burst", _burst)):
            records = make(stores, handler_ids, f"{shape}-{round_number}")
            calls.take()
            samples[shape].append(_cpu_ms(lambda records=records: _deliver(records), len(records)))
            counted[shape] += calls.take()
            samples["bare"].append(_cpu_ms(lambda: _bare_posts(receiver.url, DELIVERIES, body), DELIVERIES))
        records = _fan_out(fakes, memory_ids, f"memory-{round_number}")
        with _on(fakes):
            samples["in-memory"].append(_cpu_ms(lambda records=records: _deliver(records), len(records)))
        samples["bare"].append(_cpu_ms(lambda: _bare_posts(receiver.url, DELIVERIES, body), DELIVERIES))
    arrived = receiver.count - arrived
    reset_sender()
    bare = sum(samples["bare"]) / len(samples["bare"])
    cpu = {shape: sum(values) / len(values) for shape, values in samples.items()}
    delivered = DELIVERIES * ROUNDS
    expected = delivered * (len(samples) - 1) + DELIVERIES * len(samples["bare"])
    rows = [
        {
            "measure": f"CPU per delivery, {shape} batches"
            + (" on DynamoDB Local" if shape in counted else ""),
            "ms": round(cpu[shape], 2),
            "bare POST ms": round(bare, 2),
            "ratio": round(cpu[shape] / bare, 2),
            "AWS calls per delivery": round(sum(counted[shape].values()) / delivered, 2)
            if shape in counted
            else "",
            "of which": ", ".join(f"{name} {n / delivered:g}" for name, n in sorted(counted[shape].items()))
            if shape in counted
            else "",
        }
        for shape in ("fan-out", "burst", "in-memory")
    ]
    fan_out_ratio = rows[0]["ratio"]
    return {
        "rows": rows,
        "aws_calls_per_delivery": {shape: dict(c) for shape, c in counted.items()},
        "deliveries_per_shape": delivered,
        "checks": {
            "every delivery and bare POST arrived once": arrived == expected,
            f"CPU per delivery (fan-out batches) <= {TARGET:g} x a bare POST: {fan_out_ratio}": fan_out_ratio
            <= TARGET,
        },
    }
