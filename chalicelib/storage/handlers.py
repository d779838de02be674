"""Notification handlers: id allocation, live block counters and paging, CRUD, signing
secrets, health (attempt numbering, failing clock, disabling).

Pagination by page number is served from per-block live counters (see keys.py and the
README): a page costs one counter Query, at most one short keys-only Query on the
`by_hid` LSI, and the Query for the page itself, whatever the page number. An app's
handlers are read the same way through the keys-only `by_app` LSI (scope, type, id) and
per-app block counters, so listing an app or fanning out its event never reads the
handlers of other apps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalicelib.errors import Conflict, Contended, NotFound
from chalicelib.models.deliveries import AttemptStatus, Noted
from chalicelib.models.handlers import Handler
from chalicelib.storage import keys
from chalicelib.storage.table import Cancelled, ConditionFailed, Item, Key, Request, Table

logger = logging.getLogger("herald.storage")

MOVE_TRIES = 5
"""How often a delete or an update that moves a handler re-reads it after a concurrent
writer moved it first."""
BATCH_GET_KEYS = 100
"""BatchGetItem takes at most this many keys."""


@dataclass(frozen=True)
class HandlerPage:
    handlers: list[Handler]
    total: int


@dataclass(frozen=True)
class ScopeChunk:
    """Ids of handlers an event may match, in `by_app` order, and where the next chunk
    starts (None: this was the last)."""

    ids: list[int]
    after: str | None


class HandlerStore(Protocol):
    """An account's handlers, counted per block of ids so any page costs the same."""

    def allocate_handler_id(self, account: str) -> int:
        """Next id of the account; ids only grow, so a failed create leaves a harmless gap."""
        ...

    def skip_taken_ids(self, account: str) -> None:
        """Move the id counter past the highest id in use if it is behind."""
        ...

    def create_handler(self, handler: Handler) -> None:
        """Write a new handler and count it. ConditionFailed if its id is taken,
        Contended if DynamoDB keeps cancelling."""
        ...

    def get_handler(self, account: str, handler_id: int) -> Handler | None: ...

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
        """Set each field on its own; NotFound if gone, Conflict if its type is no longer
        `expected_type`."""
        ...

    def delete_handler(self, account: str, handler_id: int) -> bool:
        """Delete and uncount the handler; False if there was none."""
        ...

    def block_counts(self, account: str) -> list[tuple[int, int]]:
        """(block, live handlers) for every block of the account, in id order."""
        ...

    def count_handlers(self, account: str) -> int: ...

    def list_handlers(self, account: str, page: int, per_page: int) -> HandlerPage:
        """Page `page` of the account's handlers in id order."""
        ...

    def app_handlers(self, account: str, app: str) -> list[Handler]:
        """The handlers scoped to `app`, in id order, reading no other handler."""
        ...

    def handlers_in_scope(self, account: str, app: str | None) -> list[Handler]:
        """Every handler an event of `app` may match (the account-wide ones and the app's),
        in id order, reading no other handler."""
        ...

    def scope_chunk(self, account: str, app: str | None, after: str | None, limit: int) -> ScopeChunk:
        """Up to `limit` ids of the handlers an event of `app` may match (the account-wide
        ones, then the app's), from just after the `by_app` key `after` (None: the first):
        a fan-out pages through any number of handlers in bounded steps."""
        ...

    def handlers_by_id(self, account: str, ids: Sequence[int]) -> list[Handler]:
        """The handlers of `ids` in id order (one deleted meanwhile left out); Contended if
        DynamoDB leaves some unread."""
        ...

    def list_app_handlers(
        self, account: str, app: str, types: Sequence[str], page: int, per_page: int
    ) -> HandlerPage:
        """Page `page` of the app's handlers of `types` in id order, its total counted."""
        ...

    def rotate_secret(self, account: str, handler_id: int, new_secret: str, overlap_until: datetime) -> None:
        """Make `new_secret` current; the old one keeps signing until `overlap_until`.
        NotFound if the handler is gone or has no secret."""
        ...

    def note_attempts(
        self, handler: Handler, statuses: Sequence[AttemptStatus], now: datetime
    ) -> Noted | None:
        """Number a batch's attempts to the handler (`Noted.seq` is the first of as many
        consecutive numbers) and update its health; None if it was deleted."""
        ...

    def attempt_count(self, account: str, handler_id: int) -> int:
        """How many attempts the handler has numbered (0 if none, or gone)."""
        ...

    def disable_handler(self, account: str, handler_id: int, reason: str, now: datetime) -> bool:
        """Disable an enabled handler; False if it was already disabled or is gone."""
        ...


def handler_key(account: str, handler_id: int) -> Key:
    return keys.account_pk(account), keys.handler_sk(handler_id)


def handler_item(handler: Handler) -> Item:
    """The handler as stored: its key, the sort keys of the by_hid and by_app indexes and
    its fields."""
    return {
        "PK": keys.account_pk(handler.account),
        "SK": keys.handler_sk(handler.id),
        "hid": handler.id,
        "app_hid": keys.app_hid(handler.app, handler.type, handler.id),
        **handler.model_dump(mode="json", exclude_none=True),
    }


def handler_of(item: Item) -> Handler:
    """The handler of a stored item."""
    return Handler.model_validate(
        {
            **{k: v for k, v in item.items() if k not in ("PK", "SK", "hid", "app_hid")},
            "id": int(item["id"]),
        }
    )


def page_start(counts: Sequence[tuple[int, int]], offset: int) -> tuple[int, int] | None:
    """(block, live handlers to skip inside it) where the handler at `offset` is, from
    (block, live handlers) counts in id order; None past the end."""
    seen = 0
    for block, live in counts:
        if seen + live > offset:
            return block, offset - seen
        seen += live
    return None


def _not_found(handler_id: int) -> NotFound:
    return NotFound(f"notification handler {handler_id} not found")


def _changed_type(handler_id: int) -> Conflict:
    return Conflict(f"notification handler {handler_id} changed type meanwhile; send the update again")


class DynamoHandlerStore:
    """Handlers on the table; every method is one logical operation."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def allocate_handler_id(self, account: str) -> int:
        updated = self.table.update(
            (keys.account_pk(account), keys.meta_sk()),
            "ADD next_id :one",
            values={":one": 1},
            returns="UPDATED_NEW",
        )
        return int(updated["next_id"])

    def skip_taken_ids(self, account: str) -> None:
        """Instead of handing out taken ids one by one (an update lost to a concurrent
        writer or a replica): one keys-only Query of `by_hid`, newest first, and one
        conditional SET."""
        found = self.table.query(
            "PK = :pk",
            {":pk": keys.account_pk(account)},
            limit=1,
            IndexName=keys.BY_HID_INDEX,
            ScanIndexForward=False,
        )
        if not found:
            return
        try:
            self.table.update(
                (keys.account_pk(account), keys.meta_sk()),
                "SET next_id = :highest",
                condition="attribute_not_exists(next_id) OR next_id < :highest",
                values={":highest": int(found[0]["hid"])},
            )
        except ConditionFailed:
            return

    def create_handler(self, handler: Handler) -> None:
        """The handler and its block counters (the account's, and its app's) change in one
        transaction."""
        try:
            self.table.transact(
                [
                    self.table.put_request(handler_item(handler), condition="attribute_not_exists(SK)"),
                    self._counter_change(handler.account, handler.id, +1),
                    *self._app_counter_changes(handler.account, handler.id, (handler.app, handler.type), +1),
                ]
            )
        except Cancelled as exc:
            logger.warning("creating handler %s of %s was cancelled: %s", handler.id, handler.account, exc)
            raise Contended("the handler could not be saved for contention; send the request again") from None

    def get_handler(self, account: str, handler_id: int) -> Handler | None:
        item = self.table.get(handler_key(account, handler_id))
        return handler_of(item) if item is not None else None

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
        """One UpdateItem: each field is its own SET clause, so concurrent updates of
        different fields never overwrite each other; a field set to None is REMOVEd (an
        attribute holding NULL would still exist for `if_not_exists`). An update that
        changes the app or the type moves the handler in `by_app`: see `_move`."""
        names: dict[str, str] = {"#updated_at": "updated_at"}
        values: dict[str, Any] = {":updated_at": now.isoformat()}
        clauses = ["#updated_at = :updated_at"]
        removals = []
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            if value is None:
                removals.append(f"#f{i}")
                continue
            values[f":f{i}"] = value
            clauses.append(f"#f{i} = :f{i}")
        removing = f" REMOVE {', '.join(removals)}" if removals else ""
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
        if "app" in fields or "type" in fields:
            self._move(
                account,
                handler_id,
                fields=fields,
                clauses=clauses,
                removing=removing,
                condition=condition,
                names=names,
                values=values,
            )
            return
        try:
            self.table.update(
                handler_key(account, handler_id),
                "SET " + ", ".join(clauses) + removing,
                condition=condition,
                names=names,
                values=values,
                return_old=True,
            )
        except ConditionFailed as failed:
            if not failed.old:
                raise _not_found(handler_id) from None
            raise _changed_type(handler_id) from None

    def _move(
        self,
        account: str,
        handler_id: int,
        *,
        fields: dict[str, Any],
        clauses: list[str],
        removing: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> None:
        """Set the fields, the new `app_hid` and move the handler between its app's counters
        in one transaction, on the condition that its `app_hid` (scope, type, id) is still
        the one read: a concurrent move makes us read again, never miscount."""
        for _ in range(MOVE_TRIES):
            current = self.get_handler(account, handler_id)
            if current is None:
                raise _not_found(handler_id)
            if ":expected_type" in values and current.type != values[":expected_type"]:
                raise _changed_type(handler_id)
            old = (current.app, current.type)
            new = (fields.get("app", current.app), fields.get("type", current.type))
            old_key, new_key = keys.app_hid(*old, handler_id), keys.app_hid(*new, handler_id)
            update: dict[str, Any] = {
                "expression": "SET " + ", ".join([*clauses, "app_hid = :new_app_hid"]) + removing,
                "condition": condition + " AND app_hid = :old_app_hid",
                "names": names,
                "values": {**values, ":old_app_hid": old_key, ":new_app_hid": new_key},
            }
            try:
                if old_key == new_key:  # it stays where it is: no counter to move
                    self.table.update(handler_key(account, handler_id), **update)
                else:
                    self.table.transact(
                        [
                            {"Update": self.table.update_request(handler_key(account, handler_id), **update)},
                            *self._app_counter_changes(account, handler_id, old, -1),
                            *self._app_counter_changes(account, handler_id, new, +1),
                        ]
                    )
            except ConditionFailed:
                continue
            except Cancelled as exc:
                logger.warning("moving handler %s of %s was cancelled: %s", handler_id, account, exc)
                break
            return
        raise Contended("the handler kept changing meanwhile; send the request again")

    def delete_handler(self, account: str, handler_id: int) -> bool:
        """Delete and uncount it, on the condition that it is still in the app and of the
        type read (whose counter goes down)."""
        for _ in range(MOVE_TRIES):
            current = self.get_handler(account, handler_id)
            if current is None:
                return False
            scope = (current.app, current.type)
            delete = self.table.delete_request(
                handler_key(account, handler_id),
                condition="app_hid = :app_hid",
                values={":app_hid": keys.app_hid(*scope, handler_id)},
            )
            try:
                self.table.transact(
                    [
                        {"Delete": delete},
                        self._counter_change(account, handler_id, -1),
                        *self._app_counter_changes(account, handler_id, scope, -1),
                    ]
                )
            except ConditionFailed:
                continue
            return True
        raise Contended("the handler kept changing meanwhile; send the request again")

    def _counter_change(self, account: str, handler_id: int, delta: int) -> Request:
        key = (keys.account_pk(account), keys.counter_sk(keys.block_of(handler_id)))
        return {"Update": self.table.update_request(key, "ADD n :delta", values={":delta": delta})}

    def _app_counter_changes(
        self, account: str, handler_id: int, scope: tuple[str | None, str], delta: int
    ) -> list[Request]:
        """The change of the (app, type) block counter; none for an account-wide handler."""
        app, handler_type = scope
        if not app:
            return []
        key = (keys.account_pk(account), keys.app_counter_sk(app, handler_type, keys.block_of(handler_id)))
        return [{"Update": self.table.update_request(key, "ADD n :delta", values={":delta": delta})}]

    def block_counts(self, account: str) -> list[tuple[int, int]]:
        items = self.table.query(
            "PK = :pk AND begins_with(SK, :prefix)",
            {":pk": keys.account_pk(account), ":prefix": keys.COUNTER_PREFIX},
        )
        return [(keys.block_of_counter(item["SK"]), int(item["n"])) for item in items]

    def count_handlers(self, account: str) -> int:
        return sum(n for _, n in self.block_counts(account))

    def list_handlers(self, account: str, page: int, per_page: int) -> HandlerPage:
        counts = self.block_counts(account)
        total = sum(n for _, n in counts)
        start = page_start(counts, (page - 1) * per_page)
        if start is None:
            return HandlerPage([], total)
        first_id = self._nth_id_in_block(account, *start)
        items = self.table.query(
            "PK = :pk AND SK BETWEEN :first AND :end",
            {":pk": keys.account_pk(account), ":first": keys.handler_sk(first_id), ":end": keys.HANDLER_END},
            limit=per_page,
        )
        return HandlerPage([handler_of(item) for item in items], total)

    def _nth_id_in_block(self, account: str, block: int, skip: int) -> int:
        """Id of the live handler `skip` places into `block`, read from the keys-only LSI."""
        low = block * keys.BLOCK_SIZE
        if skip == 0:
            return low
        high = low + keys.BLOCK_SIZE - 1
        found = self.table.query(
            "PK = :pk AND hid BETWEEN :low AND :high",
            {":pk": keys.account_pk(account), ":low": low, ":high": high},
            limit=skip + 1,
            IndexName=keys.BY_HID_INDEX,
        )
        if len(found) <= skip:  # deleted meanwhile: start at the next block
            return high + 1
        return int(found[skip]["hid"])

    def app_handlers(self, account: str, app: str) -> list[Handler]:
        return self._handlers(account, self._ids_with_prefix(account, keys.app_scope(app) + "#"))

    def handlers_in_scope(self, account: str, app: str | None) -> list[Handler]:
        ids = self._ids_with_prefix(account, keys.ACCOUNT_WIDE + "#")
        if app:
            ids += self._ids_with_prefix(account, keys.app_scope(app) + "#")
        return self._handlers(account, ids)

    def scope_chunk(self, account: str, app: str | None, after: str | None, limit: int) -> ScopeChunk:
        """At most one keys-only Query of `by_app` per scope (two when the account-wide
        range ends inside the chunk), `limit` keys at most in all."""
        found: list[Item] = []
        for scope in [None, app] if app else [None]:
            low, high = keys.scope_range(scope)
            if after is not None and after >= high:
                continue  # that scope was paged through already
            start = max(low, after) if after is not None else low
            wanted = limit - len(found) + (1 if start == after else 0)
            items = self.table.query(
                "PK = :pk AND app_hid BETWEEN :low AND :high",
                {":pk": keys.account_pk(account), ":low": start, ":high": high},
                limit=wanted,
                IndexName=keys.BY_APP_INDEX,
            )
            found += [item for item in items if item["app_hid"] != after]
            if len(found) >= limit:
                break
        found = found[:limit]
        return ScopeChunk(
            [keys.handler_id_of(item["SK"]) for item in found],
            found[-1]["app_hid"] if len(found) == limit else None,
        )

    def handlers_by_id(self, account: str, ids: Sequence[int]) -> list[Handler]:
        return self._handlers(account, ids)

    def list_app_handlers(
        self, account: str, app: str, types: Sequence[str], page: int, per_page: int
    ) -> HandlerPage:
        """As `list_handlers`, on the app's counters and `by_app`, one id range per type:
        a page reads the app's counters, at most one short key Query per type inside
        the page's first block, one key Query per type from there (`per_page` keys at
        most each) and the page's handlers."""
        counts = self._app_block_counts(account, app, types)
        total = sum(n for _, n in counts)
        start = page_start(counts, (page - 1) * per_page)
        if start is None:
            return HandlerPage([], total)
        block, skip = start
        low = block * keys.BLOCK_SIZE
        first_id = low
        if skip:
            in_block = self._ids_of_types(
                account, app, types, low=low, high=low + keys.BLOCK_SIZE - 1, limit=skip + 1
            )
            first_id = in_block[skip] if len(in_block) > skip else low + keys.BLOCK_SIZE
        ids = self._ids_of_types(account, app, types, low=first_id, high=keys.LAST_ID, limit=per_page)
        return HandlerPage(self._handlers(account, ids[:per_page]), total)

    def _app_block_counts(self, account: str, app: str, types: Sequence[str]) -> list[tuple[int, int]]:
        """(block, the app's live handlers of `types` in it), in id order."""
        items = self.table.query(
            "PK = :pk AND begins_with(SK, :prefix)",
            {":pk": keys.account_pk(account), ":prefix": keys.app_counter_prefix(app)},
        )
        per_block: dict[int, int] = {}
        for item in items:
            handler_type, block = keys.type_and_block_of_app_counter(item["SK"])
            if handler_type in types:
                per_block[block] = per_block.get(block, 0) + int(item["n"])
        return sorted(per_block.items())

    def _ids_of_types(
        self, account: str, app: str, types: Sequence[str], *, low: int, high: int, limit: int
    ) -> list[int]:
        """The first `limit` ids in [low, high] of the app's handlers of any of `types`."""
        ids: list[int] = []
        for handler_type in types:
            found = self.table.query(
                "PK = :pk AND app_hid BETWEEN :low AND :high",
                {
                    ":pk": keys.account_pk(account),
                    ":low": keys.app_hid(app, handler_type, low),
                    ":high": keys.app_hid(app, handler_type, high),
                },
                limit=limit,
                IndexName=keys.BY_APP_INDEX,
            )
            ids += [keys.handler_id_of(item["SK"]) for item in found]
        return sorted(ids)[:limit]

    def _ids_with_prefix(self, account: str, prefix: str) -> list[int]:
        found = self.table.query(
            "PK = :pk AND begins_with(app_hid, :prefix)",
            {":pk": keys.account_pk(account), ":prefix": prefix},
            IndexName=keys.BY_APP_INDEX,
        )
        return [keys.handler_id_of(item["SK"]) for item in found]

    def _handlers(self, account: str, ids: Sequence[int]) -> list[Handler]:
        """The handlers of `ids` in id order, read with consistent BatchGetItems (one deleted
        since its key was read is left out); Contended if DynamoDB leaves some unread."""
        handlers: list[Handler] = []
        for start in range(0, len(ids), BATCH_GET_KEYS):
            chunk = [handler_key(account, handler_id) for handler_id in ids[start : start + BATCH_GET_KEYS]]
            items, unread = self.table.batch_get(chunk)
            if unread:
                raise Contended("the handlers could not be read for throttling; send the request again")
            handlers += map(handler_of, items)
        return sorted(handlers, key=lambda handler: handler.id)

    def rotate_secret(self, account: str, handler_id: int, new_secret: str, overlap_until: datetime) -> None:
        """`SET prev = cur, cur = :new` reads the old value in the same atomic update."""
        try:
            self.table.update(
                handler_key(account, handler_id),
                "SET previous_secret = signing_secret, signing_secret = :new, "
                "previous_secret_expires_at = :until",
                condition="attribute_exists(SK) AND attribute_exists(signing_secret)",
                values={":new": new_secret, ":until": overlap_until.isoformat()},
            )
        except ConditionFailed:
            raise _not_found(handler_id) from None

    def note_attempts(
        self, handler: Handler, statuses: Sequence[AttemptStatus], now: datetime
    ) -> Noted | None:
        """One UpdateItem for them all. If one was delivered it sets last_datetime and clears
        failing_since (answering the item as it was, to learn whether it ended a run of
        failures: only the attributes it changes come back, not the whole item); else a failure
        starts the failing_since clock if it is not running."""
        delivered = AttemptStatus.DELIVERED in statuses
        if delivered:
            expression = "ADD attempt_seq :count SET last_datetime = :now REMOVE failing_since"
        elif all(status == AttemptStatus.SKIPPED for status in statuses):
            expression = "ADD attempt_seq :count"
        else:
            expression = "ADD attempt_seq :count SET failing_since = if_not_exists(failing_since, :now)"
        values: dict[str, Any] = {":count": len(statuses)}
        if ":now" in expression:
            values[":now"] = now.isoformat()
        try:
            updated = self.table.update(
                handler_key(handler.account, handler.id),
                expression,
                condition="attribute_exists(SK)",
                values=values,
                returns="UPDATED_OLD" if delivered else "UPDATED_NEW",
            )
        except ConditionFailed:
            return None
        if delivered:
            ended = updated.get("failing_since")
            seq = int(updated.get("attempt_seq", 0)) + 1
            return Noted(seq, None, recovered_from=datetime.fromisoformat(ended) if ended else None)
        seq = int(updated["attempt_seq"]) - len(statuses) + 1
        # UPDATED_NEW may leave out a failing_since that if_not_exists kept as it was
        since = updated.get("failing_since")
        return Noted(seq, datetime.fromisoformat(since) if since else handler.failing_since)

    def attempt_count(self, account: str, handler_id: int) -> int:
        item = self.table.get(handler_key(account, handler_id), attributes=["attempt_seq"])
        return int((item or {}).get("attempt_seq", 0))

    def disable_handler(self, account: str, handler_id: int, reason: str, now: datetime) -> bool:
        try:
            self.table.update(
                handler_key(account, handler_id),
                "SET is_enabled = :f, disabled_reason = :reason, updated_at = :now",
                condition="attribute_exists(SK) AND is_enabled = :t",
                values={":f": False, ":t": True, ":reason": reason, ":now": now.isoformat()},
            )
        except ConditionFailed:
            return False
        return True
