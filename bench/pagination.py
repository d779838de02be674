"""What a page of notification handlers costs by page number, on AWS's DynamoDB Local.

Loads 10,000 handlers into one account, then reads page 1 and the last page at 25 and
1000 results per page through the handler store's `list_handlers`, counting the DynamoDB calls and the
read capacity each request consumes (botocore `after-call` hooks on the shared client).
Block counters make the last page cost about what page 1 costs: the targets are read
capacity of the last page at most 1.5x page 1, and at most 3 calls for a page of 25.

A second account of 10,000 handlers has them spread over apps (a quarter in one big app,
five in a small one, the rest in 100 others), so more rows measure the `by_app` index: the items
fan-out reads to match an event of the small app (target: under 50, whatever the
account's size; reading every handler of the account was 10,000), and page 1 against the
last page of the big app's slack and webhook handlers as the app-notifications list asks
for them.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bench.support import AWS_ENV, environment

HANDLERS = 10_000
ACCOUNT = "bench"
APPS_ACCOUNT = "bench-apps"
"""An account of as many handlers, spread over apps (see `spread_over_apps`)."""
TABLE = "herald-bench"
RUNS = {25: 30, 1000: 10}
"""Measured requests per results_per_page (after WARMUP unmeasured ones)."""
WARMUP = 3
MAX_CAPACITY_RATIO = 1.5
MAX_CALLS_PER_PAGE_OF_25 = 3
MAX_ITEMS_TO_MATCH = 50
BIG_APP = "big"
"""Every fourth handler: 2,500 in an account of 10,000."""
SMALL_APP = "small"
SMALL_APP_IDS = (1001, 3001, 5001, 7001, 9001)
APP_PAGE = 50
"""The app-notifications list's default `limit`."""
APP_TYPES = ("slack", "webhook")
BATCH = 25  # BatchWriteItem's limit
LOAD_THREADS = 8


def make_handlers(account: str, count: int, *, settings_size: int = 0) -> list[Any]:
    """`count` webhook handlers with ids 1..count; each URL is `settings_size` characters
    long when given (at least a short realistic one otherwise)."""
    from chalicelib.models.handlers import Handler

    now = datetime(2025, 1, 1, tzinfo=UTC)
    handlers = []
    for number in range(1, count + 1):
        url = f"https://hooks.example.com/services/{number:06d}"
        if settings_size > len(url):
            url += "a" * (settings_size - len(url))
        handlers.append(
            Handler(
                account=account,
                id=number,
                type="webhook",
                name=f"Handler {number}",
                settings={"webhook": url},
                created_at=now,
                updated_at=now,
            )
        )
    return handlers


def bulk_load(ddb: Any, table: str, handlers: Sequence[Any], *, threads: int = LOAD_THREADS) -> None:
    """Write `handlers` into their (empty) accounts with BatchWriteItem: the handler items
    exactly as the handler store writes them, each block's live counters (the account's
    and its apps') and the account's id allocator, as if every handler had been created through the store."""
    from chalicelib.storage import keys
    from chalicelib.storage.handlers import handler_item
    from chalicelib.storage.table import to_ddb

    items = [to_ddb(handler_item(h)) for h in handlers]
    blocks: Counter[tuple[str, int]] = Counter((h.account, keys.block_of(h.id)) for h in handlers)
    for (account, block), live in sorted(blocks.items()):
        items.append(to_ddb({"PK": keys.account_pk(account), "SK": keys.counter_sk(block), "n": live}))
    app_blocks: Counter[tuple[str, str, str, int]] = Counter(
        (h.account, h.app, h.type, keys.block_of(h.id)) for h in handlers if h.app
    )
    for (account, app, handler_type, block), live in sorted(app_blocks.items()):
        sk = keys.app_counter_sk(app, handler_type, block)
        items.append(to_ddb({"PK": keys.account_pk(account), "SK": sk, "n": live}))
    top: dict[str, int] = {}
    for h in handlers:
        top[h.account] = max(top.get(h.account, 0), h.id)
    for account, next_id in sorted(top.items()):
        items.append(to_ddb({"PK": keys.account_pk(account), "SK": keys.meta_sk(), "next_id": next_id}))

    def write(chunk: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        while pending:
            answer = ddb.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}

    chunks = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(write, chunks):
            pass


@dataclass
class CallMeter:
    """Counts DynamoDB calls and consumed capacity seen by one botocore client."""

    calls: int = 0
    capacity: float = 0.0
    items: int = 0
    """Items the calls returned (Query's items, BatchGetItem's responses)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, parsed: dict[str, Any], **_: Any) -> None:
        units = float((parsed.get("ConsumedCapacity") or {}).get("CapacityUnits", 0.0))
        returned = len(parsed.get("Items", [])) + sum(map(len, parsed.get("Responses", {}).values()))
        with self._lock:
            self.calls += 1
            self.capacity += units
            self.items += returned

    def reset(self) -> None:
        with self._lock:
            self.calls = 0
            self.capacity = 0.0
            self.items = 0


def spread_over_apps(handler: Any) -> Any:
    """The handler in its app: the big app (slack or webhook), the small one, or another."""
    if handler.id in SMALL_APP_IDS:
        return handler.model_copy(update={"app": SMALL_APP})
    if handler.id % 4 == 0:
        kind = "slack" if handler.id % 8 == 0 else "webhook"
        return handler.model_copy(update={"app": BIG_APP, "type": kind})
    return handler.model_copy(update={"app": f"app-{handler.id % 100}"})


def measure(meter: CallMeter, read: Callable[[], Any], *, runs: int, **labels: Any) -> dict[str, Any]:
    """Median latency, calls, read capacity and items read per call of `read`, which
    returns what it found (a page or a list of handlers)."""
    for _ in range(WARMUP):
        read()
    latencies: list[float] = []
    meter.reset()
    found = 0
    for _ in range(runs):
        started = time.perf_counter()
        result = read()
        latencies.append((time.perf_counter() - started) * 1000)
        found = len(getattr(result, "handlers", result))
    return {
        **labels,
        "runs": runs,
        "items": found,
        "items_read": round(meter.items / runs, 2),
        "median_ms": round(statistics.median(latencies), 2),
        "calls": round(meter.calls / runs, 2),
        "rcu": round(meter.capacity / runs, 2),
    }


def first_and_last(
    meter: CallMeter, read: Callable[..., Any], pages: int, *, runs: int, **labels: Any
) -> list[dict[str, Any]]:
    """Rows of page 1, the last page and their ratio; `read(page=...)` reads a page."""
    first, last = (
        measure(meter, partial(read, page=page), runs=runs, **labels, page=page) for page in (1, pages)
    )
    ratio = {key: _ratio(last[key], first[key]) for key in ("items_read", "median_ms", "calls", "rcu")}
    return [first, last, {**labels, "page": f"{pages}/1", **ratio}]


def _ratio(last: float, first: float) -> float:
    return round(last / first, 2) if first else float("inf")


def run() -> dict[str, Any]:
    from chalicelib import clients
    from herald_local.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal() as server:
        env = {**AWS_ENV, "AWS_ENDPOINT_URL_DYNAMODB": server.endpoint, "HERALD_TABLE": TABLE}
        with environment(env):
            clients.reset()
            try:
                return _run(clients.client("dynamodb"))
            finally:
                clients.reset()


def _run(ddb: Any) -> dict[str, Any]:
    from chalicelib.storage.stores import get_stores
    from herald_local.bootstrap import ensure_table

    ensure_table(ddb, TABLE)
    started = time.perf_counter()
    bulk_load(
        ddb,
        TABLE,
        [*make_handlers(ACCOUNT, HANDLERS), *map(spread_over_apps, make_handlers(APPS_ACCOUNT, HANDLERS))],
    )
    load_seconds = time.perf_counter() - started

    stores = get_stores()
    total = stores.handlers.count_handlers(ACCOUNT)
    if total != HANDLERS:
        raise RuntimeError(f"loaded {total} handlers, expected {HANDLERS}")
    meter = CallMeter()
    ddb.meta.events.register("after-call.dynamodb", meter.hook)
    try:
        rows: list[dict[str, Any]] = []
        ratios: dict[str, dict[str, float]] = {}
        for per_page, runs in RUNS.items():
            pages = math.ceil(HANDLERS / per_page)
            read = partial(stores.handlers.list_handlers, ACCOUNT, per_page=per_page)
            rows += first_and_last(meter, read, pages, runs=runs, list="account", per_page=per_page)
            ratios[str(per_page)] = rows[-1]
        pages = math.ceil(HANDLERS / 4 / APP_PAGE)
        read = partial(stores.handlers.list_app_handlers, APPS_ACCOUNT, BIG_APP, APP_TYPES, per_page=APP_PAGE)
        rows += first_and_last(
            meter, read, pages, runs=RUNS[25], list=f"app of {HANDLERS // 4}", per_page=APP_PAGE
        )
        ratios["app"] = rows[-1]
        matching = measure(
            meter,
            partial(stores.handlers.handlers_in_scope, APPS_ACCOUNT, SMALL_APP),
            runs=RUNS[25],
            list=f"fan-out to an app of {len(SMALL_APP_IDS)}",
        )
        rows.append(matching)
    finally:
        ddb.meta.events.unregister("after-call.dynamodb", meter.hook)

    pages_of_25 = [r for r in rows if r.get("per_page") == 25 and isinstance(r["page"], int)]
    checks = {
        f"fan-out to an app of {len(SMALL_APP_IDS)} reads < {MAX_ITEMS_TO_MATCH} items": matching[
            "items_read"
        ]
        < MAX_ITEMS_TO_MATCH,
        f"last/1 read capacity <= {MAX_CAPACITY_RATIO}x": all(
            r["rcu"] <= MAX_CAPACITY_RATIO for r in ratios.values()
        ),
        f"page of 25 in <= {MAX_CALLS_PER_PAGE_OF_25} calls": all(
            r["calls"] <= MAX_CALLS_PER_PAGE_OF_25 for r in pages_of_25
        ),
    }
    return {
        "backend": "DynamoDB Local",
        "handlers": HANDLERS,
        "load_seconds": round(load_seconds, 1),
        "rows": rows,
        "ratios": ratios,
        "checks": checks,
    }
