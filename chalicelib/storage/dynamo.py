"""Herald's DynamoDB store: one table, conditional writes and update expressions only.

Pagination by page number is served from per-block live counters (see keys.py and the
README): a page costs one counter Query, at most one short keys-only Query on the
`by_hid` LSI, and the Query for the page itself, whatever the page number.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib import clients
from chalicelib.errors import Conflict, HeraldError, NotFound
from chalicelib.models.deliveries import Attempt, AttemptStatus, DeliveryTask
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.settings import get_settings
from chalicelib.storage import keys

Item = dict[str, Any]

logger = logging.getLogger("herald.storage")


def _serializer() -> Any:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_ddb(item: Item) -> dict[str, Any]:
    ser = _serializer()
    return {k: ser.serialize(_storable(v)) for k, v in item.items()}


def _storable(value: Any) -> Any:
    """DynamoDB numbers are Decimals; a non-finite float (JSON's NaN) is kept as text."""
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def from_ddb(item: dict[str, Any]) -> Item:
    """Plain Python values: DynamoDB's Decimals become int or float (events carry JSON)."""
    de = _deserializer()
    return {k: _plain(de.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


class ConditionFailed(Exception):
    """A transaction's condition did not hold (the item was not in the expected state)."""


class Contended(HeraldError):
    """DynamoDB kept cancelling a write for contention or throttling: nothing was
    written, and the same request may simply be sent again."""

    status = 503
    title = "Service unavailable"


_CONFLICT_RETRIES = 6
_UNPROCESSED_ROUNDS = 6
"""How often a batch call is made for what DynamoDB left unprocessed (throttled)."""
_THROTTLING = frozenset(
    {"ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException"}
)


def _backoff(attempt: int, base: float) -> None:
    """Wait before retry `attempt` (1, 2, ...): full jitter over a doubling window, so
    throttled callers spread out instead of coming back together."""
    time.sleep(random.uniform(0, base * 2**attempt))


def transact(ddb: Any, items: list[dict[str, Any]]) -> None:
    """TransactWriteItems that retries transaction conflicts (two transactions touching
    one block counter at once) and raises ConditionFailed when a condition failed."""
    for attempt in range(_CONFLICT_RETRIES):
        try:
            ddb.transact_write_items(TransactItems=items)
            return
        except ddb.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                raise ConditionFailed(str(reasons)) from None
            if "TransactionConflict" not in reasons or attempt == _CONFLICT_RETRIES - 1:
                raise
            _backoff(attempt, 0.02)


RETENTION_SECONDS = 30 * 24 * 3600
"""How long events, delivery states, attempt logs and inbox items live (DynamoDB TTL)."""


@dataclass(frozen=True)
class Claim:
    attempt: int
    state: str  # "claimed", or the state that refused the claim ("delivered", "sending")


_CLAIMABLE = (
    "attribute_not_exists(#status) OR "
    "(#status <> :delivered AND (attribute_not_exists(lease_until) OR lease_until < :now))"
)
"""A delivery record can be claimed unless delivered or leased right now."""
_TRANSACTION_ITEMS = 100  # TransactWriteItems takes at most this many


@dataclass(frozen=True)
class Prefetched:
    """A batch's handlers, events and delivery records (by key), read together.

    `unread` holds the table keys (PK, SK) DynamoDB still left unprocessed after every
    retry: they are missing from the dicts without being known to be missing from the
    table, so a reader must not take them for deleted or expired."""

    handlers: dict[tuple[str, int], Handler]
    events: dict[tuple[str, str], Event]
    deliveries: dict[tuple[str, str], Item]
    unread: frozenset[tuple[str, str]] = frozenset()

    def read_handler(self, task: DeliveryTask) -> bool:
        """Whether the read answered for the task's handler (found or not)."""
        return _handler_pk_sk(task) not in self.unread

    def read_event(self, task: DeliveryTask) -> bool:
        """Whether the read answered for the task's event (found or not)."""
        return _event_pk_sk(task) not in self.unread


@dataclass(frozen=True)
class Noted:
    """An attempt's number in its handler's log, and since when the handler has been failing."""

    seq: int
    failing_since: datetime | None


@dataclass(frozen=True)
class Settlement:
    """Where one event x handler stands after an attempt, and the attempt's log entry
    (none when nothing was sent)."""

    task: DeliveryTask
    status: AttemptStatus
    attempts: int
    http_status: int | None = None
    error: str | None = None
    log: Attempt | None = None


@dataclass(frozen=True)
class AttemptPage:
    attempts: list[Attempt]
    total: int


@dataclass(frozen=True)
class HandlerPage:
    handlers: list[Handler]
    total: int


class Store:
    """Data access for one table; every method is one logical operation."""

    def __init__(self, table: str, ddb: Any) -> None:
        self.table = table
        self.ddb = ddb

    # --- API keys -------------------------------------------------------------------

    def put_api_key(self, key_id: str, key_hash: str, account: str, created_at: datetime) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item=to_ddb(
                {
                    "PK": keys.api_key_pk(key_id),
                    "SK": keys.api_key_sk(),
                    "key_hash": key_hash,
                    "account": account,
                    "created_at": created_at.isoformat(),
                    "revoked": False,
                }
            ),
            ConditionExpression="attribute_not_exists(PK)",
        )

    def get_api_key(self, key_id: str) -> Item | None:
        answer = self.ddb.get_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.api_key_pk(key_id), "SK": keys.api_key_sk()}),
        )
        return from_ddb(answer["Item"]) if "Item" in answer else None

    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=to_ddb({"PK": keys.api_key_pk(key_id), "SK": keys.api_key_sk()}),
                UpdateExpression="SET revoked = :t, revoked_at = :at",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeValues=to_ddb({":t": True, ":at": revoked_at.isoformat()}),
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # --- rate limits ----------------------------------------------------------------

    def hit_rate_window(self, subject: str, window: int, expires_at: int) -> tuple[int, int]:
        """Count a hit in minute `window`; returns (this minute's, last minute's) hits.
        The minute before last is dropped in the same update, so the item stays small."""
        answer = self.ddb.update_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.rate_pk(subject), "SK": "RATE"}),
            UpdateExpression="ADD #now :one SET expires_at = :exp REMOVE #old",
            ExpressionAttributeNames={"#now": f"w{window}", "#old": f"w{window - 2}"},
            ExpressionAttributeValues=to_ddb({":one": 1, ":exp": expires_at}),
            ReturnValues="ALL_NEW",
        )
        item = from_ddb(answer["Attributes"])
        return int(item.get(f"w{window}", 0)), int(item.get(f"w{window - 1}", 0))

    # --- apps -----------------------------------------------------------------------

    def app_id(self, account: str, name: str, candidate_id: str) -> str:
        """The app's id, assigning `candidate_id` if the app is new (one atomic update)."""
        answer = self.ddb.update_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.app_sk(name)}),
            UpdateExpression="SET app_id = if_not_exists(app_id, :id), #name = :name",
            ExpressionAttributeNames={"#name": "name"},
            ExpressionAttributeValues=to_ddb({":id": candidate_id, ":name": name}),
            ReturnValues="ALL_NEW",
        )
        return str(from_ddb(answer["Attributes"])["app_id"])

    def app_named_by_id(self, account: str, app_id: str) -> str | None:
        """The name of the account's app whose id is `app_id`, if there is one (the account's
        app items, a few hundred bytes each, read in one Query)."""
        for item in self._query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            FilterExpression="app_id = :id",
            ExpressionAttributeValues=to_ddb(
                {":pk": keys.account_pk(account), ":prefix": keys.app_sk(""), ":id": app_id}
            ),
        ):
            return str(item["name"])
        return None

    # --- handlers -------------------------------------------------------------------

    def allocate_handler_id(self, account: str) -> int:
        """Next id of the account; ids only grow, so a failed create leaves a harmless gap."""
        answer = self.ddb.update_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.meta_sk()}),
            UpdateExpression="ADD next_id :one",
            ExpressionAttributeValues=to_ddb({":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        return int(from_ddb(answer["Attributes"])["next_id"])

    def skip_taken_ids(self, account: str) -> None:
        """Move the id counter past the highest id in use if it is behind (an update lost
        to a concurrent writer or a replica), instead of handing out taken ids one by one.
        One keys-only Query of the `by_hid` index, newest first, and one conditional SET."""
        found = self.ddb.query(
            TableName=self.table,
            IndexName=keys.BY_HID_INDEX,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues=to_ddb({":pk": keys.account_pk(account)}),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
        if not found:
            return
        with contextlib.suppress(self.ddb.exceptions.ConditionalCheckFailedException):
            self.ddb.update_item(
                TableName=self.table,
                Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.meta_sk()}),
                UpdateExpression="SET next_id = :highest",
                ConditionExpression="attribute_not_exists(next_id) OR next_id < :highest",
                ExpressionAttributeValues=to_ddb({":highest": int(found[0]["hid"]["N"])}),
            )

    def create_handler(self, handler: Handler) -> None:
        """Write the handler and bump its block counter in one transaction. Raises
        ConditionFailed if the id is taken, Contended if DynamoDB keeps cancelling."""
        item = _handler_item(handler)
        try:
            transact(
                self.ddb,
                [
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_ddb(item),
                            "ConditionExpression": "attribute_not_exists(SK)",
                        }
                    },
                    self._counter_change(handler.account, handler.id, +1),
                ],
            )
        except self.ddb.exceptions.TransactionCanceledException as exc:
            logger.warning("creating handler %s of %s was cancelled: %s", handler.id, handler.account, exc)
            raise Contended("the handler could not be saved for contention; send the request again") from None

    def get_handler(self, account: str, handler_id: int) -> Handler | None:
        answer = self.ddb.get_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.handler_sk(handler_id)}),
            ConsistentRead=True,
        )
        return _handler_of(from_ddb(answer["Item"])) if "Item" in answer else None

    def update_handler(
        self,
        account: str,
        handler_id: int,
        *,
        fields: dict[str, Any],
        settings: dict[str, str],
        replace_settings: bool,
        expected_type: str | None,
        now: datetime,
    ) -> None:
        """Apply a partial update as one UpdateItem: each field is its own SET clause,
        so concurrent updates of different fields never overwrite each other."""
        names: dict[str, str] = {"#updated_at": "updated_at"}
        values: dict[str, Any] = {":updated_at": now.isoformat()}
        clauses = ["#updated_at = :updated_at"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            clauses.append(f"#f{i} = :f{i}")
        if replace_settings:
            names["#settings"] = "settings"
            values[":settings"] = settings
            clauses.append("#settings = :settings")
        elif settings:
            names["#settings"] = "settings"
            for i, (name, value) in enumerate(settings.items()):
                names[f"#s{i}"] = name
                values[f":s{i}"] = value
                clauses.append(f"#settings.#s{i} = :s{i}")
        condition = "attribute_exists(SK)"
        if expected_type is not None:
            names["#type"] = "type"
            values[":expected_type"] = expected_type
            condition += " AND #type = :expected_type"
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.handler_sk(handler_id)}),
                UpdateExpression="SET " + ", ".join(clauses),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_ddb(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException as exc:
            if "Item" not in getattr(exc, "response", {}):
                raise NotFound(f"notification handler {handler_id} not found") from None
            raise Conflict(
                f"notification handler {handler_id} changed type meanwhile; send the update again"
            ) from None

    def delete_handler(self, account: str, handler_id: int) -> bool:
        """Delete the handler and decrement its block counter atomically."""
        try:
            transact(
                self.ddb,
                [
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": to_ddb(
                                {"PK": keys.account_pk(account), "SK": keys.handler_sk(handler_id)}
                            ),
                            "ConditionExpression": "attribute_exists(SK)",
                        }
                    },
                    self._counter_change(account, handler_id, -1),
                ],
            )
        except ConditionFailed:
            return False
        return True

    def _counter_change(self, account: str, handler_id: int, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": to_ddb(
                    {
                        "PK": keys.account_pk(account),
                        "SK": keys.counter_sk(keys.block_of(handler_id)),
                    }
                ),
                "UpdateExpression": "ADD n :delta",
                "ExpressionAttributeValues": to_ddb({":delta": delta}),
            }
        }

    def block_counts(self, account: str) -> list[tuple[int, int]]:
        """(block, live handlers) for every block of the account, in id order."""
        counts: list[tuple[int, int]] = []
        for item in self._query_all(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues=to_ddb(
                {":pk": keys.account_pk(account), ":prefix": keys.COUNTER_PREFIX}
            ),
        ):
            counts.append((keys.block_of_counter(item["SK"]), int(item["n"])))
        return counts

    def count_handlers(self, account: str) -> int:
        return sum(n for _, n in self.block_counts(account))

    def list_handlers(self, account: str, page: int, per_page: int) -> HandlerPage:
        """Page `page` of the account's handlers in id order."""
        counts = self.block_counts(account)
        total = sum(n for _, n in counts)
        offset = (page - 1) * per_page
        if offset >= total:
            return HandlerPage([], total)
        seen = 0
        for block, live in counts:
            if seen + live > offset:
                first_id = self._nth_id_in_block(account, block, offset - seen)
                break
            seen += live
        else:  # pragma: no cover - offset < total guarantees a block
            return HandlerPage([], total)
        items = self._query_all(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :first AND :end",
            ExpressionAttributeValues=to_ddb(
                {
                    ":pk": keys.account_pk(account),
                    ":first": keys.handler_sk(first_id),
                    ":end": keys.HANDLER_END,
                }
            ),
            limit=per_page,
        )
        return HandlerPage([_handler_of(item) for item in items], total)

    def _nth_id_in_block(self, account: str, block: int, skip: int) -> int:
        """Id of the live handler `skip` places into `block`, read from the keys-only LSI."""
        low = block * keys.BLOCK_SIZE
        if skip == 0:
            return low
        high = low + keys.BLOCK_SIZE - 1
        answer = self.ddb.query(
            TableName=self.table,
            IndexName=keys.BY_HID_INDEX,
            KeyConditionExpression="PK = :pk AND hid BETWEEN :low AND :high",
            ExpressionAttributeValues=to_ddb({":pk": keys.account_pk(account), ":low": low, ":high": high}),
            Limit=skip + 1,
            ConsistentRead=True,
            ReturnConsumedCapacity="TOTAL",
        )
        found = answer["Items"]
        if len(found) <= skip:  # deleted meanwhile: start at the next block
            return high + 1
        return int(found[skip]["hid"]["N"])

    def _query_all(self, *, limit: int | None = None, **query: Any) -> list[Item]:
        """Query until `limit` items or the end: a page may span several 1 MB responses."""
        items: list[Item] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self.table,
                "ConsistentRead": True,
                "ReturnConsumedCapacity": "TOTAL",
                **query,
            }
            if limit is not None:
                request["Limit"] = limit - len(items)
            if start is not None:
                request["ExclusiveStartKey"] = start
            answer = self.ddb.query(**request)
            items.extend(from_ddb(item) for item in answer["Items"])
            start = answer.get("LastEvaluatedKey")
            if start is None or (limit is not None and len(items) >= limit):
                return items

    def all_handlers(self, account: str) -> list[Handler]:
        """Every handler of the account (fan-out reads them to match an event)."""
        items = self._query_all(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :first AND :end",
            ExpressionAttributeValues=to_ddb(
                {":pk": keys.account_pk(account), ":first": keys.HANDLER_PREFIX, ":end": keys.HANDLER_END}
            ),
        )
        return [_handler_of(item) for item in items]

    def rotate_secret(self, account: str, handler_id: int, new_secret: str, overlap_until: datetime) -> None:
        """Make `new_secret` current; the old one keeps signing until `overlap_until`.
        `SET prev = cur, cur = :new` reads the old value in the same atomic update."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.handler_sk(handler_id)}),
                UpdateExpression=(
                    "SET previous_secret = signing_secret, signing_secret = :new, "
                    "previous_secret_expires_at = :until"
                ),
                ConditionExpression="attribute_exists(SK) AND attribute_exists(signing_secret)",
                ExpressionAttributeValues=to_ddb({":new": new_secret, ":until": overlap_until.isoformat()}),
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            raise NotFound(f"notification handler {handler_id} not found") from None

    def set_secret(self, account: str, handler_id: int, secret: str) -> None:
        """Give a handler a first signing secret (no overlap: there was none before)."""
        self.ddb.update_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.handler_sk(handler_id)}),
            UpdateExpression="SET signing_secret = :s REMOVE previous_secret, previous_secret_expires_at",
            ConditionExpression="attribute_exists(SK)",
            ExpressionAttributeValues=to_ddb({":s": secret}),
        )

    # --- events and deliveries --------------------------------------------------------

    def put_event(self, event: Event, expires_at: int) -> Item | None:
        """Store a new event; if its id exists already, return the stored item instead."""
        item = {
            "PK": keys.event_pk(event.account, event.id),
            "SK": keys.event_sk(),
            **event.model_dump(mode="json", exclude_none=True),
            "fanned_out": False,
            "expires_at": expires_at,
        }
        try:
            self.ddb.put_item(
                TableName=self.table,
                Item=to_ddb(item),
                ConditionExpression="attribute_not_exists(PK)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException as exc:
            return from_ddb(getattr(exc, "response", {}).get("Item", {}))
        return None

    def prefetch(self, tasks: Sequence[DeliveryTask]) -> Prefetched:
        """The handlers, events and delivery records of a batch of deliveries in one
        consistent BatchGetItem (up to 100 keys, so a batch of 10 deliveries is always one
        call). Unprocessed keys are asked for again with backoff; the ones DynamoDB still
        leaves unprocessed, or throttles outright (botocore has retried those already), are
        reported `unread`."""
        deliveries = {_delivery_pk_sk(task) for task in tasks}
        wanted: dict[tuple[str, str], None] = dict.fromkeys(deliveries)
        for task in tasks:
            wanted[_handler_pk_sk(task)] = None
            wanted[_event_pk_sk(task)] = None
        pending = [to_ddb({"PK": pk, "SK": sk}) for pk, sk in wanted]
        items: list[Item] = []
        for attempt in range(_UNPROCESSED_ROUNDS):
            if attempt:
                _backoff(attempt, 0.05)
            try:
                answer = self.ddb.batch_get_item(
                    RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}}
                )
            except self.ddb.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in _THROTTLING:
                    raise
                break
            items += [from_ddb(item) for item in answer["Responses"].get(self.table, [])]
            pending = answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
            if not pending:
                break
        unread = frozenset((key["PK"], key["SK"]) for key in map(from_ddb, pending))
        if unread:
            logger.warning(
                "DynamoDB left %d of %d keys unread; they are read one by one", len(unread), len(wanted)
            )
        fetched = Prefetched({}, {}, {}, unread)
        for item in items:
            key = (item["PK"], item["SK"])
            if key in deliveries:
                fetched.deliveries[key] = item
            elif item["SK"] == keys.event_sk():
                event = Event.model_validate(item)
                fetched.events[(event.account, event.id)] = event
            else:
                handler = _handler_of(item)
                fetched.handlers[(handler.account, handler.id)] = handler
        return fetched

    def get_event(self, account: str, event_id: str) -> Event | None:
        answer = self.ddb.get_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.event_pk(account, event_id), "SK": keys.event_sk()}),
            ConsistentRead=True,
        )
        if "Item" not in answer:
            return None
        return Event.model_validate(from_ddb(answer["Item"]))

    def mark_fanned_out(self, account: str, event_id: str, matched: int) -> None:
        self.ddb.update_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.event_pk(account, event_id), "SK": keys.event_sk()}),
            UpdateExpression="SET fanned_out = :t, matched = :m",
            ExpressionAttributeValues=to_ddb({":t": True, ":m": matched}),
        )

    def claim_delivery(self, task: DeliveryTask, now: int, lease_seconds: int) -> Claim:
        """Take the event x handler for one attempt, unless it is delivered or leased.

        The conditional update is the idempotency key: a redelivered SQS message finds
        `delivered` and sends nothing; two workers holding the same message cannot both
        send, because only one gets the lease. The claim carries a token, so a claim whose
        answer was lost and that botocore retried recognises itself instead of seeing a
        stranger's lease."""
        token = uuid.uuid4().hex
        try:
            answer = self.ddb.update_item(
                **_claim_request(
                    self.table, task, now=now, lease_seconds=lease_seconds, token=token, seen=None
                ),
                ReturnValues="ALL_NEW",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException as exc:
            old = from_ddb(getattr(exc, "response", {}).get("Item", {}))
            state = "claimed" if old.get("claim") == token else str(old.get("status", ""))
            return Claim(attempt=int(old.get("attempts", 0)), state=state)
        return Claim(attempt=int(from_ddb(answer["Attributes"])["attempts"]), state="claimed")

    def claim_all(
        self,
        tasks: Sequence[DeliveryTask],
        seen: Mapping[tuple[str, str], Item],
        *,
        now: int,
        lease_seconds: int,
        unread: Collection[tuple[str, str]] = (),
    ) -> list[Claim | None]:
        """Claim a batch's deliveries in one TransactWriteItems, decided from the records
        prefetched with the batch (`seen`) instead of one conditional UpdateItem each.

        Each update keeps claim_delivery's condition and adds that the record still holds
        the attempts count that was read, so a worker that raced us cancels the transaction
        instead of both holding a lease. A None in the answer means: claim this task on its
        own with claim_delivery (a duplicate within the batch, a record the prefetch left
        `unread`, or the transaction failed).
        Transactional writes cost two write units each on AWS; the batch saves nine round
        trips and their CPU, which is what bounds a batch's time."""
        claims: list[Claim | None] = [None] * len(tasks)
        updates: list[tuple[int, int, dict[str, Any]]] = []
        taken: set[tuple[str, str]] = set()
        token = uuid.uuid4().hex
        for index, task in enumerate(tasks):
            key = _delivery_pk_sk(task)
            if key in taken or key in unread:
                continue
            taken.add(key)
            record = seen.get(key, {})
            attempts = int(record.get("attempts", 0))
            status = record.get("status")
            if status == "delivered":
                claims[index] = Claim(attempts, "delivered")
            elif status is not None and int(record.get("lease_until") or 0) >= now:
                claims[index] = Claim(attempts, str(status))
            else:
                request = _claim_request(
                    self.table, task, now=now, lease_seconds=lease_seconds, token=token, seen=record
                )
                updates.append((index, attempts + 1, request))
        for start in range(0, len(updates), _TRANSACTION_ITEMS):
            chunk = updates[start : start + _TRANSACTION_ITEMS]
            try:
                self.ddb.transact_write_items(TransactItems=[{"Update": update} for _, _, update in chunk])
            except Exception as exc:
                # If the answer was lost and botocore's retry found its own claims in place,
                # they are ours all the same (the token says so); the rest go one by one.
                logger.info("claiming %d deliveries together failed: %s", len(chunk), exc)
                reasons = getattr(exc, "response", {}).get("CancellationReasons", [])
                for (index, _, _), reason in zip(chunk, reasons, strict=False):
                    old = from_ddb(reason.get("Item", {}))
                    if old.get("claim") == token:
                        claims[index] = Claim(int(old["attempts"]), "claimed")
                continue
            for index, attempt, _ in chunk:
                claims[index] = Claim(attempt, "claimed")
        return claims

    def finish_delivery(self, task: DeliveryTask, status: str, error: str | None) -> None:
        """Record where the event x handler stands and release the lease, at once (the
        paths that send nothing, and an interrupted attempt)."""
        self.ddb.update_item(
            TableName=self.table,
            Key=_delivery_key(task),
            UpdateExpression="SET #status = :status, last_error = :error REMOVE lease_until",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_ddb({":status": status, ":error": error}),
        )

    def reset_delivery(self, task: DeliveryTask) -> None:
        """Give a dead-lettered delivery a fresh set of attempts (redrive), unless delivered."""
        with contextlib.suppress(self.ddb.exceptions.ConditionalCheckFailedException):
            self.ddb.update_item(
                TableName=self.table,
                Key=_delivery_key(task),
                UpdateExpression="SET attempts = :zero, #status = :pending REMOVE lease_until",
                ConditionExpression="attribute_not_exists(#status) OR #status <> :delivered",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_ddb(
                    {":zero": 0, ":pending": "pending", ":delivered": "delivered"}
                ),
            )

    def note_attempt(self, handler: Handler, status: AttemptStatus, now: datetime) -> Noted | None:
        """Number one attempt and update the handler's health in one UpdateItem.

        Success sets last_datetime and clears failing_since; a failure starts the
        failing_since clock if it is not running. Returns the attempt's number (its seq in
        the log) and the failing_since clock, or None if the handler was deleted meanwhile."""
        if status == AttemptStatus.DELIVERED:
            expression = "ADD attempt_seq :one SET last_datetime = :now REMOVE failing_since"
        elif status == AttemptStatus.SKIPPED:
            expression = "ADD attempt_seq :one"
        else:
            expression = "ADD attempt_seq :one SET failing_since = if_not_exists(failing_since, :now)"
        values: dict[str, Any] = {":one": 1}
        if ":now" in expression:
            values[":now"] = now.isoformat()
        try:
            answer = self.ddb.update_item(
                TableName=self.table,
                Key=to_ddb({"PK": keys.account_pk(handler.account), "SK": keys.handler_sk(handler.id)}),
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(SK)",
                ExpressionAttributeValues=to_ddb(values),
                ReturnValues="UPDATED_NEW",
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return None
        updated = from_ddb(answer["Attributes"])
        seq = int(updated["attempt_seq"])
        if status == AttemptStatus.DELIVERED:
            return Noted(seq, None)
        # UPDATED_NEW may leave out a failing_since that if_not_exists kept as it was
        since = updated.get("failing_since")
        return Noted(seq, datetime.fromisoformat(since) if since else handler.failing_since)

    def log_attempt(self, account: str, handler_id: int, attempt: Attempt) -> None:
        """Log one attempt on its own (the synchronous test notification)."""
        self.ddb.put_item(TableName=self.table, Item=to_ddb(_log_item(account, handler_id, attempt)))

    def settle(self, settlements: Sequence[Settlement]) -> None:
        """Write a batch's delivery records and attempt log entries together: BatchWriteItem,
        25 items a call, unprocessed items retried with backoff.

        Plain puts are safe here: the delivery record belongs to the lease holder until
        this write releases it, and a log entry's seq is its own."""
        items = []
        for settlement in settlements:
            items.append(_delivery_record(settlement))
            if settlement.log is not None:
                task = settlement.task
                items.append(_log_item(task.account, task.handler_id, settlement.log))
        for start in range(0, len(items), 25):
            self._put_all(items[start : start + 25])

    def _put_all(self, items: list[Item]) -> None:
        pending = [{"PutRequest": {"Item": to_ddb(item)}} for item in items]
        for attempt in range(_UNPROCESSED_ROUNDS):
            if attempt:
                _backoff(attempt, 0.05)
            answer = self.ddb.batch_write_item(RequestItems={self.table: pending})
            pending = answer.get("UnprocessedItems", {}).get(self.table, [])
            if not pending:
                return
        raise RuntimeError(f"DynamoDB left {len(pending)} item(s) unwritten")

    def list_attempts(self, account: str, handler: Handler, page: int, per_page: int) -> AttemptPage:
        """Newest first. Attempts are numbered 1..attempt_seq per handler, so page P is
        one Query on a seq range whatever P is. Attempts past the retention have expired,
        so the oldest pages may hold fewer items than meta.total suggests."""
        top = self._attempt_seq(account, handler.id)
        high = top - (page - 1) * per_page
        low = max(1, high - per_page + 1)
        if high < 1:
            return AttemptPage([], top)
        answer_items = self._query_all(
            KeyConditionExpression="PK = :pk AND SK BETWEEN :low AND :high",
            ExpressionAttributeValues=to_ddb(
                {
                    ":pk": keys.log_pk(account, handler.id),
                    ":low": keys.log_sk(low),
                    ":high": keys.log_sk(high),
                }
            ),
            ScanIndexForward=False,
        )
        return AttemptPage([Attempt.model_validate(item) for item in answer_items], top)

    def _attempt_seq(self, account: str, handler_id: int) -> int:
        answer = self.ddb.get_item(
            TableName=self.table,
            Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.handler_sk(handler_id)}),
            ProjectionExpression="attempt_seq",
            ConsistentRead=True,
        )
        return int(from_ddb(answer.get("Item", {})).get("attempt_seq", 0))

    def disable_handler(self, account: str, handler_id: int, reason: str, now: datetime) -> bool:
        """Disable an enabled handler; False if it was already disabled or is gone."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=to_ddb({"PK": keys.account_pk(account), "SK": keys.handler_sk(handler_id)}),
                UpdateExpression="SET is_enabled = :f, disabled_reason = :reason, updated_at = :now",
                ConditionExpression="attribute_exists(SK) AND is_enabled = :t",
                ExpressionAttributeValues=to_ddb(
                    {":f": False, ":t": True, ":reason": reason, ":now": now.isoformat()}
                ),
            )
        except self.ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def put_confirmation(self, token: str, handler: Handler, expires_at: int) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item=to_ddb(
                {
                    "PK": keys.confirmation_pk(token),
                    "SK": "CONFIRM",
                    "account": handler.account,
                    "handler_id": handler.id,
                    "email": handler.settings["email"],
                    "expires_at": expires_at,
                }
            ),
        )

    def confirm_email(self, token: str, now: int) -> Item | None:
        """Mark the handler's address confirmed if it still is the address the link was
        mailed to; the token is spent in the same transaction. None if unknown or stale."""
        key = to_ddb({"PK": keys.confirmation_pk(token), "SK": "CONFIRM"})
        found = self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if found is None:
            return None
        item = from_ddb(found)
        if int(item["expires_at"]) < now:
            return None
        try:
            transact(
                self.ddb,
                [
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": to_ddb(
                                {
                                    "PK": keys.account_pk(item["account"]),
                                    "SK": keys.handler_sk(int(item["handler_id"])),
                                }
                            ),
                            "UpdateExpression": "SET email_confirmed = :t",
                            "ConditionExpression": "settings.email = :email",
                            "ExpressionAttributeValues": to_ddb({":t": True, ":email": item["email"]}),
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": key}},
                ],
            )
        except ConditionFailed:
            return None
        return item


def _delivery_pk_sk(task: DeliveryTask) -> tuple[str, str]:
    return keys.event_pk(task.account, task.event_id), keys.delivery_sk(task.handler_id)


def _handler_pk_sk(task: DeliveryTask) -> tuple[str, str]:
    return keys.account_pk(task.account), keys.handler_sk(task.handler_id)


def _event_pk_sk(task: DeliveryTask) -> tuple[str, str]:
    return keys.event_pk(task.account, task.event_id), keys.event_sk()


def _delivery_key(task: DeliveryTask) -> dict[str, Any]:
    pk, sk = _delivery_pk_sk(task)
    return to_ddb({"PK": pk, "SK": sk})


def _claim_request(
    table: str, task: DeliveryTask, *, now: int, lease_seconds: int, token: str, seen: Item | None
) -> dict[str, Any]:
    """The conditional update that leases a delivery record for one attempt. Given the
    record as read earlier (`seen`, {} if there was none), it also requires the record to
    be unchanged since and sets the attempts count that implies; otherwise it counts."""
    values: dict[str, Any] = {
        ":lease": now + lease_seconds,
        ":sending": "sending",
        ":delivered": "delivered",
        ":now": now,
        ":exp": now + RETENTION_SECONDS,
        ":token": token,
    }
    update = "SET lease_until = :lease, #status = :sending, expires_at = :exp, claim = :token"
    condition = _CLAIMABLE
    if seen is None:
        update += " ADD attempts :one"
        values[":one"] = 1
    else:
        update += ", attempts = :next"
        values[":next"] = int(seen.get("attempts", 0)) + 1
        if "attempts" in seen:
            condition = f"({_CLAIMABLE}) AND attempts = :seen"
            values[":seen"] = int(seen["attempts"])
        else:
            condition = f"({_CLAIMABLE}) AND attribute_not_exists(attempts)"
    return {
        "TableName": table,
        "Key": _delivery_key(task),
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": to_ddb(values),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _delivery_record(settlement: Settlement) -> Item:
    """The whole delivery record after an attempt: its lease released."""
    pk, sk = _delivery_pk_sk(settlement.task)
    return {
        "PK": pk,
        "SK": sk,
        "status": settlement.status,
        "attempts": settlement.attempts,
        "http_status": settlement.http_status,
        "last_error": settlement.error,
        "expires_at": int(time.time()) + RETENTION_SECONDS,
    }


def _log_item(account: str, handler_id: int, attempt: Attempt) -> Item:
    return {
        "PK": keys.log_pk(account, handler_id),
        "SK": keys.log_sk(attempt.seq),
        **attempt.model_dump(mode="json", exclude_none=True),
        "expires_at": int(attempt.at.timestamp()) + RETENTION_SECONDS,
    }


def _handler_item(handler: Handler) -> Item:
    return {
        "PK": keys.account_pk(handler.account),
        "SK": keys.handler_sk(handler.id),
        "hid": handler.id,
        **handler.model_dump(mode="json", exclude_none=True),
    }


def _handler_of(item: Item) -> Handler:
    return Handler.model_validate(
        {
            **{k: v for k, v in item.items() if k not in ("PK", "SK", "hid")},
            "id": int(item["id"]),
        }
    )


def get_store() -> Store:
    return Store(get_settings().table_name, clients.client("dynamodb"))
