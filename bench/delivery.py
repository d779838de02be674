"""Delivery throughput and fan-out cost, side by side in one run.

2,000 signed webhook deliveries go through the real Lambda handler (batches of 10, a
thread pool of 10) to a receiver that answers after 50 ms; the baseline delivers the
same kind of message one at a time through the same code path. Then one event fans out
to 1,000 handlers and the SendMessageBatch calls are counted.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from bench.support import SlowReceiver, local_aws

DELIVERIES = 2_000
BASELINE_DELIVERIES = 200
HANDLERS = 10
FANOUT_HANDLERS = 1_000
RECEIVER_DELAY = 0.05
ACCOUNT = "bench"
FANOUT_ACCOUNT = "fanout"


def run() -> dict[str, Any]:
    with local_aws():
        from chalicelib import clients
        from chalicelib.settings import get_settings
        from herald_local.bootstrap import ensure_queue, ensure_table

        settings = get_settings()
        ensure_table(clients.client("dynamodb"), settings.table_name)
        ensure_queue(clients.client("sqs"), settings.deliveries_queue, settings.deliveries_dlq)
        receiver = SlowReceiver(RECEIVER_DELAY)
        try:
            return _run(receiver)
        finally:
            receiver.close()


def _tasks(store: Any, handler_ids: list[int], events: int, prefix: str) -> list[dict[str, Any]]:
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
        store.put_event(event, int(now.timestamp()) + 3600)
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


def _run(receiver: SlowReceiver) -> dict[str, Any]:
    from app import deliver
    from chalicelib import clients, services
    from chalicelib.delivery import fanout, worker
    from chalicelib.storage.dynamo import get_store

    with_env = {"HERALD_ALLOW_PRIVATE_TARGETS": "1", "HERALD_REPORT_BATCH_ITEM_FAILURES": "1"}
    from bench.support import environment

    with environment(with_env):
        worker.reset_sender()
        store = get_store()
        body = {"name": "bench", "type": "webhook", "webhook": receiver.url}
        ids = [services.create_handler(store, ACCOUNT, body, "http://bench").id for _ in range(HANDLERS)]

        baseline_records = _tasks(store, ids, BASELINE_DELIVERIES // HANDLERS, "baseline")
        started = time.perf_counter()
        for record in baseline_records:  # the same Lambda handler, a batch of one at a time
            deliver({"Records": [record]}, None)
        baseline_rate = len(baseline_records) / (time.perf_counter() - started)

        records = _tasks(store, ids, DELIVERIES // HANDLERS, "pooled")
        before = receiver.count
        cpu = time.process_time()
        started = time.perf_counter()
        failures = 0
        for start in range(0, len(records), 10):
            answer = deliver({"Records": records[start : start + 10]}, None)
            failures += len(answer["batchItemFailures"])
        elapsed = time.perf_counter() - started
        pooled_rate = len(records) / elapsed
        cpu_share = (time.process_time() - cpu) / elapsed
        delivered = receiver.count - before

        fanout_body = {"name": "f", "type": "webhook", "webhook": receiver.url}
        for _ in range(FANOUT_HANDLERS):
            services.create_handler(store, FANOUT_ACCOUNT, fanout_body, "http://bench")
        calls = {"SendMessageBatch": 0}

        def count(**_: Any) -> None:
            calls["SendMessageBatch"] += 1

        sqs = clients.client("sqs")
        sqs.meta.events.register("after-call.sqs.SendMessageBatch", count)
        published = fanout.publish(store, FANOUT_ACCOUNT, {"type": "deployment"})
        sqs.meta.events.unregister("after-call.sqs.SendMessageBatch", count)
        worker.reset_sender()

    speedup = pooled_rate / baseline_rate
    target_speedup = 0.8 * worker.POOL_SIZE
    return {
        "rows": [
            {"measure": "deliveries/s, one at a time", "value": round(baseline_rate, 1)},
            {
                "measure": f"deliveries/s, batches of 10, pool of {worker.POOL_SIZE}",
                "value": round(pooled_rate, 1),
            },
            {"measure": "speedup (pooled / one at a time)", "value": round(speedup, 2)},
            {
                "measure": f"SendMessageBatch calls, fan-out to {published.matched}",
                "value": calls["SendMessageBatch"],
            },
        ],
        "receiver_delay_ms": int(RECEIVER_DELAY * 1000),
        "bench_process_cpu_share": round(cpu_share, 2),
        "deliveries": len(records),
        "delivered": delivered,
        "checks": {
            f"every one of {len(records)} deliveries arrived once": delivered == len(records)
            and failures == 0,
            f"speedup >= 0.8 x pool size ({target_speedup:g})": speedup >= target_speedup,
            f"fan-out to {FANOUT_HANDLERS} in ceil({FANOUT_HANDLERS}/10) calls": calls["SendMessageBatch"]
            == math.ceil(FANOUT_HANDLERS / 10),
        },
    }
