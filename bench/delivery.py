"""Delivery throughput and fan-out cost, side by side in one run.

2,000 signed webhook deliveries go through the real Lambda handler (batches of 10, a
thread pool of 10) to a receiver that answers after 50 ms; the baseline delivers the
same kind of message one at a time through the same code path. The same comparison
against a receiver that takes 250 ms shows how far the pool scales once the waiting
dwarfs the CPU each delivery costs. Then one event fans out to 1,000 handlers and the
SendMessageBatch calls are counted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.support import SlowReceiver, environment, local_aws
from chalicelib.models.commands import CreateHandler

DELIVERIES = 2_000
BASELINE_DELIVERIES = 200
HANDLERS = 10
FANOUT_HANDLERS = 1_000
RECEIVER_DELAY = 0.05
SLOW_RECEIVER_DELAY = 0.25
SLOW_DELIVERIES = 400
SLOW_BASELINE_DELIVERIES = 40
WARM_UP = 2_000
ROUNDS = 4
ACCOUNT = "bench"
FANOUT_ACCOUNT = "fanout"


def run() -> dict[str, Any]:
    with local_aws():
        import boto3

        from chalicelib.settings import get_settings
        from herald_local.bootstrap import ensure_resources

        ensure_resources(boto3.session.Session(), get_settings())  # the fan-out below queues a job
        receiver = SlowReceiver(RECEIVER_DELAY)
        slow_receiver = SlowReceiver(SLOW_RECEIVER_DELAY)
        try:
            return _run(receiver, slow_receiver)
        finally:
            receiver.close()
            slow_receiver.close()


def _tasks(stores: Any, handler_ids: list[int], events: int, prefix: str) -> list[dict[str, Any]]:
    """Lambda SQS records for `events` new events x every handler."""
    from chalicelib.models.deliveries import DeliveryTask
    from chalicelib.models.events import Event

    now = datetime.now(UTC)
    records = []
    for number in range(events):
        event = Event(
            account=ACCOUNT,
            id=f"{prefix}-{number}",
            type="deployment",
            app="bench",
            type_data={"status": "success"},
            created_at=now,
        )
        stores.deliveries.put_event(event, int(now.timestamp()) + 3600)
        for handler_id in handler_ids:
            body = DeliveryTask(account=ACCOUNT, event_id=event.id, handler_id=handler_id).model_dump_json()
            records.append(
                {
                    "messageId": f"{event.id}-{handler_id}",
                    "receiptHandle": "-",
                    "body": body,
                    "attributes": {},
                    "eventSourceARN": "arn:aws:sqs:us-east-1:0:herald-deliveries",
                }
            )
    return records


@dataclass(frozen=True)
class Throughput:
    baseline: float
    """Deliveries/s, one message per invocation."""
    pooled: float
    """Deliveries/s, batches of 10 on the pool."""
    cpu_ms: float
    """This process's CPU per pooled delivery (Herald's share: the receiver runs apart)."""
    all_arrived: bool

    @property
    def speedup(self) -> float:
        return self.pooled / self.baseline


def _throughput(
    stores: Any, receiver: SlowReceiver, *, baseline: int, pooled: int, warm_up: int = 0
) -> Throughput:
    """One-at-a-time vs pooled deliveries to `receiver`, through 10 handlers of its own.

    A pooled warm-up can go first: DynamoDB Local is a JVM whose JIT needs a few thousand
    requests before its CPU per request settles (it falls by half), and that is the local
    emulator's start-up, not Herald's. Then the two ways alternate in rounds, so a slow
    spell of this shared machine weighs on both alike."""
    from app import deliver
    from chalicelib import services

    body = CreateHandler(name="bench", type="webhook", settings={"webhook": receiver.url})
    handler_ids = [services.create_handler(stores, ACCOUNT, body, "http://bench").id for _ in range(HANDLERS)]
    label = f"{receiver.delay_ms}ms"

    def run(records: list[dict[str, Any]], batch: int) -> int:
        """Invoke the Lambda handler on `batch` records at a time; count the retries asked for."""
        failures = 0
        for start in range(0, len(records), batch):
            answer = deliver({"Records": records[start : start + batch]}, None)
            failures += len(answer["batchItemFailures"])
        return failures

    run(_tasks(stores, handler_ids, warm_up // HANDLERS, f"{label}-warm-up"), 10)
    before = receiver.count
    elapsed = {"baseline": 0.0, "pooled": 0.0}
    cpu = 0.0
    failures = 0
    for round_number in range(ROUNDS):
        prefix = f"{label}-{round_number}"
        records = _tasks(stores, handler_ids, baseline // ROUNDS // HANDLERS, f"{prefix}-baseline")
        started = time.perf_counter()
        failures += run(records, 1)  # the same Lambda handler, one message at a time
        elapsed["baseline"] += time.perf_counter() - started

        records = _tasks(stores, handler_ids, pooled // ROUNDS // HANDLERS, f"{prefix}-pooled")
        cpu_before = time.process_time()
        started = time.perf_counter()
        failures += run(records, 10)
        elapsed["pooled"] += time.perf_counter() - started
        cpu += time.process_time() - cpu_before
    return Throughput(
        baseline=baseline / elapsed["baseline"],
        pooled=pooled / elapsed["pooled"],
        cpu_ms=cpu / pooled * 1000,
        all_arrived=receiver.count - before == baseline + pooled and failures == 0,
    )


def _run(receiver: SlowReceiver, slow_receiver: SlowReceiver) -> dict[str, Any]:
    from chalicelib import clients, services
    from chalicelib.delivery import fanout
    from chalicelib.delivery.context import POOL_SIZE, reset_sender
    from chalicelib.storage.stores import get_stores

    with_env = {"HERALD_ALLOW_PRIVATE_TARGETS": "1", "HERALD_REPORT_BATCH_ITEM_FAILURES": "1"}
    with environment(with_env):
        reset_sender()
        stores = get_stores()
        fast = _throughput(stores, receiver, baseline=BASELINE_DELIVERIES, pooled=DELIVERIES, warm_up=WARM_UP)
        slow = _throughput(stores, slow_receiver, baseline=SLOW_BASELINE_DELIVERIES, pooled=SLOW_DELIVERIES)

        fanout_body = CreateHandler(name="f", type="webhook", settings={"webhook": receiver.url})
        for _ in range(FANOUT_HANDLERS):
            services.create_handler(stores, FANOUT_ACCOUNT, fanout_body, "http://bench")
        calls = {"SendMessageBatch": 0}

        def count(**_: Any) -> None:
            calls["SendMessageBatch"] += 1

        sqs = clients.client("sqs")
        sqs.meta.events.register("after-call.sqs.SendMessageBatch", count)
        published = fanout.publish(stores, FANOUT_ACCOUNT, {"type": "deployment"})
        job = fanout.FanOutJob(account=FANOUT_ACCOUNT, event_id=published.event_id)
        fanout.run_fan_out(stores, job, "bench-job", deadline=float("inf"))  # past the inline limit
        sqs.meta.events.unregister("after-call.sqs.SendMessageBatch", count)
        reset_sender()

    target_speedup = 0.8 * POOL_SIZE
    fast_ms, slow_ms = receiver.delay_ms, slow_receiver.delay_ms
    figures = {
        f"deliveries/s, one at a time, {fast_ms} ms receiver": round(fast.baseline, 1),
        f"deliveries/s, batches of 10, pool of {POOL_SIZE}, {fast_ms} ms receiver": round(fast.pooled, 1),
        f"speedup (pooled / one at a time), {fast_ms} ms receiver": round(fast.speedup, 2),
        f"speedup (pooled / one at a time), {slow_ms} ms receiver": round(slow.speedup, 2),
        "bench process CPU per pooled delivery, ms": round(fast.cpu_ms, 2),
        f"SendMessageBatch calls, fan-out to {FANOUT_HANDLERS}": calls["SendMessageBatch"],
    }
    return {
        "rows": [{"measure": measure, "value": value} for measure, value in figures.items()],
        "deliveries": DELIVERIES,
        "checks": {
            "every delivery arrived once": fast.all_arrived and slow.all_arrived,
            f"speedup >= 0.8 x pool size ({target_speedup:g}), {fast_ms} ms receiver": fast.speedup
            >= target_speedup,
            f"fan-out to {FANOUT_HANDLERS} in ceil({FANOUT_HANDLERS}/10) calls": calls["SendMessageBatch"]
            == math.ceil(FANOUT_HANDLERS / 10),
        },
    }
