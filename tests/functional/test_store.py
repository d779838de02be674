"""What only the DynamoDB stores can show, on moto and on AWS's DynamoDB Local: the bench
loader's items, the 1 MB Query page, counters under concurrency, transaction conflicts and
the calls a batch claim makes. What every backend must do alike is in tests/contract."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench.pagination import bulk_load, make_handlers
from chalicelib import clients, services
from chalicelib.api.pagination import ALLOWED_PER_PAGE
from chalicelib.models.deliveries import AttemptStatus, Claim, Settlement
from chalicelib.models.handlers import Handler
from chalicelib.settings import get_settings
from chalicelib.storage import keys
from chalicelib.storage.stores import Stores, dynamo_stores, get_stores
from chalicelib.storage.table import Cancelled, from_ddb
from tests.commands import create_command, update_command
from tests.contract.test_delivery_store import batch_of, claim_batch

ACME = "acme"
GLOBEX = "globex"
# No URL by default: URL fields resolve their host at save time (SSRF check), and many
# concurrent lookups can be slow where DNS is slow.
TELEGRAM = {"type": "telegram", "telegram": "123456:ABC-token", "telegram_chat_id": "-1001"}
BASE_URL = "https://herald.example.com"


def create(stores: Stores, account: str = ACME, name: str = "Ops channel", **fields: Any) -> Handler:
    return services.create_handler(
        stores, account, create_command({"name": name, **(fields or TELEGRAM)}), base_url=BASE_URL
    )


def update(stores: Stores, account: str, handler_id: int, body: dict[str, Any]) -> None:
    services.update_handler(stores, account, handler_id, update_command(body), base_url=BASE_URL)


def through(client: Any) -> Stores:
    """The stores on the test's table, calling DynamoDB through `client`."""
    return dynamo_stores(get_settings().table_name, client)


def partition(stores: Stores, account: str) -> dict[str, dict[str, Any]]:
    """Every raw item of the account's partition by sort key (PK left out)."""
    items: dict[str, dict[str, Any]] = {}
    for page in (
        clients.client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=get_settings().table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.account_pk(account)}},
            ConsistentRead=True,
        )
    ):
        for raw in page["Items"]:
            item = from_ddb(raw)
            items[item.pop("SK")] = {k: v for k, v in item.items() if k != "PK"}
    return items


def stored_ids(stores: Stores, account: str) -> list[int]:
    """Ids of the handler items actually in the table, read raw (not through counters)."""
    return [keys.handler_id_of(sk) for sk in partition(stores, account) if sk.startswith(keys.HANDLER_PREFIX)]


def listed_ids(stores: Stores, account: str, page: int, per_page: int) -> list[int]:
    return [h.id for h in stores.handlers.list_handlers(account, page, per_page).handlers]


class QueryRecorder:
    """A DynamoDB client that remembers every Query and its answer."""

    def __init__(self, ddb: Any) -> None:
        self._ddb = ddb
        self.queries: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def query(self, **request: Any) -> Any:
        answer = self._ddb.query(**request)
        self.queries.append((request, answer))
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)


class Contended:
    """A DynamoDB client whose next `conflicts` TransactWriteItems are cancelled by a
    transaction conflict (another writer on the block counter), as DynamoDB does under
    contention; the ones after go through."""

    def __init__(self, ddb: Any, conflicts: int = 1) -> None:
        self._ddb = ddb
        self.conflicts = conflicts

    def transact_write_items(self, **request: Any) -> Any:
        if self.conflicts:
            self.conflicts -= 1
            reasons = [{"Code": "None"}, {"Code": "TransactionConflict", "Message": "Transaction is ongoing"}]
            raise self._ddb.exceptions.TransactionCanceledException(
                {
                    "Error": {
                        "Code": "TransactionCanceledException",
                        "Message": "Transaction cancelled [None, TransactionConflict]",
                    },
                    "CancellationReasons": reasons,
                },
                "TransactWriteItems",
            )
        return self._ddb.transact_write_items(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)


@pytest.fixture
def local_store(local_ddb: None) -> Stores:
    """The store on DynamoDB Local only: moto is not safe under threaded transactions."""
    return get_stores()


# --- the bench loader ------------------------------------------------------------------------


def test_the_bench_loader_writes_exactly_what_the_store_writes(stores: Stores) -> None:
    """bulk_load (used below and by `make bench`) must be indistinguishable from creates."""
    [handler] = make_handlers(ACME, 1)
    assert stores.handlers.allocate_handler_id(ACME) == handler.id
    stores.handlers.create_handler(handler)
    created = partition(stores, ACME)
    bulk_load(clients.client("dynamodb"), get_settings().table_name, make_handlers(GLOBEX, 1))
    loaded = partition(stores, GLOBEX)
    for item in loaded.values():
        if "account" in item:
            item["account"] = ACME
    assert loaded == created
    assert set(created) == {keys.meta_sk(), keys.counter_sk(0), keys.handler_sk(1)}


# --- pagination ----------------------------------------------------------------------------


def walk_every_page_size(stores: Stores, live: list[int]) -> None:
    """Page through the account at every allowed size: pages follow each other with no
    gap or repeat, all full but the last, and the page after the last is empty."""
    for per_page in ALLOWED_PER_PAGE:
        seen: list[int] = []
        page = 1
        while True:
            result = stores.handlers.list_handlers(ACME, page, per_page)
            assert result.total == len(live)
            ids = [h.id for h in result.handlers]
            if not ids:
                break
            assert len(ids) == per_page or len(seen) + len(ids) == len(live), (per_page, page)
            seen += ids
            page += 1
        assert seen == live, per_page
        assert page - 1 == -(-len(live) // per_page), per_page


def delete_all(stores: Stores, doomed: set[int]) -> None:
    for handler_id in sorted(doomed):
        assert stores.handlers.delete_handler(ACME, handler_id) is True


def test_a_block_whose_handlers_are_all_deleted_is_skipped_by_every_page_size(local_store: Stores) -> None:
    """DynamoDB Local only: 100 transactional deletes on moto take seconds."""
    stores = local_store
    bulk_load(clients.client("dynamodb"), get_settings().table_name, make_handlers(ACME, 330))
    doomed = set(range(100, 200)) | {42, 250, 330}
    delete_all(stores, doomed)
    assert dict(stores.handlers.block_counts(ACME)) == {0: 98, 1: 0, 2: 99, 3: 30}
    walk_every_page_size(stores, [i for i in range(1, 331) if i not in doomed])


def test_a_page_larger_than_one_query_response_is_read_in_full(stores: Stores) -> None:
    """1000 handlers of ~2 KB are over the 1 MB a Query answers at once: the store must
    follow LastEvaluatedKey until it has the whole page."""
    bulk_load(
        clients.client("dynamodb"), get_settings().table_name, make_handlers(ACME, 1000, settings_size=2000)
    )
    recorder = QueryRecorder(clients.client("dynamodb"))
    page = through(recorder).handlers.list_handlers(ACME, 1, 1000)
    assert [h.id for h in page.handlers] == list(range(1, 1001))
    assert page.total == 1000
    assert all(len(h.settings["webhook"]) == 2000 for h in page.handlers)
    page_queries = [  # the Queries that read handler items (not counters, not the index)
        answer
        for request, answer in recorder.queries
        if "IndexName" not in request
        and any(item["SK"]["S"].startswith(keys.HANDLER_PREFIX) for item in answer["Items"])
    ]
    assert len(page_queries) >= 3  # ~2 MB of items in responses of at most 1 MB
    assert all("LastEvaluatedKey" in answer for answer in page_queries[:-1])


# --- concurrency (DynamoDB Local) ----------------------------------------------------------


def test_counters_match_the_live_handlers_after_concurrent_creates_and_deletes(local_store: Stores) -> None:
    stores = local_store
    doomed: queue.Queue[int | None] = queue.Queue()

    def creator(worker: int) -> list[int]:
        ids = []
        for n in range(25):
            handler_id = create(stores, name=f"w{worker} #{n}").id
            ids.append(handler_id)
            if handler_id % 3 == 0:  # two deleters race for it: exactly one may win
                doomed.put(handler_id)
                doomed.put(handler_id)
        return ids

    def deleter() -> list[tuple[int, bool]]:
        outcomes = []
        while (handler_id := doomed.get()) is not None:
            outcomes.append((handler_id, stores.handlers.delete_handler(ACME, handler_id)))
        return outcomes

    with ThreadPoolExecutor(12) as pool:
        deleters = [pool.submit(deleter) for _ in range(4)]
        creators = [pool.submit(creator, worker) for worker in range(8)]
        try:
            created = [handler_id for future in creators for handler_id in future.result()]
        finally:
            for _ in deleters:
                doomed.put(None)
        outcomes = [outcome for future in deleters for outcome in future.result()]

    assert sorted(created) == list(range(1, 201))
    wins = Counter(handler_id for handler_id, deleted in outcomes if deleted)
    losses = Counter(handler_id for handler_id, deleted in outcomes if not deleted)
    multiples_of_3 = set(range(3, 201, 3))
    assert set(wins) == set(losses) == multiples_of_3
    assert set(wins.values()) == set(losses.values()) == {1}

    live = sorted(set(created) - multiples_of_3)
    assert stored_ids(stores, ACME) == live
    assert stores.handlers.count_handlers(ACME) == len(live)
    assert dict(stores.handlers.block_counts(ACME)) == Counter(keys.block_of(i) for i in live)
    assert listed_ids(stores, ACME, 1, 1000) == live


def test_concurrent_updates_of_different_fields_lose_no_field(local_store: Stores) -> None:
    stores = local_store
    handler = create(stores, type="telegram", telegram="1:token-start", telegram_chat_id="chat-start")
    rounds = 20
    start = threading.Barrier(4, timeout=60)

    def updates(body_of: Any) -> None:
        start.wait()
        for i in range(rounds):
            update(stores, ACME, handler.id, body_of(i))

    writers = [
        lambda i: {"name": f"name {i}"},
        lambda i: {"is_enabled": i % 2 == 1},
        lambda i: {"telegram": f"{i}:token-{i:04d}"},
        lambda i: {"telegram_chat_id": f"chat-{i}"},
    ]
    with ThreadPoolExecutor(len(writers)) as pool:
        for future in [pool.submit(updates, writer) for writer in writers]:
            future.result()

    last = rounds - 1
    final = services.get_handler(stores, ACME, handler.id)
    assert final.name == f"name {last}"
    assert final.is_enabled is (last % 2 == 1)
    assert final.settings == {"telegram": f"{last}:token-{last:04d}", "telegram_chat_id": f"chat-{last}"}
    assert final.type == "telegram"
    assert final.created_at == handler.created_at


# --- conditional writes --------------------------------------------------------------------


def test_a_delete_that_meets_a_transaction_conflict_still_deletes_the_handler(stores: Stores) -> None:
    handler = create(stores)
    contended = through(Contended(clients.client("dynamodb")))
    assert contended.handlers.delete_handler(ACME, handler.id) is True
    assert stores.handlers.get_handler(ACME, handler.id) is None
    assert stores.handlers.count_handlers(ACME) == 0


def test_a_create_that_meets_a_transaction_conflict_still_stores_the_handler_once(stores: Stores) -> None:
    [handler] = make_handlers(ACME, 1)
    through(Contended(clients.client("dynamodb"))).handlers.create_handler(handler)
    assert stores.handlers.get_handler(ACME, handler.id) == handler
    assert stores.handlers.block_counts(ACME) == [(0, 1)]


def test_a_conflict_that_never_clears_is_an_error_not_a_missing_handler(stores: Stores) -> None:
    handler = create(stores)
    contended = through(Contended(clients.client("dynamodb"), conflicts=1_000))
    with pytest.raises(Cancelled):
        contended.handlers.delete_handler(ACME, handler.id)
    assert stores.handlers.get_handler(ACME, handler.id) == handler
    assert stores.handlers.count_handlers(ACME) == 1


# --- delivery claims -----------------------------------------------------------------------


def test_a_batch_is_claimed_in_one_transaction_and_then_leased(stores: Stores) -> None:
    calls: list[str] = []
    clients.client("dynamodb").meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    tasks = batch_of(1, 2, 3)
    try:
        claims = claim_batch(stores, tasks)
    finally:
        clients.client("dynamodb").meta.events.unregister("before-call.dynamodb")
    assert claims == [Claim(1, "claimed")] * 3
    assert calls == ["BatchGetItem", "TransactWriteItems"]
    assert claim_batch(stores, tasks, now=1_030) == [Claim(1, "sending")] * 3, "leased for 60 s"
    assert claim_batch(stores, tasks, now=1_061) == [Claim(2, "claimed")] * 3, "the lease lapsed"
    stores.deliveries.settle([Settlement(tasks[0], AttemptStatus.DELIVERED, 2)])
    assert claim_batch(stores, tasks[:1], now=2_000) == [Claim(2, "delivered")]


def test_a_batch_claim_whose_answer_was_lost_recognises_itself_on_the_retry(stores: Stores) -> None:
    retried: list[int] = []

    def lose_first_answer(attempts: int, **_: Any) -> int | None:
        if attempts == 1:  # the write went through; make botocore send it again
            retried.append(attempts)
            return 0
        return None

    events = clients.client("dynamodb").meta.events
    events.register_first("needs-retry.dynamodb.TransactWriteItems", lose_first_answer)
    try:
        claims = claim_batch(stores, batch_of(1, 2))
    finally:
        events.unregister("needs-retry.dynamodb.TransactWriteItems", lose_first_answer)
    assert retried == [1]
    assert claims == [Claim(1, "claimed")] * 2
