"""The `herald` commands that act as an account, through the API: events, deliveries,
replay, recover and tail.

They call Herald's routes with the account's key (`HERALD_URL` and `HERALD_API_KEY`, which
`. .herald/local.env` exports, or `--url` / `--key`), so they see and change exactly what the
key's account may, by the same code as any client.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from chalicelib import clock

HINT = "run `make dev`, then `. .herald/local.env` in this shell (or pass --url and --key)"
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ApiError(Exception):
    """An answer the command cannot go on with, said in one line."""


class Api:
    """The account's view of Herald over HTTP."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        given = {name: value for name, value in (query or {}).items() if value is not None}
        target = self.url + path + (f"?{urlencode(given)}" if given else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(target, data=data, method=method)  # noqa: S310 - our own API
        request.add_header("Authorization", f"Bearer {self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            raise ApiError(_problem(error)) from None
        except urllib.error.URLError as error:
            raise ApiError(f"cannot reach {self.url} ({error.reason}): {HINT}") from None


def _problem(error: urllib.error.HTTPError) -> str:
    """The API's own words for a refusal: each error's detail."""
    try:
        errors = json.loads(error.read())["errors"]
        return f"HTTP {error.code}: " + "; ".join(str(e["detail"]) for e in errors)
    except (ValueError, KeyError, TypeError):
        return f"HTTP {error.code} from {error.url}"


def since_moment(raw: str, now: datetime) -> str:
    """`--since`: a duration back from now (`30m`, `24h`, `7d`) or an ISO 8601 moment."""
    found = _DURATION.fullmatch(raw.strip())
    if found:
        return (now - timedelta(**{_UNITS[found[2]]: int(found[1])})).isoformat(timespec="seconds")
    return raw


def attempt_line(handler_id: int, attempt: dict[str, Any]) -> str:
    """One attempt as `herald tail` and `herald deliveries` print it."""
    outcome = attempt["status"]
    if attempt.get("http_status") is not None:
        outcome += f" HTTP {attempt['http_status']}"
    if attempt.get("error"):
        outcome += f" ({attempt['error']})"
    return (
        f"{attempt['datetime']}  handler {handler_id}  event {attempt['event_id']}  "
        f"attempt {attempt['attempt']}  {outcome}"
    )


def _print_json(answer: Any) -> None:
    print(json.dumps(answer, indent=2))


def _events_list(api: Api, args: argparse.Namespace) -> int:
    answer = api.call("GET", "/v1/events", {"type": args.type, "app": args.app, "page": args.page})
    if args.json:
        _print_json(answer)
        return 0
    for event in answer["data"]:
        print(f"{event['id']}  {event['created_at']}  {event['type']}  {event['app'] or '-'}")
    meta = answer["meta"]
    print(f"page {meta['page']} of {meta['total_pages']} ({meta['total']} events)")
    return 0


def _events_show(api: Api, args: argparse.Namespace) -> int:
    event = api.call("GET", f"/v1/events/{args.event_id}")["data"]
    if args.json:
        _print_json(event)
        return 0
    print(f"{event['id']}  {event['created_at']}  {event['type']}  {event['app'] or '-'}")
    for delivery in event["deliveries"]:
        line = f"  handler {delivery['handler_id']}: {delivery['status']}, {delivery['attempts']} attempt(s)"
        if delivery["http_status"] is not None:
            line += f", last HTTP {delivery['http_status']}"
        if delivery["error"]:
            line += f", {delivery['error']}"
        if delivery["next_attempt_at"]:
            line += f", next attempt {delivery['next_attempt_at']}"
        if delivery["dead_lettered"]:
            line += ", dead-lettered"
        print(line)
    return 0


def _deliveries(api: Api, args: argparse.Namespace) -> int:
    answer = api.call(
        "GET",
        f"/notification-handlers/{args.handler_id}/deliveries",
        {"status": args.status, "event_id": args.event, "page": args.page},
    )
    if args.json:
        _print_json(answer)
        return 0
    for attempt in answer["data"]:
        print(attempt_line(args.handler_id, attempt))
    return 0


def _replay(api: Api, args: argparse.Namespace) -> int:
    path = f"/v1/events/{args.event_id}"
    path += f"/deliveries/{args.handler}/replay" if args.handler is not None else "/replay"
    answer = api.call("POST", path)["data"]
    if args.json:
        _print_json(answer)
        return 0
    print(f"replayed to handler(s): {', '.join(map(str, answer['replayed'])) or 'none'}")
    if answer["in_flight"]:
        print(f"in flight, left to their attempt: {', '.join(map(str, answer['in_flight']))}")
    return 0


def _recover(api: Api, args: argparse.Namespace) -> int:
    body = {"since": since_moment(args.since, clock.now())} if args.since else {}
    answer = api.call("POST", f"/notification-handlers/{args.handler_id}/recover", body=body)["data"]
    if args.json:
        _print_json(answer)
        return 0
    print(f"requeued {len(answer['requeued'])} event(s) failed since {answer['since']}")
    for event_id in answer["requeued"]:
        print(f"  {event_id}")
    return 0


def _handler_ids(api: Api) -> list[int]:
    ids: list[int] = []
    page = 1
    while True:
        answer = api.call("GET", "/notification-handlers", {"page": page, "results_per_page": 1000})
        ids += [handler["id"] for handler in answer["data"]]
        if answer["links"]["next"] is None:
            return ids
        page += 1


def new_attempts(
    api: Api, handler_ids: Iterable[int], event_id: str | None, seen: set[tuple[int, int]]
) -> list[tuple[int, dict[str, Any]]]:
    """Each handler's attempts not `seen` yet (the newest 100 per handler), oldest first;
    they are added to `seen`."""
    found = []
    for handler_id in handler_ids:
        try:
            answer = api.call(
                "GET",
                f"/notification-handlers/{handler_id}/deliveries",
                {"results_per_page": 100, "event_id": event_id},
            )
        except ApiError:
            continue  # deleted since the list was read
        for attempt in reversed(answer["data"]):
            if (handler_id, attempt["id"]) not in seen:
                seen.add((handler_id, attempt["id"]))
                found.append((handler_id, attempt))
    return sorted(found, key=lambda pair: (pair[1]["datetime"], pair[0], pair[1]["id"]))


def _tail(api: Api, args: argparse.Namespace) -> int:
    """Poll every `--interval` seconds until `--deadline` (or `--count` attempts). Without
    `--event`, attempts made before it started are not printed."""
    deadline = time.monotonic() + args.deadline
    handlers = args.handler or _handler_ids(api)
    seen: set[tuple[int, int]] = set()
    if args.event is None:
        new_attempts(api, handlers, None, seen)
    printed = 0
    while True:
        if not args.handler:
            handlers = _handler_ids(api)
        for handler_id, attempt in new_attempts(api, handlers, args.event, seen):
            print(attempt_line(handler_id, attempt), flush=True)
            printed += 1
        if args.count is not None and printed >= args.count:
            return 0
        if time.monotonic() + args.interval > deadline:
            if args.count is None:
                return 0
            print(f"herald: {printed} of {args.count} attempts before the deadline", file=sys.stderr)
            return 1
        time.sleep(args.interval)


def _account_api(args: argparse.Namespace) -> Api | None:
    url = args.url or os.environ.get("HERALD_URL")
    key = args.key or os.environ.get("HERALD_API_KEY")
    if not url or not key:
        print(f"herald: HERALD_URL and HERALD_API_KEY are not set: {HINT}", file=sys.stderr)
        return None
    return Api(url, key)


def _runs(command: Callable[[Api, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        api = _account_api(args)
        if api is None:
            return 1
        try:
            return command(api, args)
        except ApiError as error:
            print(f"herald: {error}", file=sys.stderr)
            return 1

    return run


def _with_account(parser: argparse.ArgumentParser, command: Callable[[Api, argparse.Namespace], int]) -> None:
    parser.add_argument("--url", help="Herald's base URL (default: $HERALD_URL)")
    parser.add_argument("--key", help="the account's API key (default: $HERALD_API_KEY)")
    parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    parser.set_defaults(run=_runs(command))


def add_commands(commands: Any) -> None:
    """Register the account's commands on the `herald` parser's subcommands."""
    events = commands.add_parser("events", help="the account's events").add_subparsers(
        dest="action", required=True
    )
    listing = events.add_parser("list", help="the account's events, newest first")
    listing.add_argument("--type")
    listing.add_argument("--app")
    listing.add_argument("--page", type=int)
    _with_account(listing, _events_list)
    show = events.add_parser("show", help="an event and its delivery to each handler")
    show.add_argument("event_id")
    _with_account(show, _events_show)

    deliveries = commands.add_parser("deliveries", help="a handler's delivery attempts, newest first")
    deliveries.add_argument("handler_id", type=int)
    deliveries.add_argument("--status", help="delivered, retrying, failed or skipped")
    deliveries.add_argument("--event", help="only the attempts of this event")
    deliveries.add_argument("--page", type=int)
    _with_account(deliveries, _deliveries)

    replay = commands.add_parser("replay", help="send an event again (same webhook-id)")
    replay.add_argument("event_id")
    replay.add_argument("--handler", type=int, help="only to this handler (default: every one it went to)")
    _with_account(replay, _replay)

    recover = commands.add_parser("recover", help="queue again a handler's failed deliveries")
    recover.add_argument("handler_id", type=int)
    recover.add_argument("--since", help="30m, 24h, 7d or an ISO 8601 moment (default: 24h)")
    _with_account(recover, _recover)

    tail = commands.add_parser("tail", help="print delivery attempts as they happen")
    tail.add_argument("--handler", type=int, action="append", help="only this handler (repeatable)")
    tail.add_argument("--event", help="only this event's attempts, those already made included")
    tail.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    tail.add_argument("--deadline", type=float, default=600.0, help="stop after this many seconds")
    tail.add_argument(
        "--count", type=int, help="stop after this many attempts (exit 1 if the deadline comes first)"
    )
    _with_account(tail, _tail)
