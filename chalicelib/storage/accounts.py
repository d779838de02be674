"""What belongs to an account rather than to one handler: API keys, portal sessions, rate
windows, apps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from chalicelib.storage import keys
from chalicelib.storage.table import ConditionFailed, Item, Key, Table


class ApiKeyStore(Protocol):
    """API keys by id: the key's SHA-256 (never the key), its account, revoked or not."""

    def put_api_key(self, key_id: str, key_hash: str, account: str, created_at: datetime) -> None:
        """ConditionFailed if the id is taken."""
        ...

    def get_api_key(self, key_id: str) -> Item | None: ...

    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> bool:
        """False if there is no such key."""
        ...


@dataclass(frozen=True)
class PortalSession:
    """A portal link's token, as stored: its SHA-256 (never the token), account and end."""

    token_hash: str
    account: str
    expires_at: datetime


class PortalSessionStore(Protocol):
    """Portal sessions by id; DynamoDB's TTL deletes them some time after they expire."""

    def put_portal_session(self, session_id: str, session: PortalSession, created_at: datetime) -> None:
        """ConditionFailed if the id is taken."""
        ...

    def get_portal_session(self, session_id: str) -> PortalSession | None: ...


class RateStore(Protocol):
    """Hits per subject (a key, an address) per one-minute window."""

    def add_hits(self, subject: str, window: int, count: int, expires_at: int) -> tuple[int, int]:
        """Count `count` hits in minute `window` (a container leases several at once);
        returns (this minute's, last minute's) hits, these included."""
        ...

    def take_back_hits(self, subject: str, window: int, count: int) -> None:
        """Uncount `count` hits of minute `window` (concurrent hits are kept)."""
        ...

    def rate_window(self, subject: str, window: int) -> tuple[int, int]:
        """(minute `window`'s, the minute before's) hits, counting nothing."""
        ...


class AppStore(Protocol):
    """An account's apps: a name and the id assigned on first use."""

    def app_id(self, account: str, name: str, candidate_id: str) -> str:
        """The app's id, assigning `candidate_id` if the app is new."""
        ...

    def app_named_by_id(self, account: str, app_id: str) -> str | None: ...


def _api_key(key_id: str) -> Key:
    return keys.api_key_pk(key_id), keys.api_key_sk()


def _rate_key(subject: str) -> Key:
    return keys.rate_pk(subject), keys.rate_sk()


class DynamoApiKeyStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put_api_key(self, key_id: str, key_hash: str, account: str, created_at: datetime) -> None:
        pk, sk = _api_key(key_id)
        item = {
            "PK": pk,
            "SK": sk,
            "key_hash": key_hash,
            "account": account,
            "created_at": created_at.isoformat(),
            "revoked": False,
        }
        self.table.put(item, condition="attribute_not_exists(PK)")

    def get_api_key(self, key_id: str) -> Item | None:
        return self.table.get(_api_key(key_id), consistent=False)

    def revoke_api_key(self, key_id: str, revoked_at: datetime) -> bool:
        try:
            self.table.update(
                _api_key(key_id),
                "SET revoked = :t, revoked_at = :at",
                condition="attribute_exists(PK)",
                values={":t": True, ":at": revoked_at.isoformat()},
            )
        except ConditionFailed:
            return False
        return True


class DynamoPortalSessionStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put_portal_session(self, session_id: str, session: PortalSession, created_at: datetime) -> None:
        item = {
            "PK": keys.portal_session_pk(session_id),
            "SK": keys.portal_session_sk(),
            "token_hash": session.token_hash,
            "account": session.account,
            "created_at": created_at.isoformat(),
            "expires_at": int(session.expires_at.timestamp()),
        }
        self.table.put(item, condition="attribute_not_exists(PK)")

    def get_portal_session(self, session_id: str) -> PortalSession | None:
        key = (keys.portal_session_pk(session_id), keys.portal_session_sk())
        item = self.table.get(key, consistent=False)
        if item is None:
            return None
        expires_at = datetime.fromtimestamp(int(item["expires_at"]), UTC)
        return PortalSession(str(item["token_hash"]), str(item["account"]), expires_at)


class DynamoRateStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def add_hits(self, subject: str, window: int, count: int, expires_at: int) -> tuple[int, int]:
        """The minute before last is dropped in the same update, so the item stays small."""
        item = self.table.update(
            _rate_key(subject),
            "ADD #now :count SET expires_at = :exp REMOVE #old",
            names={"#now": f"w{window}", "#old": f"w{window - 2}"},
            values={":count": count, ":exp": expires_at},
            returns="ALL_NEW",
        )
        return int(item.get(f"w{window}", 0)), int(item.get(f"w{window - 1}", 0))

    def take_back_hits(self, subject: str, window: int, count: int) -> None:
        self.table.update(
            _rate_key(subject), "ADD #now :minus", names={"#now": f"w{window}"}, values={":minus": -count}
        )

    def rate_window(self, subject: str, window: int) -> tuple[int, int]:
        item = self.table.get(_rate_key(subject), attributes=[f"w{window}", f"w{window - 1}"]) or {}
        return int(item.get(f"w{window}", 0)), int(item.get(f"w{window - 1}", 0))


class DynamoAppStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def app_id(self, account: str, name: str, candidate_id: str) -> str:
        """One atomic update, so two first uses agree on the id."""
        item = self.table.update(
            (keys.account_pk(account), keys.app_sk(name)),
            "SET app_id = if_not_exists(app_id, :id), #name = :name",
            names={"#name": "name"},
            values={":id": candidate_id, ":name": name},
            returns="ALL_NEW",
        )
        return str(item["app_id"])

    def app_named_by_id(self, account: str, app_id: str) -> str | None:
        """The account's app items, a few hundred bytes each, read in one Query."""
        for item in self.table.query(
            "PK = :pk AND begins_with(SK, :prefix)",
            {":pk": keys.account_pk(account), ":prefix": keys.app_sk(""), ":id": app_id},
            FilterExpression="app_id = :id",
        ):
            return str(item["name"])
        return None
