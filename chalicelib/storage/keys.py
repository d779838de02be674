"""Every key shape of Herald's single table, in one place (documented in the README).

| item              | PK                 | SK                   | notes                                  |
|-------------------|--------------------|----------------------|----------------------------------------|
| API key           | APIKEY#<key id>    | APIKEY               | sha256 of the key, account, revoked    |
| id allocator      | ACCT#<account>     | META                 | next_id, only ever incremented         |
| block counter     | ACCT#<account>     | CNT#<block>          | n = live handlers with id in the block |
| app block counter | ACCT#<account>     | ACNT#<app>#<type>#<block> | n = the app's live handlers of |
|                   |                    |                      | the type with id in the block          |
| app               | ACCT#<account>     | APP#<name>           | app_id, assigned on first use          |
| handler           | ACCT#<account>     | H#<id>               | hid = id (sort key of LSI by_hid),     |
|                   |                    |                      | app_hid = A#<app>#<type>#<id>, or      |
|                   |                    |                      | *#<type>#<id> without app (LSI by_app) |
| event             | EVT#<account>#<ev> | EVENT                | the accepted event, fan-out status, TTL |
| app's event       | AEV#<acct>#<app>   | <created>#<ev>       | copy of an app's event, for its list, TTL |
| account's event   | ACEV#<acct>        | <created>#<ev>       | copy of every event, for its list, TTL |
| delivery state    | EVT#<account>#<ev> | DLV#<handler id>     | status, attempts, lease (idempotency), |
|                   |                    |                      | generation (replays), next attempt     |
| attempt log       | LOG#<account>#<id> | <seq>                | one per attempt, seq from the handler, TTL |
| account's hour    | ASTAT#<account>    | <yyyymmddhh>         | attempts by outcome, sent_ms, TTL      |
| inbox             | INBOX#<account>    | U#/R#<id>, CNT#<day> | unread/read notifications, day counters |
| email confirmation | CONFIRM#<token>   | CONFIRM              | account, handler id, address, TTL      |
| rate window       | RATE#<subject>     | RATE                 | w<minute> hit counts, TTL              |
| portal session    | PORTAL#<id>        | PORTAL               | sha256 of the token, account, TTL      |
| push subscriber   | PUSH#<account>     | <subscriber id>      | browser subscription (endpoint, keys)  |
| destination pace  | DEST#<digest>      | PACE                 | next_ms: a destination's next free send |
|                   |                    |                      | slot (its rate limit), TTL             |
"""

from __future__ import annotations

from datetime import UTC, datetime

BLOCK_SIZE = 100
"""Handler ids per block counter: a page's start is a prefix sum over these counters."""

_ID_WIDTH = 12
LAST_ID = 10**_ID_WIDTH - 1
"""The highest id a 12-digit key holds: the end of an id range."""
HANDLER_PREFIX = "H#"
HANDLER_END = "H$"  # sorts right after every "H#..." key
COUNTER_PREFIX = "CNT#"
BY_HID_INDEX = "by_hid"
BY_APP_INDEX = "by_app"
APP_COUNTER_PREFIX = "ACNT#"
ACCOUNT_WIDE = "*"
"""The scope of handlers that belong to no app: `*` sorts apart from every `A#<app>`."""


def account_pk(account: str) -> str:
    return f"ACCT#{account}"


def meta_sk() -> str:
    return "META"


def handler_sk(handler_id: int) -> str:
    return f"{HANDLER_PREFIX}{handler_id:0{_ID_WIDTH}d}"


def handler_id_of(sk: str) -> int:
    return int(sk[len(HANDLER_PREFIX) :])


def block_of(handler_id: int) -> int:
    return handler_id // BLOCK_SIZE


def counter_sk(block: int) -> str:
    return f"{COUNTER_PREFIX}{block:0{_ID_WIDTH}d}"


def block_of_counter(sk: str) -> int:
    return int(sk[len(COUNTER_PREFIX) :])


def app_scope(app: str | None) -> str:
    """The `by_app` sort key's first part: `A#<app>`, or `*` for an account-wide handler.
    App names hold no `#`, so one app's prefix never matches another's."""
    return f"A#{app}" if app else ACCOUNT_WIDE


def app_hid(app: str | None, handler_type: str, handler_id: int) -> str:
    """A handler's `by_app` sort key: its scope, then its type, then its id, so one Query
    reads an app's handlers (or one type of them) in id order and nothing else."""
    return f"{app_scope(app)}#{handler_type}#{handler_id:0{_ID_WIDTH}d}"


def scope_range(app: str | None) -> tuple[str, str]:
    """The `by_app` sort keys of one scope's handlers, every type: [low, high]."""
    scope = app_scope(app)
    return f"{scope}#", f"{scope}$"  # "$" sorts right after "#"


def app_counter_prefix(app: str) -> str:
    """Every block counter of the app (all types): `ACNT#<app>#`."""
    return f"{APP_COUNTER_PREFIX}{app}#"


def app_counter_sk(app: str, handler_type: str, block: int) -> str:
    return f"{app_counter_prefix(app)}{handler_type}#{block:0{_ID_WIDTH}d}"


def type_and_block_of_app_counter(sk: str) -> tuple[str, int]:
    handler_type, _, block = sk.rpartition("#")
    return handler_type.rpartition("#")[2], int(block)


def api_key_pk(key_id: str) -> str:
    return f"APIKEY#{key_id}"


def api_key_sk() -> str:
    return "APIKEY"


def event_pk(account: str, event_id: str) -> str:
    return f"EVT#{account}#{event_id}"


def event_sk() -> str:
    return "EVENT"


def app_event_pk(account: str, app: str) -> str:
    return f"AEV#{account}#{app}"


def account_event_pk(account: str) -> str:
    """Every event of the account, newest first (`ACEV#`: apart from each app's `AEV#`, so
    an account named like `<account>#<app>` cannot read another's app list)."""
    return f"ACEV#{account}"


def app_event_sk(created_at: str, event_id: str) -> str:
    return f"{created_at}#{event_id}"


DELIVERY_PREFIX = "DLV#"
MATCHED_PREFIX = "MATCHED#"


def matched_sk(chunk: str) -> str:
    """The handlers a queued fan-out matched in the chunk that starts after `chunk` (a
    `by_app` key, empty for the first): one item per chunk, in the event's partition."""
    return f"{MATCHED_PREFIX}{chunk}"


def delivery_sk(handler_id: int) -> str:
    return f"{DELIVERY_PREFIX}{handler_id:0{_ID_WIDTH}d}"


def handler_id_of_delivery(sk: str) -> int:
    return int(sk[len(DELIVERY_PREFIX) :])


def account_stats_pk(account: str) -> str:
    return f"ASTAT#{account}"


def hour_sk(hour: datetime) -> str:
    """`yyyymmddhh`, UTC: an account's hours sort in time order."""
    return hour.astimezone(UTC).strftime("%Y%m%d%H")


def log_pk(account: str, handler_id: int) -> str:
    return f"LOG#{account}#{handler_id}"


def log_sk(seq: int) -> str:
    return f"{seq:0{_ID_WIDTH}d}"


def inbox_pk(account: str) -> str:
    return f"INBOX#{account}"


def push_pk(account: str) -> str:
    return f"PUSH#{account}"


def confirmation_pk(token: str) -> str:
    return f"CONFIRM#{token}"


def app_sk(name: str) -> str:
    return f"APP#{name}"


def destination_pk(digest: str) -> str:
    return f"DEST#{digest}"


def destination_sk() -> str:
    return "PACE"


def portal_session_pk(session_id: str) -> str:
    return f"PORTAL#{session_id}"


def portal_session_sk() -> str:
    return "PORTAL"


def rate_pk(subject: str) -> str:
    return f"RATE#{subject}"


def rate_sk() -> str:
    return "RATE"


def confirmation_sk() -> str:
    return "CONFIRM"


def push_sk(subscriber_id: str) -> str:
    return subscriber_id


INBOX_UNREAD_PREFIX = "U#"
INBOX_READ_PREFIX = "R#"
INBOX_COUNTER_PREFIX = "CNT#"
INBOX_ITEMS_LOW = INBOX_READ_PREFIX
INBOX_ITEMS_HIGH = "U$"  # sorts right after every "U#..." key


def inbox_sk(prefix: str, notification_id: str) -> str:
    """`U#<id>` (unread), `R#<id>` (read) or `CNT#<yyyymmdd>` (a day's counter)."""
    return f"{prefix}{notification_id}"
