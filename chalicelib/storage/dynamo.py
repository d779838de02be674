"""Herald's DynamoDB store: one table, conditional writes and update expressions only.

Pagination by page number is served from per-block live counters (see keys.py and the
README): a page costs one counter Query, at most one short keys-only Query on the
`by_hid` LSI, and the Query for the page itself, whatever the page number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib import clients
from chalicelib.errors import Conflict, NotFound
from chalicelib.models.handlers import Handler
from chalicelib.settings import get_settings
from chalicelib.storage import keys

Item = dict[str, Any]


def _serializer() -> Any:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserializer() -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def to_ddb(item: Item) -> dict[str, Any]:
    ser = _serializer()
    return {k: ser.serialize(v) for k, v in item.items()}


def from_ddb(item: dict[str, Any]) -> Item:
    de = _deserializer()
    return {k: de.deserialize(v) for k, v in item.items()}


def _is_condition_failure(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


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

    def create_handler(self, handler: Handler) -> None:
        """Write the handler and bump its block counter in one transaction."""
        item = _handler_item(handler)
        self.ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": to_ddb(item),
                        "ConditionExpression": "attribute_not_exists(SK)",
                    }
                },
                self._counter_change(handler.account, handler.id, +1),
            ]
        )

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
            self.ddb.transact_write_items(
                TransactItems=[
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
                ]
            )
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise
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


def _handler_item(handler: Handler) -> Item:
    return {
        "PK": keys.account_pk(handler.account),
        "SK": keys.handler_sk(handler.id),
        "hid": handler.id,
        "account": handler.account,
        "id": handler.id,
        "type": handler.type,
        "name": handler.name,
        "settings": handler.settings,
        "is_enabled": handler.is_enabled,
        "created_at": handler.created_at.isoformat(),
        "updated_at": handler.updated_at.isoformat(),
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
