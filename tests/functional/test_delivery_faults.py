"""Faults the delivery function must survive without settling a delivery on a false
reason: DynamoDB throttling on every call it makes (whole calls, and batch calls that
leave keys or items unprocessed), receivers whose body never ends, and handler creates
that meet a taken id or contention."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import clients, services
from chalicelib import clock as herald_clock
from chalicelib.delivery import worker
from chalicelib.delivery.context import reset_sender
from chalicelib.errors import Contended
from chalicelib.models.deliveries import AttemptStatus, Claim, DeliveryTask, Settlement
from chalicelib.settings import get_settings
from chalicelib.storage import keys, table
from chalicelib.storage.deliveries import DynamoDeliveryStore
from chalicelib.storage.stores import Stores, get_stores
from chalicelib.storage.table import from_ddb, to_ddb
from tests.commands import create_command
from tests.fakes.delivery import unread_keys
from tests.fakes.stores import every_handler
from tests.functional.sqs_driver import hurry_retries, queue_depth, receive, run_batch
from tests.receiver import Receiver, Reply

JSON = {"Content-Type": "application/json"}
BODY = {"name": "hook", "type": "webhook", "webhook": "https://example.com/h"}
Key = tuple[str, str]


# ---------------------------------------------------------------- DynamoDB faults


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def _error(code: str, **extra: Any) -> tuple[Any, dict[str, Any]]:
    """What a before-call hook returns to answer a call with a DynamoDB error, as if
    botocore's own retries had all been throttled too."""
    from botocore.awsrequest import AWSResponse

    parsed = {
        "Error": {"Code": code, "Message": "Throughput exceeds the current capacity (injected)"},
        "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}},
        **extra,
    }
    return AWSResponse("https://dynamodb.invalid", 400, {}, _Body(json.dumps(parsed).encode())), parsed


def _key_of(entry: dict[str, Any]) -> Key:
    """(PK, SK) of a BatchGetItem key or a BatchWriteItem put request."""
    item = entry["PutRequest"]["Item"] if "PutRequest" in entry else entry
    return item["PK"]["S"], item["SK"]["S"]


class Faults:
    """Seeded DynamoDB faults through botocore's event hooks on the real client.

    Any call may be throttled whole (ProvisionedThroughputExceededException; for
    TransactWriteItems also a cancellation for ThrottlingError; `throttled` names the
    operations, all by default). BatchGetItem and BatchWriteItem may leave some entries
    unprocessed for one call, or a "stuck" key for `stuck_calls` calls in a row (longer
    than the store retries: the prefetch reports it unread, a settle gives up);
    `stuck_keys` start stuck for BatchGetItem. While a key is stuck, its calls serve one
    other entry at most (a hot partition holds the call back), and a call left with
    nothing to serve is throttled whole, as DynamoDB does. Throttled calls never reach
    moto: a throttled request changes nothing."""

    def __init__(
        self,
        seed: int,
        *,
        throttle: float,
        partial: float = 0.0,
        stuck: float = 0.0,
        stuck_calls: int = table.UNPROCESSED_ROUNDS,
        throttled: frozenset[str] | None = None,
        stuck_keys: frozenset[Key] = frozenset(),
    ) -> None:
        self.rng = random.Random(seed)
        self.throttle, self.partial, self.stuck, self.stuck_calls = throttle, partial, stuck, stuck_calls
        self.throttled = throttled
        self.streaks = {("BatchGetItem", key): stuck_calls for key in stuck_keys}
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _stuck(self, key: tuple[str, Key]) -> bool:
        """Whether `key` is on a streak of calls that leave it unprocessed (or starts one)."""
        left = self.streaks.get(key, 0)
        if not left and self.rng.random() < self.stuck:
            left = self.stuck_calls
            self._count("stuck")
        if left:
            self.streaks[key] = left - 1
        return bool(left)

    def provide_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        name = model.name
        with self.lock:
            if (self.throttled is None or name in self.throttled) and self.rng.random() < self.throttle:
                context["fault"] = "throttle"
                self._count(f"throttled {name}")
                return
            if name not in ("BatchGetItem", "BatchWriteItem"):
                return
            ((table, request),) = params["RequestItems"].items()
            entries = request["Keys"] if name == "BatchGetItem" else request
            # in key order: the store may list keys in a set's order, which varies by run
            ordered = sorted(entries, key=_key_of)
            stuck = [entry for entry in ordered if self._stuck((name, _key_of(entry)))]
            rest = [entry for entry in ordered if entry not in stuck]
            if stuck:
                dropped = stuck + rest[1:]
            else:
                dropped = [entry for entry in rest if self.rng.random() < self.partial]
            if not dropped:
                return
            if len(dropped) == len(entries):  # DynamoDB throttles a call it cannot serve at all
                context["fault"] = "throttle"
                self._count(f"throttled {name}")
                return
            self._count(f"partial {name}")
        kept = [entry for entry in entries if entry not in dropped]
        if name == "BatchGetItem":
            request["Keys"] = kept
            context["fault"] = {table: {**request, "Keys": dropped}}
        else:
            params["RequestItems"][table] = kept
            context["fault"] = {table: dropped}

    def before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        if context.get("fault") != "throttle":
            return None
        with self.lock:
            cancel = model.name == "TransactWriteItems" and self.rng.random() < 0.5
        if cancel:
            return _error(
                "TransactionCanceledException",
                CancellationReasons=[{"Code": "ThrottlingError", "Message": "injected"}],
            )
        return _error("ProvisionedThroughputExceededException")

    def after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        fault = context.get("fault")
        if isinstance(fault, dict):
            field = "UnprocessedKeys" if model.name == "BatchGetItem" else "UnprocessedItems"
            parsed[field] = fault

    @contextlib.contextmanager
    def installed(self) -> Iterator[Faults]:
        events = clients.client("dynamodb").meta.events
        hooks = [
            ("provide-client-params.dynamodb", self.provide_params),
            ("before-call.dynamodb", self.before_call),
            ("after-call.dynamodb", self.after_call),
        ]
        for name, hook in hooks:
            events.register_first(name, hook)
        try:
            yield self
        finally:
            for name, hook in hooks:
                events.unregister(name, hook)


# ---------------------------------------------------------------- the driver


class _Clock:
    """Herald's clock, moved on by the test: a lease lapses without waiting for it."""

    offset = timedelta()

    @classmethod
    def now(cls) -> datetime:
        return datetime.now(UTC) + cls.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[_Clock]:
    monkeypatch.setattr(_Clock, "offset", timedelta())
    monkeypatch.setattr(herald_clock, "now", _Clock.now)
    return _Clock


def drain(deliver: Any, clock: type[_Clock], seconds: float = 240) -> None:
    """Run batches until the deliveries queue is empty, or fail after `seconds`. Like
    sqs_driver.drain it skips each retry's backoff (failed messages are made visible
    again at once, long retries' delayed messages due at once); it also moves the worker's
    clock past a lease after each batch, so a message retried after a failed write is not
    held back by its own lease. Each batch waits until every message is visible again, so
    batches are made up the same way on every run."""
    queue = get_settings().deliveries_queue
    ends = time.monotonic() + seconds
    while True:
        while in_flight(queue):  # moto makes a message visible again the next millisecond
            if time.monotonic() > ends:
                raise AssertionError(f"{queue_depth(queue)} messages left in {queue}")
        messages = receive(queue)
        if not messages:
            if hurry_retries(queue):
                continue
            return
        failed = run_batch(deliver, queue, messages)
        clock.offset += timedelta(seconds=worker.LEASE_SECONDS + 1)
        redeliver_now([m for m in messages if m["MessageId"] in failed])


def in_flight(queue: str) -> int:
    attributes = clients.client("sqs").get_queue_attributes(
        QueueUrl=clients.queue_url(queue), AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def redeliver_now(messages: list[dict[str, Any]]) -> None:
    """Skip the backoff SQS holds these messages back for."""
    for message in messages:
        clients.client("sqs").change_message_visibility(
            QueueUrl=clients.queue_url(get_settings().deliveries_queue),
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=0,
        )


@pytest.fixture
def deliver() -> Any:
    from app import deliver

    return deliver


def webhook(api: Any, auth: dict[str, str], url: str) -> int:
    body = {**BODY, "webhook": url}
    answer = api.http.post("/notification-handlers", headers={**auth, **JSON}, body=json.dumps(body))
    assert answer.status_code == 201, answer.body
    return int(answer.json_body["data"]["id"])


def publish(api: Any, auth: dict[str, str], event_id: str) -> None:
    body = {"type": "deployment", "id": event_id}
    answer = api.http.post("/v1/events", headers={**auth, **JSON}, body=json.dumps(body))
    assert answer.status_code == 202, answer.body


def record(event_id: str, handler_id: int) -> dict[str, Any]:
    """The delivery record of one event x handler."""
    answer = clients.client("dynamodb").get_item(
        TableName=get_settings().table_name,
        Key=to_ddb({"PK": keys.event_pk("acme", event_id), "SK": keys.delivery_sk(handler_id)}),
        ConsistentRead=True,
    )
    return from_ddb(answer.get("Item", {}))


def dead_letters() -> dict[tuple[str, int], str | None]:
    """(event, handler) -> reason of every message in the deliveries DLQ: None for one
    SQS moved there itself after maxReceiveCount receives."""
    found = {}
    while batch := receive(get_settings().deliveries_dlq):
        for message in batch:
            task = json.loads(message["Body"])
            reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue")
            found[(task["event_id"], task["handler_id"])] = reason
            clients.client("sqs").delete_message(
                QueueUrl=clients.queue_url(get_settings().deliveries_dlq),
                ReceiptHandle=message["ReceiptHandle"],
            )
    return found


def handler_key(handler_id: int) -> Key:
    return keys.account_pk("acme"), keys.handler_sk(handler_id)


def event_key(event_id: str) -> Key:
    return keys.event_pk("acme", event_id), keys.event_sk()


# ---------------------------------------------------------------- the prefetch


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The store's backoff waits, by retry number (recorded, not slept)."""
    found: list[int] = []
    monkeypatch.setattr(table, "backoff", lambda attempt, base: found.append(attempt))
    return found


def test_unprocessed_keys_are_asked_for_again_with_backoff_a_bounded_number_of_times(
    moto_aws: None, waits: list[int]
) -> None:
    stores = get_stores()
    tasks = [DeliveryTask(account="acme", event_id="ev-1", handler_id=n) for n in range(1, 4)]
    wanted = {handler_key(n) for n in range(1, 4)} | {event_key("ev-1")}
    wanted |= {(keys.event_pk("acme", "ev-1"), keys.delivery_sk(n)) for n in range(1, 4)}
    hot = handler_key(1)
    with Faults(1, throttle=0, stuck_calls=10**6, stuck_keys=frozenset({hot})).installed():
        fetched = stores.deliveries.prefetch(tasks)
    assert waits == list(range(1, table.UNPROCESSED_ROUNDS))
    assert unread_keys(fetched) == len(wanted) - table.UNPROCESSED_ROUNDS, "one key served a call"
    assert ("acme", 1) in fetched.unread_handlers


def test_keys_left_unprocessed_are_read_on_the_next_call_or_reported_unread(
    moto_aws: None, waits: list[int]
) -> None:
    stores = get_stores()
    handler = services.create_handler(stores, "acme", create_command(BODY), "http://x")
    task = DeliveryTask(account="acme", event_id="ev-1", handler_id=handler.id)
    once = Faults(1, throttle=0, stuck_calls=1, stuck_keys=frozenset({handler_key(handler.id)}))
    with once.installed():
        fetched = stores.deliveries.prefetch([task])
    assert (unread_keys(fetched), waits) == (0, [1])
    assert fetched.handlers == {("acme", handler.id): handler}, "found on the second call"
    assert fetched.read_handler(task)

    stuck = Faults(1, throttle=0, stuck_calls=100, stuck_keys=frozenset({handler_key(handler.id)}))
    with stuck.installed():
        fetched = stores.deliveries.prefetch([task])
    assert stuck.counts == {"partial BatchGetItem": 2, "throttled BatchGetItem": 1}
    assert fetched.unread_handlers == {("acme", handler.id)}
    assert unread_keys(fetched) == 1
    assert not fetched.read_handler(task)
    assert fetched.handlers == {}
    assert fetched.read_event(task), "the event was read: it does not exist"


def test_a_delivery_record_left_unread_is_claimed_on_its_own_not_with_the_batch(stores: Stores) -> None:
    first, second = (DeliveryTask(account="acme", event_id="ev-1", handler_id=n) for n in (1, 2))
    assert stores.deliveries.claim_delivery(first, 1_000, 60).state == "claimed"  # an earlier attempt
    stores.deliveries.settle([Settlement(first, AttemptStatus.RETRYING, 1)])
    claims = stores.deliveries.claim_all([first, second], {}, now=2_000, lease_seconds=60, unread={first.key})
    assert claims == [None, Claim(1, "claimed")], "the unread record did not cancel the batch claim"
    assert stores.deliveries.claim_delivery(first, 2_000, 60) == Claim(2, "claimed")


@pytest.mark.usefixtures("stack")
@pytest.mark.parametrize("unread", ["handler", "event"])
def test_a_handler_or_event_the_prefetch_could_not_read_is_read_on_its_own(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any, *, clock: type[_Clock], unread: str
) -> None:
    """One key of a batch of three is never served while each call serves another: it is
    still unread when the store stops asking, and must not be taken for missing."""
    handler_id = webhook(api, auth, receiver.url("/hook"))
    event_ids = ["ev-1", "ev-2", "ev-3"]
    for event_id in event_ids:
        publish(api, auth, event_id)
    stuck = handler_key(handler_id) if unread == "handler" else event_key("ev-2")
    faults = Faults(3, throttle=0, stuck_calls=10**6, stuck_keys=frozenset({stuck}))
    with faults.installed():
        drain(deliver, clock)
    assert [record(event_id, handler_id)["status"] for event_id in event_ids] == ["delivered"] * 3
    assert len(receiver.to("/hook")) == 3


@pytest.mark.usefixtures("stack")
def test_when_the_own_read_is_throttled_too_the_message_is_retried_not_skipped(
    api: Any, auth: dict[str, str], receiver: Receiver, deliver: Any, clock: type[_Clock]
) -> None:
    handler_id = webhook(api, auth, receiver.url("/hook"))
    publish(api, auth, "ev-1")
    queue = get_settings().deliveries_queue
    faults = Faults(
        5, throttle=1.0, throttled=frozenset({"GetItem"}), stuck_keys=frozenset({handler_key(handler_id)})
    )
    messages = receive(queue)
    with faults.installed():
        assert len(run_batch(deliver, queue, messages)) == 1
    assert faults.counts["throttled GetItem"] == 1
    assert record("ev-1", handler_id)["status"] == "retrying", "released for the retry, not skipped"
    assert receiver.to("/hook") == []
    assert queue_depth(queue) == 1
    redeliver_now(messages)
    drain(deliver, clock)
    assert record("ev-1", handler_id)["status"] == "delivered"
    assert len(receiver.to("/hook")) == 1


# ---------------------------------------------------------------- every call throttled


@pytest.fixture
def one_delivery_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Deliveries one after the other: the calls, and so the seeded faults, come in the
    same order on every run."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        monkeypatch.setattr(worker, "_workers", pool)
        yield


@pytest.mark.usefixtures("stack", "one_delivery_thread")
def test_under_throttling_of_every_dynamodb_call_no_delivery_ends_on_a_false_reason(
    api: Any,
    auth: dict[str, str],
    receiver: Receiver,
    deliver: Any,
    monkeypatch: pytest.MonkeyPatch,
    *,
    clock: type[_Clock],
    waits: list[int],
) -> None:
    """Each event x handler ends delivered, failed for what the receiver answered, in the
    DLQ after its attempts, skipped because its handler really is deleted, or failed
    because its event really is gone; never skipped or failed because a read or write
    was throttled."""
    ok = [webhook(api, auth, receiver.url(f"/ok{i}")) for i in range(3)]
    reject = webhook(api, auth, receiver.url("/reject"))
    down = webhook(api, auth, receiver.url("/down"))
    deleted = webhook(api, auth, receiver.url("/deleted"))
    receiver.script("/reject", *[Reply(400, "no such user")] * 100)
    receiver.script("/down", *[Reply(500, "down")] * 100)
    event_ids = [f"ev-{n}" for n in range(4)]
    for event_id in [*event_ids, "ev-gone"]:
        publish(api, auth, event_id)
    assert api.http.delete(f"/notification-handlers/{deleted}", headers=auth).status_code == 204
    clients.client("dynamodb").delete_item(
        TableName=get_settings().table_name,
        Key=to_ddb(dict(zip(("PK", "SK"), event_key("ev-gone"), strict=True))),
    )

    faults = Faults(
        2,
        throttle=0.12,
        partial=0.15,
        stuck=0.02,
        stuck_keys=frozenset({handler_key(ok[0]), event_key("ev-1")}),
    )
    unread_handlers: list[tuple[str, int]] = []
    unread_events: list[tuple[str, str]] = []
    prefetch = DynamoDeliveryStore.prefetch

    def spy(deliveries: DynamoDeliveryStore, tasks: list[DeliveryTask]) -> Any:
        fetched = prefetch(deliveries, tasks)
        unread_handlers.extend(fetched.unread_handlers)
        unread_events.extend(fetched.unread_events)
        return fetched

    monkeypatch.setattr(DynamoDeliveryStore, "prefetch", spy)
    with faults.installed():
        drain(deliver, clock)

    parked = dead_letters()
    truth = {(e, h): ("delivered", None) for e in event_ids for h in ok}
    truth |= {(e, reject): ("failed", "HTTP 400: no such user") for e in event_ids}
    truth |= {(e, down): ("failed", "HTTP 500: down") for e in event_ids}
    truth |= {(e, deleted): ("skipped", "handler deleted or disabled") for e in event_ids}
    truth |= {("ev-gone", h): ("failed", "event expired before delivery") for h in [*ok, reject, down]}
    for pair, outcome in truth.items():
        stored = record(*pair)
        if stored.get("status") in (None, "sending", "retrying"):
            assert parked.get(pair, "") is None, f"{pair} is neither settled nor parked by SQS"
        else:
            assert (stored["status"], stored["last_error"]) == outcome, pair
    for (_, handler_id), reason in parked.items():
        if reason is not None:
            assert handler_id == down
            assert reason.startswith("gave up after") and reason.endswith("HTTP 500: down")
    assert {(e, down) for e in event_ids} <= set(parked)
    delivered = {r.headers["webhook-id"] for r in receiver.requests}
    assert {f"msg_{e}_{h}" for (e, h), (status, _) in truth.items() if status == "delivered"} <= delivered
    assert receiver.to("/deleted") == []
    assert not any(r.headers["webhook-id"].startswith("msg_ev-gone_") for r in receiver.requests)

    # the faults did fire, and where they matter
    for name in ("BatchGetItem", "GetItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem"):
        assert faults.counts.get(f"throttled {name}", 0) > 0, f"no {name} was throttled"
    assert faults.counts["partial BatchGetItem"] and faults.counts["partial BatchWriteItem"]
    assert waits, "the store asked again for what was left unprocessed, after a backoff"
    assert {("acme", h) for h in ok} & set(unread_handlers), (
        "the prefetch must have left an ok handler unread"
    )
    assert {("acme", e) for e in event_ids} & set(unread_events), "and an event"


# ---------------------------------------------------------------- a body that never ends


class StallingReceiver:
    """Answers every request with `status_line` and its headers at once, then a few bytes
    of a body it never finishes; counts the requests."""

    def __init__(self, status_line: bytes) -> None:
        self.status_line = status_line
        self.requests = 0
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/slow"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            self.requests += 1
            conn.sendall(b"HTTP/1.1 " + self.status_line + b"\r\nContent-Length: 1000\r\n\r\nstarted")
            self.stop.wait()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@pytest.mark.usefixtures("stack")
@pytest.mark.parametrize(
    ("status_line", "status", "retried"), [(b"200 OK", "delivered", False), (b"503 Busy", "retrying", True)]
)
def test_the_status_sent_before_the_deadline_decides_whatever_the_body_does(
    api: Any,
    auth: dict[str, str],
    deliver: Any,
    monkeypatch: pytest.MonkeyPatch,
    *,
    status_line: bytes,
    status: str,
    retried: bool,
) -> None:
    # Wide enough for a loaded machine to read the status line before the deadline.
    monkeypatch.setenv("HERALD_DELIVERY_DEADLINE_SECONDS", "5")
    reset_sender()
    stalling = StallingReceiver(status_line)
    try:
        handler_id = webhook(api, auth, stalling.url)
        publish(api, auth, "ev-1")
        queue = get_settings().deliveries_queue
        failed = run_batch(deliver, queue, receive(queue))
    finally:
        stalling.close()
    assert bool(failed) is retried
    assert stalling.requests == 1
    stored = record("ev-1", handler_id)
    assert (stored["status"], stored["http_status"]) == (status, int(status_line.split()[0]))
    if not retried:
        assert "response body cut" in stored["last_error"], "the record says why the body is short"
    assert queue_depth(queue) == int(retried)


# ---------------------------------------------------------------- creating handlers


def set_counter_back(stores: Stores) -> None:
    """Make the account's id counter hand out taken ids again, as a lost update does."""
    clients.client("dynamodb").update_item(
        TableName=get_settings().table_name,
        Key=to_ddb({"PK": keys.account_pk("acme"), "SK": keys.meta_sk()}),
        UpdateExpression="SET next_id = :zero",
        ExpressionAttributeValues=to_ddb({":zero": 0}),
    )


def test_a_create_that_finds_its_id_taken_succeeds_with_a_free_one(stores: Stores) -> None:
    existing = [services.create_handler(stores, "acme", create_command(BODY), "http://x") for _ in range(3)]
    set_counter_back(stores)
    created = services.create_handler(stores, "acme", create_command(BODY), "http://x")
    assert created.id not in {h.id for h in existing}
    assert [stores.handlers.get_handler("acme", h.id) for h in existing] == existing
    assert stores.handlers.get_handler("acme", created.id) == created
    assert stores.handlers.count_handlers("acme") == 4


def test_concurrent_creates_meeting_taken_ids_answer_distinct_ids_or_a_503(local_ddb: None) -> None:
    """On DynamoDB Local: moto is not safe under threaded transactions (it restores a
    cancelled transaction's tables wholesale, and can crash copying them)."""
    stores = get_stores()
    existing = {
        services.create_handler(stores, "acme", create_command(BODY), "http://x").id for _ in range(10)
    }
    set_counter_back(stores)

    def create(_: int) -> int | Contended:
        try:
            return services.create_handler(stores, "acme", create_command(BODY), "http://x").id
        except Contended as busy:  # a 503 asking to send the request again
            return busy

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(create, range(40)))
    ids = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert len(set(ids)) == len(ids)
    assert not existing & set(ids)
    assert sorted(h.id for h in every_handler(stores, "acme")) == sorted(existing | set(ids))
    assert stores.handlers.count_handlers("acme") == len(existing) + len(ids)


@pytest.mark.usefixtures("stack")
def test_a_create_that_contention_keeps_cancelling_is_a_503_not_a_500(api: Any, auth: dict[str, str]) -> None:
    def conflict(model: Any, **_: Any) -> Any:
        return _error(
            "TransactionCanceledException",
            CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict", "Message": "injected"}],
        )

    events = clients.client("dynamodb").meta.events
    events.register("before-call.dynamodb.TransactWriteItems", conflict)
    try:
        answer = api.http.post("/notification-handlers", headers={**auth, **JSON}, body=json.dumps(BODY))
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", conflict)
    assert answer.status_code == 503
    assert "send the request again" in answer.json_body["errors"][0]["detail"]
    assert get_stores().handlers.count_handlers("acme") == 0
