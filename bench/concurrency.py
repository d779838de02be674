"""`make concurrency`: issue 13's two races on a local stack of its own (loopback only).

1. Deliveries under a failing receiver: `handlers` webhooks x `events` events (1,500 by
   default), published by several clients at once; the receiver refuses the first attempt
   of two deliveries in three (503), so retries run beside first attempts. Every delivery
   must end delivered, and every attempt the receiver answered must be in the attempt log
   exactly once, numbered without gap or repeat, with the delivery record's counter equal.
2. `clients` clients creating `per_client` handlers each at the same moment: every create
   201, every id distinct, the list's total equal to what was created.
Any 5xx or failed connection is counted in both.
"""

from __future__ import annotations

import argparse
import functools
import json
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.soak import SOAK_ENV, run_all
from bench.stackload import Api, Ledger, Receivers, Table, hold_logs_to_receivers
from herald_local.harness import StackProcess

FLAKY_SHARE = 2 / 3


def failing_receiver(
    api: Api,
    receivers: Receivers,
    table: Table,
    *,
    handlers: int = 30,
    events: int = 50,
    publishers: int = 5,
    deadline: float = 600.0,
    settle: float = 30.0,
) -> dict[str, Any]:
    """Race 1; `receivers` must refuse first attempts on /flaky/ paths."""
    before, odd = len(api.server_errors), len(api.unexpected)
    run_tag = secrets.token_hex(3)
    paths: dict[int, str] = {}
    for i in range(handlers):
        path = f"/flaky/{run_tag}-{i}"
        handler = api.create_webhook(f"flaky-{i}", receivers.url(path))
        if handler is not None:
            paths[handler] = path
    published: list[str] = []
    lock = threading.Lock()

    def publish(n: int) -> None:
        answer = api.call(
            "publish event",
            "POST",
            "/v1/events",
            json={"type": "deployment", "app": "race", "type_data": {"n": n}},
            expect=(202,),
        )
        if answer.status == 202:
            with lock:
                published.append(str(answer.body["id"]))

    started = time.monotonic()
    run_all([functools.partial(publish, n) for n in range(events)], width=publishers)
    wanted = {(path, event) for path in paths.values() for event in published}

    def delivered() -> set[tuple[str, str]]:
        return {(hit.path, hit.event_id) for hit in receivers.hits() if 200 <= hit.status < 300} & wanted

    until = time.monotonic() + deadline
    while len(delivered()) < len(wanted) and time.monotonic() < until:
        time.sleep(1)
    took = time.monotonic() - started
    findings = hold_logs_to_receivers(
        api, Ledger(), receivers, paths=paths, events=published, table=table, window=settle
    )
    hits = [hit for hit in receivers.hits() if hit.path in set(paths.values())]
    twice = Counter((hit.path, hit.event_id) for hit in hits if 200 <= hit.status < 300)
    return {
        "event x handler": len(wanted),
        "delivered": len(delivered()),
        "delivered twice": sum(1 for n in twice.values() if n > 1),
        "attempts": len(hits),
        "refused first attempts": sum(1 for hit in hits if hit.status >= 500),
        "seconds": round(took, 1),
        "log entries checked": findings.checked_entries,
        "ledger problems": findings.kinds(),
        "ledger examples": sorted(f"{k} (handler {h}): {d}" for k, h, d in findings.problems)[:10],
        "5xx or no answer": len(api.server_errors) - before,
        "unexpected answers": api.unexpected[odd:][:10],
    }


def concurrent_creators(
    api: Api, receivers: Receivers, *, clients: int = 20, per_client: int = 15
) -> dict[str, Any]:
    """Race 2."""
    before, odd = len(api.server_errors), len(api.unexpected)
    listed = api.call("list handlers", "GET", "/notification-handlers", params={"results_per_page": 10})
    total_before = int(listed.body["meta"]["total"]) if listed.status == 200 else -1
    start = threading.Barrier(clients)
    created: list[int | None] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        start.wait()
        for j in range(per_client):
            handler = api.create_webhook(
                f"creator-{i}-{j}",
                receivers.url("/ok/creators"),
                send_all_events=False,
                send_all_alerts=False,
            )
            with lock:
                created.append(handler)

    run_all([functools.partial(client, i) for i in range(clients)])
    ids = [handler for handler in created if handler is not None]
    listed = api.call("list handlers", "GET", "/notification-handlers", params={"results_per_page": 10})
    total_after = int(listed.body["meta"]["total"]) if listed.status == 200 else -1
    return {
        "creates": len(created),
        "201": len(ids),
        "distinct ids": len(set(ids)),
        "list total grew by": total_after - total_before,
        "5xx or no answer": len(api.server_errors) - before,
        "unexpected answers": api.unexpected[odd:][:10],
    }


def run(
    handlers: int, events: int, clients: int, per_client: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="herald-races-"))
    receivers = Receivers(flaky_share=FLAKY_SHARE)
    key = "hk_races-" + secrets.token_urlsafe(24)
    stack = StackProcess(data, SOAK_ENV, api_key=key)
    try:
        stack.start()
        api = Api(stack.url, key)
        table = Table.of(stack.exported())
        progress(f"{handlers} x {events} event x handler under a failing receiver ...")
        first = failing_receiver(api, receivers, table, handlers=handlers, events=events)
        progress(json.dumps(first))
        progress(f"{clients} clients creating {per_client} handlers each at once ...")
        second = concurrent_creators(api, receivers, clients=clients, per_client=per_client)
        progress(json.dumps(second))
        errors = [line for line in stack.output.lines if "Traceback" in line or " ERROR " in line]
        return {
            "failing receiver": first,
            "concurrent creators": second,
            "server errors": api.server_errors[:10],
            "stack errors logged": len(errors),
        }
    finally:
        stack.stop()
        receivers.close()
        shutil.rmtree(data, ignore_errors=True)


def passed(result: dict[str, Any]) -> bool:
    first, second = result["failing receiver"], result["concurrent creators"]
    return (
        first["delivered"] == first["event x handler"]
        and not first["ledger problems"]
        and not first["5xx or no answer"]
        and not first["unexpected answers"]
        and not second["unexpected answers"]
        and second["creates"] == second["201"] == second["distinct ids"] == second["list total grew by"]
        and not second["5xx or no answer"]
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__.splitlines()[0])
    parser.add_argument("--handlers", type=int, default=30)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=15)
    args = parser.parse_args(argv)
    result = run(
        args.handlers, args.events, args.clients, args.per_client, lambda line: print(line, flush=True)
    )
    print(json.dumps(result, indent=2))
    ok = passed(result)
    print("concurrency: " + ("no lost log entry, no 5xx" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
