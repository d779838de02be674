"""What the soak and the concurrency runs share: webhook receivers that record every attempt,
an API client that counts every answer, and the ledger that holds Herald's attempt log to what
the receivers saw (lost, rewritten or renumbered entries, drifting counters).

Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import math
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

ACCOUNT = "soak"
LOG_PAGE = 1000
"""The largest results_per_page the API allows: the fewest requests for a whole log."""


# --- receivers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One request a receiver answered."""

    path: str
    event_id: str
    webhook_id: str
    status: int
    at: float
    """time.monotonic() when it was answered."""


def first_attempt_fails(webhook_id: str, share: float) -> bool:
    """Whether a flaky endpoint refuses this delivery's first attempt: a stable `share` of
    deliveries, chosen by their id."""
    return zlib.crc32(webhook_id.encode()) % 1000 < share * 1000


class Receivers:
    """Webhook endpoints on one loopback server, by path prefix:
    /ok/...    answer 200;
    /fail/...  answer 500, always (every attempt is retried on Herald's schedule);
    /flaky/... answer 503 to the first attempt of `flaky_share` of deliveries, 200 after.
    """

    def __init__(self, flaky_share: float = 1.0) -> None:
        self.flaky_share = flaky_share
        self._hits: list[Hit] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event_id = str(json.loads(body).get("id", ""))
                except (ValueError, AttributeError):
                    event_id = ""
                status = receivers.answer(self.path, self.headers.get("webhook-id", ""))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receivers.record(Hit(self.path, event_id, self.headers.get("webhook-id", ""), status, 0.0))

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def answer(self, path: str, webhook_id: str) -> int:
        if path.startswith("/fail/"):
            return 500
        if path.startswith("/flaky/"):
            with self._lock:
                first = webhook_id not in self._seen
                self._seen.add(webhook_id)
            return 503 if first and first_attempt_fails(webhook_id, self.flaky_share) else 200
        return 200

    def record(self, hit: Hit) -> None:
        with self._lock:
            self._hits.append(Hit(hit.path, hit.event_id, hit.webhook_id, hit.status, time.monotonic()))

    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- the API, counted ------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    """0: no answer (connection refused, timeout)."""
    body: Any


class Api:
    """Herald's API over one session per thread; every answer is counted by status, and any
    5xx, failed connection or unexpected status is kept for the report."""

    def __init__(self, base: str, key: str, timeout: float = 60.0) -> None:
        self.base = base
        self.key = key
        self.timeout = timeout
        self.statuses: Counter[int] = Counter()
        self.by_route: Counter[str] = Counter()
        self.server_errors: list[str] = []
        self.unexpected: list[str] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def call(
        self,
        route: str,
        method: str,
        path: str,
        *,
        expect: Iterable[int] = (200,),
        public: bool = False,
        **kwargs: Any,
    ) -> Answer:
        headers = {} if public else {"Authorization": f"Bearer {self.key}"}
        try:
            response = self._session().request(
                method, self.base + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as exc:
            status, body, text = 0, None, f"{type(exc).__name__}: {exc}"
        else:
            status, text = response.status_code, response.text[:300]
            try:
                body = response.json() if response.content else None
            except ValueError:
                body = None
        with self._lock:
            self.statuses[status] += 1
            self.by_route[route] += 1
            if status >= 500 or status == 0:
                self.server_errors.append(f"{method} {path} -> {status}: {text}")
            elif status not in expect:
                self.unexpected.append(f"{method} {path} -> {status}: {text}")
        return Answer(status, body)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    def create_webhook(self, name: str, url: str, **fields: Any) -> int | None:
        answer = self.call(
            "create handler",
            "POST",
            "/notification-handlers",
            json={"name": name, "type": "webhook", "webhook": url, **fields},
            expect=(201,),
        )
        return int(answer.body["data"]["id"]) if answer.status == 201 else None

    def attempt_log(self, handler_id: int) -> tuple[list[dict[str, Any]], int] | None:
        """The handler's whole attempt log (newest first, deduplicated by id) and its total
        when the first page was read; None if a page failed. Pages are numbered from the
        newest entry at each request, so this keeps reading until it reaches entry 1."""
        entries: dict[int, dict[str, Any]] = {}
        total: int | None = None
        page = 1
        while True:
            answer = self.call(
                "read attempt log",
                "GET",
                f"/notification-handlers/{handler_id}/deliveries",
                params={"page": page, "results_per_page": LOG_PAGE},
            )
            if answer.status != 200:
                return None
            data = answer.body["data"]
            if total is None:
                total = int(answer.body["meta"]["total"])
            for entry in data:
                entries.setdefault(int(entry["id"]), entry)
            if not data or min(int(e["id"]) for e in data) <= 1 or page > total / LOG_PAGE + 2:
                break
            page += 1
        return sorted(entries.values(), key=lambda e: -int(e["id"])), total or 0


# --- the ledger ------------------------------------------------------------------------------

Finding = tuple[str, int, str]
"""(kind, handler id, detail)."""


@dataclass
class Findings:
    """What the ledger found; `persistent` ones survived every check of a settling window."""

    problems: set[Finding] = field(default_factory=set)
    checked_entries: int = 0
    checked_hits: int = 0

    def kinds(self) -> dict[str, int]:
        return dict(Counter(kind for kind, _, _ in self.problems))


class Ledger:
    """Herald's attempt log against the receivers, per handler.

    - every entry, once seen, must never change (rewritten) or disappear (vanished);
    - a handler's entries are numbered 1..total without a gap or a repeat (a lost entry
      leaves a gap);
    - per event: as many entries as requests the receiver answered (unlogged / logged
      but never received), attempts numbered 1..n, the last entry's status as the last
      answer (2xx delivered, else retrying or failed), and the delivery record's attempt
      counter and status equal to the log's (when records are given).
    """

    def __init__(self) -> None:
        self._seen: dict[int, dict[int, str]] = defaultdict(dict)
        self.history: set[Finding] = set()

    def observe(self, handler_id: int, entries: list[dict[str, Any]]) -> None:
        """Remember entries; an entry seen before with other content is rewritten."""
        known = self._seen[handler_id]
        for entry in entries:
            seq = int(entry["id"])
            text = json.dumps(entry, sort_keys=True)
            if seq in known and known[seq] != text:
                self.history.add(("rewritten entry", handler_id, f"#{seq}: {known[seq]} -> {text}"))
            known.setdefault(seq, text)

    def check(
        self,
        handler_id: int,
        entries: list[dict[str, Any]],
        total: int,
        hits: list[Hit],
        records: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Findings:
        """One comparison; `hits` are this handler's, `records` its delivery records by event."""
        self.observe(handler_id, entries)
        found: set[Finding] = set()
        seqs = Counter(int(e["id"]) for e in entries)
        found |= {("repeated number", handler_id, f"#{s}") for s, n in seqs.items() if n > 1}
        found |= {("gap in numbering", handler_id, f"#{s}") for s in range(1, total + 1) if s not in seqs}
        present = set(seqs)
        found |= {("vanished entry", handler_id, f"#{s}") for s in self._seen[handler_id] if s not in present}
        by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in entries:
            by_event[str(entry["event_id"])].append(entry)
        hits_by_event: dict[str, list[Hit]] = defaultdict(list)
        for hit in hits:
            hits_by_event[hit.event_id].append(hit)
        for event_id in set(by_event) | set(hits_by_event):
            found |= _event_findings(
                handler_id,
                event_id,
                by_event.get(event_id, []),
                sorted(hits_by_event.get(event_id, []), key=lambda h: h.at),
                None if records is None else records.get(event_id),
            )
        return Findings(found | self.history, len(entries), len(hits))


def _event_findings(
    handler_id: int,
    event_id: str,
    entries: list[dict[str, Any]],
    hits: list[Hit],
    record: Mapping[str, Any] | None,
) -> set[Finding]:
    found: set[Finding] = set()
    if len(hits) > len(entries):
        found.add(
            ("unlogged attempt", handler_id, f"{event_id}: {len(hits)} received, {len(entries)} logged")
        )
    elif len(entries) > len(hits):
        found.add(
            ("logged, never received", handler_id, f"{event_id}: {len(hits)} received, {len(entries)} logged")
        )
    attempts = sorted(int(e["attempt"]) for e in entries)
    if attempts != list(range(1, len(entries) + 1)):
        found.add(("attempt numbers", handler_id, f"{event_id}: {attempts}"))
    last = max(entries, key=lambda e: int(e["attempt"]), default=None)
    if last is not None and hits:
        answered = hits[-1].status
        wanted = ("delivered",) if 200 <= answered < 300 else ("retrying", "failed")
        if last["status"] not in wanted:
            found.add(
                ("last status", handler_id, f"{event_id}: logged {last['status']}, answered {answered}")
            )
    if (
        record is not None
        and last is not None
        and (int(record.get("attempts", 0)) != len(entries) or record.get("status") != last["status"])
    ):
        found.add(
            (
                "delivery record",
                handler_id,
                f"{event_id}: record {record.get('status')}/{record.get('attempts')}, "
                f"log {last['status']}/{len(entries)}",
            )
        )
    return found


def settled(check: Callable[[], Findings], window: float, every: float = 3.0) -> Findings:
    """Findings that persist across every check for `window` seconds: an attempt in flight
    (sent, not yet logged) shows for a moment and is not a loss; a lost entry stays."""
    findings = check()
    deadline = time.monotonic() + window
    while findings.problems and time.monotonic() < deadline:
        time.sleep(every)
        again = check()
        findings = Findings(findings.problems & again.problems, again.checked_entries, again.checked_hits)
    return findings


@dataclass(frozen=True)
class Table:
    """Where the stack keeps its data: DynamoDB's endpoint, the table, the account."""

    endpoint: str
    name: str
    account: str = ACCOUNT

    @classmethod
    def of(cls, exported: Mapping[str, str], account: str = ACCOUNT) -> Table:
        """From the stack's local.env."""
        endpoint = exported.get("AWS_ENDPOINT_URL_DYNAMODB") or exported["AWS_ENDPOINT_URL"]
        return cls(endpoint, exported["HERALD_TABLE"], account)


def hold_logs_to_receivers(
    api: Api,
    ledger: Ledger,
    receivers: Receivers,
    *,
    paths: Mapping[int, str],
    events: list[str],
    table: Table,
    window: float,
) -> Findings:
    """The ledger over these handlers (their receiver paths by id) until its findings settle."""

    def check() -> Findings:
        hits = receivers.hits()
        records = delivery_records(table.endpoint, table.name, dict.fromkeys(paths, events), table.account)
        total = Findings()
        for handler, path in paths.items():
            log = api.attempt_log(handler)
            if log is None:
                total.problems.add(("log unreadable", handler, ""))
                continue
            mine = [hit for hit in hits if hit.path == path]
            found = ledger.check(handler, log[0], log[1], mine, records.get(handler, {}))
            total.problems |= found.problems
            total.checked_entries += found.checked_entries
            total.checked_hits += found.checked_hits
        return total

    return settled(check, window)


def delivery_records(
    endpoint: str, table: str, handler_events: Mapping[int, Iterable[str]], account: str = ACCOUNT
) -> dict[int, dict[str, dict[str, Any]]]:
    """The delivery records (status, attempts) of these handler x events, read straight from
    DynamoDB (BatchGetItem, consistent)."""
    import boto3
    from boto3.dynamodb.types import TypeDeserializer

    from chalicelib.storage import keys

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    wanted = [
        {"PK": {"S": keys.event_pk(account, event)}, "SK": {"S": keys.delivery_sk(handler)}}
        for handler, events in handler_events.items()
        for event in events
    ]
    out: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    plain = TypeDeserializer()
    for start in range(0, len(wanted), 100):
        pending: list[dict[str, Any]] = wanted[start : start + 100]
        while pending:
            answer = client.batch_get_item(RequestItems={table: {"Keys": pending, "ConsistentRead": True}})
            for item in answer["Responses"].get(table, []):
                record = {name: plain.deserialize(value) for name, value in item.items()}
                event_id = str(record["PK"]).split("#", 2)[2]
                handler_id = int(str(record["SK"])[len("DLV#") :])
                out[handler_id][event_id] = record
            pending = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
    return out


# --- memory ----------------------------------------------------------------------------------


def memory_summary(samples: list[tuple[float, dict[str, int]]], warmup: float) -> dict[str, dict[str, float]]:
    """Per process role, in MiB: at the end of the warm-up, at the end, the peak, and the
    growth after the warm-up (total and as a least-squares slope per hour)."""
    roles = sorted({role for _, sample in samples for role in sample})
    summary = {}
    for role in roles:
        points = [(t, kib / 1024) for t, sample in samples if (kib := sample.get(role)) is not None]
        after = [(t, mib) for t, mib in points if t >= warmup] or points[-1:]
        if not points:
            continue
        slope = _slope(after) * 3600
        summary[role] = {
            "after_warmup_mib": round(after[0][1], 1),
            "end_mib": round(points[-1][1], 1),
            "peak_mib": round(max(mib for _, mib in points), 1),
            "growth_after_warmup_mib": round(points[-1][1] - after[0][1], 1),
            "slope_mib_per_hour": round(slope, 1),
        }
    return summary


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = math.fsum(t for t, _ in points) / n
    mean_m = math.fsum(m for _, m in points) / n
    spread = math.fsum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return math.fsum((t - mean_t) * (m - mean_m) for t, m in points) / spread
