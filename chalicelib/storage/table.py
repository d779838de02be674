"""The one DynamoDB table: its handle, item (de)serialization, transactions, paged queries
and batches. The only module of chalicelib that calls the DynamoDB client; every store is
built on a `Table`.

Writes that must not happen twice or overwrite a stranger's change carry a condition; when
it does not hold, these methods raise `ConditionFailed` (with the item as it was, when the
request asked for it) instead of botocore's exceptions.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from chalicelib import clients

Item = dict[str, Any]
Key = tuple[str, str]
"""An item's (PK, SK)."""
Request = dict[str, Any]
"""One element of a TransactWriteItems call, built by the *_request methods."""

RETENTION_SECONDS = 30 * 24 * 3600
"""How long events, delivery states, attempt logs and inbox items live (DynamoDB TTL)."""

CONFLICT_RETRIES = 6
"""How often a transaction cancelled by another one (TransactionConflict) is sent."""
UNPROCESSED_ROUNDS = 6
"""How often a batch call is made for what DynamoDB left unprocessed (throttled)."""
BATCH_WRITE_ITEMS = 25
"""BatchWriteItem takes at most this many items."""
THROTTLING = frozenset(
    {"ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException"}
)


class ConditionFailed(Exception):
    """A write's condition did not hold (the item was not in the expected state).

    `old` is the item as it was when the request asked for it (ALL_OLD), else {}."""

    def __init__(self, detail: str = "", old: Item | None = None) -> None:
        super().__init__(detail)
        self.old = old or {}


class Cancelled(Exception):
    """A transaction was cancelled for another reason than a condition (contention,
    throttling, validation): nothing was written. `old` holds each request's item as it
    was, where DynamoDB said so (requests that asked for ALL_OLD); `code` is DynamoDB's
    error code (TransactionCanceledException, or the throttling code)."""

    def __init__(self, detail: str, old: Sequence[Item] = (), code: str = "") -> None:
        super().__init__(detail)
        self.old = list(old)
        self.code = code


def backoff(attempt: int, base: float) -> None:
    """Wait before retry `attempt` (1, 2, ...): full jitter over a doubling window, so
    throttled callers spread out instead of coming back together."""
    time.sleep(random.uniform(0, base * 2**attempt))


def to_ddb(item: Item) -> dict[str, Any]:
    """DynamoDB's typed form of a plain item."""
    from boto3.dynamodb.types import TypeSerializer  # deferred: boto3 is a cold start's weight

    serializer = TypeSerializer()
    return {k: serializer.serialize(_storable(v)) for k, v in item.items()}


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
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def _key(key: Key) -> dict[str, Any]:
    return to_ddb({"PK": key[0], "SK": key[1]})


def _cancellation_reasons(exc: Exception) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = getattr(exc, "response", {}).get("CancellationReasons", [])
    return reasons


class Table:
    """Herald's table: its name, and the container's DynamoDB client, fetched on use
    (or a given client: tests wrap one to count or fail calls)."""

    def __init__(self, name: str, client: Any = None) -> None:
        self.name = name
        self._client = client

    @property
    def ddb(self) -> Any:
        return self._client if self._client is not None else clients.client("dynamodb")

    # --- single items ------------------------------------------------------------------

    def get(self, key: Key, *, consistent: bool = True, attributes: Sequence[str] = ()) -> Item | None:
        """The item, or None; `attributes` limits what is read."""
        request: dict[str, Any] = {"TableName": self.name, "Key": _key(key)}
        if consistent:
            request["ConsistentRead"] = True
        if attributes:
            request["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(attributes)))
            request["ExpressionAttributeNames"] = {f"#p{i}": name for i, name in enumerate(attributes)}
        answer = self.ddb.get_item(**request)
        return from_ddb(answer["Item"]) if "Item" in answer else None

    def put(self, item: Item, *, condition: str | None = None, return_old: bool = False) -> None:
        """Write the whole item; ConditionFailed if `condition` does not hold."""
        request: dict[str, Any] = self.put_request(item, condition=condition)["Put"]
        if return_old:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self._conditional(self.ddb.put_item, request)

    def update(
        self,
        key: Key,
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: Item | None = None,
        returns: str | None = None,
        return_old: bool = False,
    ) -> Item:
        """One UpdateItem; the attributes `returns` asked for (ALL_NEW, UPDATED_NEW), else {}.
        ConditionFailed if `condition` does not hold."""
        request = self.update_request(
            key, expression, condition=condition, names=names, values=values, return_old=return_old
        )
        if returns is not None:
            request["ReturnValues"] = returns
        answer = self._conditional(self.ddb.update_item, request)
        return from_ddb(answer.get("Attributes", {}))

    def delete(self, key: Key, *, condition: str | None = None) -> None:
        """Delete the item; ConditionFailed if `condition` does not hold."""
        self._conditional(self.ddb.delete_item, self.delete_request(key, condition=condition))

    def _conditional(self, call: Any, request: dict[str, Any]) -> Any:
        try:
            return call(**request)
        except self.ddb.exceptions.ConditionalCheckFailedException as exc:
            raise ConditionFailed(str(exc), from_ddb(getattr(exc, "response", {}).get("Item", {}))) from exc

    # --- transactions ------------------------------------------------------------------

    def put_request(self, item: Item, *, condition: str | None = None) -> Request:
        put: dict[str, Any] = {"TableName": self.name, "Item": to_ddb(item)}
        if condition is not None:
            put["ConditionExpression"] = condition
        return {"Put": put}

    def update_request(
        self,
        key: Key,
        expression: str,
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
        values: Item | None = None,
        return_old: bool = False,
    ) -> dict[str, Any]:
        """The parameters of an UpdateItem; `{"Update": ...}` of them is a transaction's."""
        update: dict[str, Any] = {"TableName": self.name, "Key": _key(key), "UpdateExpression": expression}
        if condition is not None:
            update["ConditionExpression"] = condition
        if names:
            update["ExpressionAttributeNames"] = names
        if values:
            update["ExpressionAttributeValues"] = to_ddb(values)
        if return_old:
            update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return update

    def delete_request(
        self, key: Key, *, condition: str | None = None, values: Item | None = None
    ) -> Request:
        """The parameters of a DeleteItem; `{"Delete": ...}` of them is a transaction's."""
        delete: dict[str, Any] = {"TableName": self.name, "Key": _key(key)}
        if condition is not None:
            delete["ConditionExpression"] = condition
        if values:
            delete["ExpressionAttributeValues"] = to_ddb(values)
        return delete

    def check_request(self, key: Key, condition: str) -> Request:
        return {
            "ConditionCheck": {"TableName": self.name, "Key": _key(key), "ConditionExpression": condition}
        }

    def transact(self, requests: list[Request]) -> None:
        """TransactWriteItems that retries transaction conflicts (two transactions touching
        one counter at once). ConditionFailed when a condition failed, Cancelled when
        DynamoDB kept cancelling it for another reason."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                self.ddb.transact_write_items(TransactItems=requests)
                return
            except self.ddb.exceptions.TransactionCanceledException as exc:
                codes = [reason.get("Code") for reason in _cancellation_reasons(exc)]
                if "ConditionalCheckFailed" in codes:
                    raise ConditionFailed(str(codes)) from exc
                if "TransactionConflict" not in codes or attempt == CONFLICT_RETRIES - 1:
                    raise Cancelled(str(exc), code=exc.response.get("Error", {}).get("Code", "")) from exc
                backoff(attempt, 0.02)

    def transact_once(self, requests: list[Request]) -> None:
        """One TransactWriteItems, no retry: for callers with a fallback of their own.
        Any failure of DynamoDB's (conditions, conflicts, throttling, the endpoint) raises
        Cancelled; a malformed request is a bug and raises as it is."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.ddb.transact_write_items(TransactItems=requests)
        except (ClientError, BotoCoreError) as exc:  # the caller falls back
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
            if code == "ValidationException":
                raise  # the clients skip botocore's own check: DynamoDB's is the one
            old = [from_ddb(reason.get("Item", {})) for reason in _cancellation_reasons(exc)]
            raise Cancelled(str(exc), old) from exc

    # --- queries -----------------------------------------------------------------------

    def query(
        self,
        condition: str,
        values: Item,
        *,
        limit: int | None = None,
        consistent: bool = True,
        **options: Any,
    ) -> list[Item]:
        """Query until `limit` items or the end: a page may span several 1 MB responses.
        `options` are the Query's other parameters (IndexName, FilterExpression,
        ScanIndexForward)."""
        items: list[Item] = []
        for answer in self._pages(
            condition, values, limit=limit, consistent=consistent, items=items, **options
        ):
            items.extend(from_ddb(item) for item in answer["Items"])
        return items

    def count(self, condition: str, values: Item, **options: Any) -> int:
        """How many items the Query matches (Select COUNT, every page)."""
        return sum(
            int(answer["Count"])
            for answer in self._pages(condition, values, consistent=False, Select="COUNT", **options)
        )

    def _pages(
        self,
        condition: str,
        values: Item,
        *,
        consistent: bool,
        limit: int | None = None,
        items: list[Item] | None = None,
        **options: Any,
    ) -> Iterable[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self.name,
                "KeyConditionExpression": condition,
                "ExpressionAttributeValues": to_ddb(values),
                **options,
            }
            if consistent:
                request |= {"ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}
            if limit is not None:
                request["Limit"] = limit - len(items or ())
            if start is not None:
                request["ExclusiveStartKey"] = start
            answer = self.ddb.query(**request)
            yield answer
            start = answer.get("LastEvaluatedKey")
            if start is None or (limit is not None and len(items or ()) >= limit):
                return

    # --- batches -----------------------------------------------------------------------

    def batch_get(self, keys: Iterable[Key]) -> tuple[list[Item], frozenset[Key]]:
        """The items of up to 100 keys in one consistent BatchGetItem. Unprocessed keys are
        asked for again with backoff; the ones DynamoDB still leaves unprocessed, or
        throttles outright (botocore has retried those already), come back as unread:
        missing from the items without being known to be missing from the table."""
        pending = [_key(key) for key in dict.fromkeys(keys)]
        items: list[Item] = []
        for attempt in range(UNPROCESSED_ROUNDS):
            if attempt:
                backoff(attempt, 0.05)
            try:
                answer = self.ddb.batch_get_item(
                    RequestItems={self.name: {"Keys": pending, "ConsistentRead": True}}
                )
            except self.ddb.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in THROTTLING:
                    raise
                break
            items += [from_ddb(item) for item in answer["Responses"].get(self.name, [])]
            pending = answer.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
            if not pending:
                break
        return items, frozenset((key["PK"], key["SK"]) for key in map(from_ddb, pending))

    def batch_put(self, items: Sequence[Item]) -> None:
        """Plain puts with BatchWriteItem, 25 items a call, unprocessed items retried with
        backoff; RuntimeError if DynamoDB still leaves some unwritten."""
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            pending = [
                {"PutRequest": {"Item": to_ddb(item)}} for item in items[start : start + BATCH_WRITE_ITEMS]
            ]
            for attempt in range(UNPROCESSED_ROUNDS):
                if attempt:
                    backoff(attempt, 0.05)
                answer = self.ddb.batch_write_item(RequestItems={self.name: pending})
                pending = answer.get("UnprocessedItems", {}).get(self.name, [])
                if not pending:
                    break
            if pending:
                raise RuntimeError(f"DynamoDB left {len(pending)} item(s) unwritten")
