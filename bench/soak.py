"""`make soak`: a local stack of its own under mixed traffic for a while, then SIGTERM.

The stack (`python -m herald_local.stack`, DynamoDB Local with a fresh data directory, free
loopback ports) gets, for `--minutes`:
- events published at a steady rate, each to three webhooks that answer 200, one that
  refuses half of the first attempts (503, then 200 on the retry) and, for one event in
  ten, one that always answers 500 (retried on Herald's schedule: 5 s, 5 min, 30 min...);
- API clients reading and writing handlers, attempt logs, test notifications, the inbox,
  the catalogue and the OpenAPI document, creating and deleting handlers;
- every minute, 20 clients creating handlers at the same moment.
It samples each stack process's resident memory and the deliveries queue's depth (waiting, in
flight, delayed: a backlog shows there, not as lost deliveries), reads the attempt logs now and then (an
entry must never change or vanish), and at the end holds every log to what the receivers
saw and to the delivery records in DynamoDB, then sends SIGTERM and times the stop.

Bounded: a fixed request rate, a fixed number of clients, every request with a timeout,
and the run ends after its minutes plus at most `drain + settle` seconds.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.stackload import (
    ACCOUNT,
    Api,
    Findings,
    Hit,
    Ledger,
    Receivers,
    Table,
    hold_logs_to_receivers,
    memory_summary,
)
from herald_local.harness import StackProcess

STOP_LIMIT_SECONDS = 5.0
FLAT_GROWTH_MIB = 64.0
"""A process 'stays flat' if it grows less than this after the warm-up."""
SOAK_ENV = {
    "HERALD_ACCOUNT": ACCOUNT,
    # The limits stay on (every request still counts in DynamoDB) but never refuse the soak.
    "HERALD_RATE_LIMIT_PER_MINUTE": "100000",
    "HERALD_PUBLIC_RATE_LIMIT_PER_MINUTE": "100000",
}


@dataclass(frozen=True)
class SoakConfig:
    minutes: float = 10.0
    event_interval: float = 0.5
    """One event every this many seconds."""
    doomed_every: int = 10
    """Every n-th event is for the app whose handler always fails."""
    api_clients: int = 3
    api_interval: float = 0.4
    """Each API client's pause between two operations."""
    burst_every: float = 60.0
    burst_clients: int = 20
    burst_per_client: int = 3
    sample_every: float = 30.0
    check_every: float = 300.0
    warmup: float = 120.0
    drain: float = 90.0
    """At the end, how long to wait for the last deliveries."""
    settle: float = 30.0
    """How long a ledger discrepancy must persist to count (an attempt in flight does not)."""

    @property
    def seconds(self) -> float:
        return self.minutes * 60


@dataclass
class Tracked:
    """The long-lived handlers, by role."""

    ok: list[int] = field(default_factory=list)
    flaky: int = 0
    fail: int = 0

    @property
    def all(self) -> list[int]:
        return [*self.ok, self.flaky, self.fail]


@dataclass
class State:
    config: SoakConfig
    api: Api
    receivers: Receivers
    stack: StackProcess
    tracked: Tracked
    stop: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    published: list[tuple[str, str]] = field(default_factory=list)
    """(event id, app) of every accepted event."""
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    bursts: list[dict[str, int]] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def paths(self) -> dict[int, str]:
        paths = {handler: f"/ok/{i}" for i, handler in enumerate(self.tracked.ok, 1)}
        return paths | {self.tracked.flaky: "/flaky/1", self.tracked.fail: "/fail/1"}


def setup(api: Api, receivers: Receivers) -> Tracked:
    tracked = Tracked()
    for i in range(1, 4):
        handler = api.create_webhook(f"ok-{i}", receivers.url(f"/ok/{i}"))
        assert handler is not None, api.unexpected + api.server_errors
        tracked.ok.append(handler)
    flaky = api.create_webhook("flaky", receivers.url("/flaky/1"))
    fail = api.create_webhook("fail", receivers.url("/fail/1"), app="doomed")
    assert flaky is not None and fail is not None, api.unexpected + api.server_errors
    tracked.flaky, tracked.fail = flaky, fail
    return tracked


def paced(state: State, interval: float, work: Callable[[int], None]) -> None:
    """Call work(n) every `interval` seconds (never faster) until the soak stops."""
    n = 0
    next_at = time.monotonic()
    while not state.stop.is_set():
        work(n)
        n += 1
        next_at = max(next_at + interval, time.monotonic())
        state.stop.wait(max(0.0, next_at - time.monotonic()))


def publisher(state: State) -> None:
    def publish(n: int) -> None:
        app = "doomed" if n % state.config.doomed_every == state.config.doomed_every - 1 else "web"
        answer = state.api.call(
            "publish event",
            "POST",
            "/v1/events",
            json={"type": "deployment", "app": app, "type_data": {"status": "success", "n": n}},
            expect=(202,),
        )
        if answer.status == 202:
            with state.lock:
                state.published.append((str(answer.body["id"]), app))

    paced(state, state.config.event_interval, publish)


def api_client(state: State, seed: int) -> None:
    chance = random.Random(seed)  # a traffic mix, not a secret
    api, tracked = state.api, state.tracked

    def create_read_delete() -> None:
        handler = api.create_webhook(
            "temporary", state.receivers.url("/ok/temporary"), send_all_events=False, send_all_alerts=False
        )
        if handler is not None:
            api.call("get handler", "GET", f"/notification-handlers/{handler}")
            api.call("delete handler", "DELETE", f"/notification-handlers/{handler}", expect=(204,))

    operations: list[tuple[float, Callable[[], Any]]] = [
        (3, lambda: api.call("list handlers", "GET", "/notification-handlers", params={"page": 1})),
        (3, lambda: api.call("get handler", "GET", f"/notification-handlers/{chance.choice(tracked.all)}")),
        (
            1,
            lambda: api.call(
                "update handler",
                "POST",
                f"/notification-handlers/{chance.choice(tracked.all)}",
                files={"name": (None, f"renamed {chance.randrange(10**6)}")},
            ),
        ),
        (
            2,
            lambda: api.call(
                "read attempt log", "GET", f"/notification-handlers/{chance.choice(tracked.all)}/deliveries"
            ),
        ),
        (1, lambda: api.call("test notification", "POST", f"/notification-handlers/{tracked.ok[0]}/test")),
        (1, create_read_delete),
        (1, lambda: api.call("inbox", "GET", "/notifications")),
        (1, lambda: api.call("event types", "GET", "/v1/event_types", public=True)),
        (0.5, lambda: api.call("platforms", "GET", "/v1/notification_platforms", public=True)),
        (0.5, lambda: api.call("openapi", "GET", "/openapi.json", public=True)),
    ]
    weights = [weight for weight, _ in operations]

    def one(_: int) -> None:
        chance.choices(operations, weights)[0][1]()

    paced(state, state.config.api_interval, one)


def burst(state: State) -> dict[str, int]:
    """`burst_clients` clients create handlers at the same moment, then delete them."""
    config = state.config
    start = threading.Barrier(config.burst_clients)
    created: list[int | None] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        start.wait()
        for j in range(config.burst_per_client):
            handler = state.api.create_webhook(
                f"burst-{i}-{j}",
                state.receivers.url("/ok/burst"),
                send_all_events=False,
                send_all_alerts=False,
            )
            with lock:
                created.append(handler)

    def delete(handler: int) -> None:
        state.api.call("delete handler", "DELETE", f"/notification-handlers/{handler}", expect=(204,))

    run_all([functools.partial(client, i) for i in range(config.burst_clients)])
    ids = [handler for handler in created if handler is not None]
    run_all([functools.partial(delete, h) for h in ids], width=config.burst_clients)
    return {"wanted": len(created), "created": len(ids), "distinct ids": len(set(ids))}


def run_all(jobs: list[Callable[[], Any]], width: int | None = None) -> None:
    """Run `jobs` on `width` threads (default: one each) and wait for all."""
    pending = list(jobs)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                job = pending.pop()
            job()

    threads = [threading.Thread(target=worker) for _ in range(width or len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def burster(state: State) -> None:
    while not state.stop.wait(state.config.burst_every):
        result = burst(state)
        with state.lock:
            state.bursts.append(result)


def delivered(hits: list[Hit]) -> int:
    return sum(1 for hit in hits if 200 <= hit.status < 300)


def queue_depth(stack: StackProcess) -> Callable[[], int | None]:
    """A reader of the deliveries queue's messages (waiting + in flight + delayed) on the
    stack's SQS; None when the queue cannot be read."""
    import boto3

    exported = stack.exported()
    sqs = boto3.client(
        "sqs",
        endpoint_url=exported.get("AWS_ENDPOINT_URL_SQS") or exported["AWS_ENDPOINT_URL"],
        region_name=exported["AWS_REGION"],
        aws_access_key_id=exported.get("AWS_ACCESS_KEY_ID", "local"),
        aws_secret_access_key=exported.get("AWS_SECRET_ACCESS_KEY", "local"),
    )
    name = exported.get("HERALD_DELIVERIES_QUEUE", "herald-deliveries")
    counts = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    counts.append("ApproximateNumberOfMessagesDelayed")

    def read() -> int | None:
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counts)["Attributes"]
        except Exception:  # the stack stopping, or moto busy: a gap in the samples, not a failure
            return None
        return sum(int(found.get(count, 0)) for count in counts)

    return read


def sampler(state: State, progress: Callable[[str], None]) -> None:
    queued = queue_depth(state.stack)
    while True:
        memory = {proc.role: kib for proc in state.stack.processes() if (kib := proc.rss_kib()) is not None}
        at = state.elapsed()
        hits = state.receivers.hits()
        point = {
            "minute": round(at / 60, 2),
            "requests": state.api.requests,
            "server_errors": len(state.api.server_errors),
            "attempts_received": len(hits),
            "delivered": delivered(hits),
            "deliveries_queued": queued(),
            **{f"{role}_mib": round(kib / 1024, 1) for role, kib in sorted(memory.items())},
        }
        with state.lock:
            state.samples.append((at, memory))
            state.timeline.append(point)
        progress(" ".join(f"{k}={v}" for k, v in point.items()))
        if state.stop.wait(state.config.sample_every):
            return


def checker(state: State) -> None:
    """Read every tracked log now and then: an entry seen once must never change."""
    while not state.stop.wait(state.config.check_every):
        for handler in state.tracked.all:
            log = state.api.attempt_log(handler)
            if log is not None:
                state.ledger.observe(handler, log[0])


def drain(state: State) -> dict[str, int]:
    """Wait (bounded) until every event reached every handler that must deliver it; count
    what did not and what came twice."""
    expected = {handler: [e for e, _ in state.published] for handler in state.tracked.ok}
    expected[state.tracked.flaky] = [e for e, _ in state.published]
    paths = state.paths()

    def missing() -> tuple[int, int]:
        got: Counter[tuple[str, str]] = Counter(
            (hit.path, hit.event_id) for hit in state.receivers.hits() if 200 <= hit.status < 300
        )
        lacking = sum(1 for h, events in expected.items() for e in events if not got[(paths[h], e)])
        twice = sum(1 for h, events in expected.items() for e in events if got[(paths[h], e)] > 1)
        return lacking, twice

    deadline = time.monotonic() + state.config.drain
    lacking, twice = missing()
    while lacking and time.monotonic() < deadline:
        time.sleep(1)
        lacking, twice = missing()
    return {"undelivered": lacking, "delivered twice": twice, "still queued": queue_depth(state.stack)() or 0}


def final_ledger(state: State) -> Findings:
    return hold_logs_to_receivers(
        state.api,
        state.ledger,
        state.receivers,
        paths=state.paths(),
        events=[event for event, _ in state.published],
        table=Table.of(state.stack.exported()),
        window=state.config.settle,
    )


def run_soak(config: SoakConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run one soak and return its report (see `print_report`)."""
    data = Path(tempfile.mkdtemp(prefix="herald-soak-"))
    receivers = Receivers(flaky_share=0.5)
    key = "hk_soak-" + secrets.token_urlsafe(24)
    stack = StackProcess(data, SOAK_ENV, api_key=key)
    try:
        stack.start()
        api = Api(stack.url, key)
        state = State(config, api, receivers, stack, setup(api, receivers))
        progress(f"soak: {config.minutes:g} min against {stack.url} (data in {data})")
        threads = [
            threading.Thread(target=publisher, args=(state,), name="publisher"),
            threading.Thread(target=burster, args=(state,), name="burster"),
            threading.Thread(target=sampler, args=(state, progress), name="sampler"),
            threading.Thread(target=checker, args=(state,), name="checker"),
        ] + [
            threading.Thread(target=api_client, args=(state, seed), name=f"client-{seed}")
            for seed in range(config.api_clients)
        ]
        for thread in threads:
            thread.start()
        state.stop.wait(config.seconds)
        state.stop.set()
        for thread in threads:
            thread.join()
        progress("traffic stopped; waiting for the last deliveries")
        drained = drain(state)
        progress("holding the attempt logs to the receivers and the delivery records")
        findings = final_ledger(state)
        memory = {proc.role: proc.rss_kib() for proc in stack.processes()}
        state.samples.append((state.elapsed(), {k: v for k, v in memory.items() if v is not None}))
        seconds, left = stack.terminate()
        return report(state, drained, findings, seconds, [p.role for p in left])
    finally:
        stack.stop()
        receivers.close()
        shutil.rmtree(data, ignore_errors=True)


def report(
    state: State, drained: dict[str, int], findings: Findings, stop_seconds: float, left: list[str]
) -> dict[str, Any]:
    config, api = state.config, state.api
    hits = state.receivers.hits()
    by_kind = Counter(hit.path.split("/")[1] for hit in hits)
    warmup = min(config.warmup, config.seconds / 4)
    memory = memory_summary(state.samples, warmup)
    errors = [line for line in state.stack.output.lines if "Traceback" in line or " ERROR " in line]
    bursts = state.bursts
    checks = {
        "no 5xx and no failed connection": not api.server_errors,
        "no unexpected answer (4xx)": not api.unexpected,
        "every event reached each subscribed receiver exactly once": not (
            drained["undelivered"] or drained["delivered twice"]
        ),
        "no lost, rewritten or renumbered attempt-log entry, no drifting counter": not findings.problems,
        "concurrent creations all succeeded with distinct ids": all(
            b["created"] == b["wanted"] == b["distinct ids"] for b in bursts
        ),
        f"SIGTERM stopped every process within {STOP_LIMIT_SECONDS:g} s": not left
        and stop_seconds <= STOP_LIMIT_SECONDS,
        f"memory flat after warm-up (each process grew < {FLAT_GROWTH_MIB:g} MiB)": all(
            m["growth_after_warmup_mib"] < FLAT_GROWTH_MIB for m in memory.values()
        ),
    }
    return {
        "config": asdict(config),
        "minutes": round(state.elapsed() / 60, 1),
        "requests": api.requests,
        "requests_by_status": {str(k): v for k, v in sorted(api.statuses.items())},
        "requests_by_route": dict(api.by_route.most_common()),
        "server_errors": api.server_errors[:20],
        "server_error_count": len(api.server_errors),
        "unexpected": api.unexpected[:20],
        "events_published": len(state.published),
        "attempts_received": len(hits),
        "attempts_by_receiver": dict(by_kind),
        "deliveries": delivered(hits),
        "drain": drained,
        "bursts": {
            "count": len(bursts),
            "handlers_created": sum(b["created"] for b in bursts),
            "all_distinct": all(b["created"] == b["distinct ids"] for b in bursts),
        },
        "ledger": {
            "entries_checked": findings.checked_entries,
            "attempts_checked": findings.checked_hits,
            "problems": findings.kinds(),
            "examples": sorted(
                f"{kind} (handler {handler}): {detail}" for kind, handler, detail in findings.problems
            )[:20],
        },
        "memory_mib": memory,
        "timeline": state.timeline,
        "stack_errors_logged": len(errors),
        "stack_error_examples": errors[:10],
        "sigterm": {"seconds": round(stop_seconds, 2), "still_running": left},
        "checks": checks,
    }


def print_report(result: dict[str, Any], out: Callable[[str], None] = print) -> None:
    ledger, sigterm = result["ledger"], result["sigterm"]
    out(f"soak: {result['minutes']} min")
    out(f"requests: {result['requests']} {result['requests_by_status']}")
    out(f"5xx or no answer: {result['server_error_count']}")
    out(
        f"events: {result['events_published']}; attempts received: {result['attempts_received']} "
        f"{result['attempts_by_receiver']}; delivered: {result['deliveries']}; {result['drain']}"
    )
    out(f"concurrent creation bursts: {result['bursts']}")
    out(f"attempt-log ledger: {ledger['entries_checked']} entries, problems {ledger['problems']}")
    for example in ledger["examples"]:
        out(f"  {example}")
    out("memory (MiB): " + json.dumps(result["memory_mib"]))
    for point in result["timeline"]:
        out("  " + " ".join(f"{k}={v}" for k, v in point.items()))
    out(f"SIGTERM: everything stopped in {sigterm['seconds']} s; still running: {sigterm['still_running']}")
    out(f"stack errors logged: {result['stack_errors_logged']}")
    for line in result["stack_error_examples"]:
        out(f"  {line.rstrip()}")
    for check, passed in result["checks"].items():
        out(f"  [{'ok' if passed else 'FAIL'}] {check}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=SoakConfig.minutes)
    parser.add_argument("--sample-every", type=float, help="seconds between memory samples")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    sample = args.sample_every or max(5.0, min(60.0, args.minutes * 60 / 20))
    result = run_soak(
        SoakConfig(minutes=args.minutes, sample_every=sample), lambda line: print(line, flush=True)
    )
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
