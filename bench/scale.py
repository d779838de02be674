"""Fan-out off the request path: what `POST /v1/events` costs for 1, 1,000 and 20,000
matching handlers (latency and AWS calls of the publish itself: storing the event, reading
the scope, enqueueing or handing over), and how fast the fan-out function enqueues
deliveries once it has the job. DynamoDB Local for DynamoDB, moto's server for SQS."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import Counter
from typing import Any

from bench.pagination import bulk_load, make_handlers
from bench.support import environment, local_aws

TABLE = "herald-bench-scale"
SIZES = (1, 1000, 20000)
RUNS = 5
"""Publishes timed per size (each a new event)."""
REQUEST_PATH_CALLS = 17
"""Inline at the limit: put, app's event, two Queries, one BatchGetItem, ten SendMessageBatch, mark."""
JOB_SECONDS = 20
"""How long the fan-out job runs before it hands over (moto's SQS server, not Herald, is what
slows as tens of thousands of messages wait in one queue)."""


class AwsCalls:
    """Counts the AWS calls the container's clients make, by operation."""

    def __init__(self, *clients: Any) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        for client in clients:
            client.meta.events.register("after-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            taken, self.calls = self.calls, Counter()
        return taken


def run() -> dict[str, Any]:
    with local_aws(), environment({"HERALD_TABLE": TABLE}):
        return _run()


def _run() -> dict[str, Any]:
    import boto3

    from chalicelib import clients
    from chalicelib.delivery import fanout
    from chalicelib.settings import get_settings
    from chalicelib.storage.stores import get_stores
    from herald_local.bootstrap import ensure_resources

    settings = get_settings()
    ensure_resources(boto3.session.Session(), settings)
    ddb, sqs = clients.client("dynamodb"), clients.client("sqs")
    bulk_load(ddb, TABLE, [h for size in SIZES for h in make_handlers(f"acct-{size}", size)])
    print(f"  loaded {sum(SIZES)} handlers", file=sys.stderr, flush=True)
    stores = get_stores()
    sqs.get_queue_url(QueueName=settings.deliveries_queue)  # the container's URL lookups, once
    clients.queue_url(settings.deliveries_queue)
    clients.queue_url(settings.fan_out_queue)
    meter = AwsCalls(ddb, sqs)
    rows, checks, calls_by_size = [], {}, {}
    for size in SIZES:
        timings, calls = [], Counter[str]()
        for run in range(RUNS):
            meter.take()
            started = time.perf_counter()
            published = fanout.publish(stores, f"acct-{size}", {"id": f"ev-{run}", "type": "deployment"})
            timings.append((time.perf_counter() - started) * 1000)
            calls = meter.take()
        calls_by_size[size] = sum(calls.values())
        rows.append(
            {
                "matching handlers": size,
                "fan-out": published.fan_out,
                "AWS calls on the request path": calls_by_size[size],
                "of which": ", ".join(f"{name} {n}" for name, n in sorted(calls.items())),
                "median latency ms": round(statistics.median(timings), 1),
            }
        )
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    meter.take()
    job = fanout.FanOutJob(account="acct-20000", event_id="ev-0")
    fanout.run_fan_out(stores, job, "bench-job", deadline=time.monotonic() + JOB_SECONDS)
    seconds = time.perf_counter() - started
    job_calls = meter.take()
    enqueued = job_calls["SendMessageBatch"] * fanout.SQS_BATCH
    rate = enqueued / seconds
    rows.append(
        {
            "matching handlers": SIZES[-1],
            "fan-out": f"the queued job, first {seconds:.0f} s",
            "AWS calls on the request path": "",
            "of which": ", ".join(f"{name} {n}" for name, n in sorted(job_calls.items())),
            "median latency ms": "",
            "deliveries enqueued/s": round(rate),
        }
    )
    checks["request path calls flat from 1,000 to 20,000 handlers"] = (
        calls_by_size[1000] == calls_by_size[20000]
    )
    checks[f"request path calls <= {REQUEST_PATH_CALLS} for every size"] = (
        max(calls_by_size.values()) <= REQUEST_PATH_CALLS
    )
    checks["the job handed over the rest with one SendMessage"] = job_calls["SendMessage"] == 1
    return {"rows": rows, "fan-out deliveries/s": round(rate), "checks": checks}
