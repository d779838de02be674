"""The `herald` command: operator tasks against whatever AWS the environment points at,
and the account's commands through the API (`cli_events`).

For the local stack that is what `. .herald/local.env` exports; a command that cannot reach
its AWS says so in one line, with what to do, instead of a botocore traceback.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Callable
from urllib.parse import urlsplit

from chalicelib import apikeys, clock
from chalicelib.cli_events import add_commands
from chalicelib.settings import get_settings
from chalicelib.storage.stores import get_stores

LOCAL_STACK_HINT = "run `make dev`, then `. .herald/local.env` in this shell"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _keys_create(args: argparse.Namespace) -> int:
    try:
        key, key_id = apikeys.create_key(get_stores(), args.account, args.key)
    except ValueError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    if args.quiet:
        print(key)
    else:
        print(f"account: {args.account}\nkey id:  {key_id}\napi key: {key}\n(shown once; store it now)")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    if apikeys.revoke_key(get_stores(), args.key):
        print("revoked")
        return 0
    print("herald: no such key", file=sys.stderr)
    return 1


def _portal_link(args: argparse.Namespace) -> int:
    """A portal link made with the table directly, as `keys create` is: no API key needed."""

    from chalicelib.api.portal import portal_url

    root = (args.url or get_settings().public_url or os.environ.get("HERALD_URL") or "").rstrip("/")
    if not root:
        print(f"herald: give --url or set HERALD_URL; {LOCAL_STACK_HINT}", file=sys.stderr)
        return 2
    try:
        token, expires_at = apikeys.create_portal_session(get_stores(), args.account, clock.now())
    except ValueError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    print(portal_url(root, token))
    until = expires_at.isoformat(timespec="seconds")
    print(f"(account {args.account}; works until {until})", file=sys.stderr)
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    from chalicelib.delivery.redrive import redrive

    print(f"redriven: {redrive(get_stores(), args.limit)}")
    return 0


def _vapid_generate(args: argparse.Namespace) -> int:
    from chalicelib.vapid import generate_vapid_keys

    private, public = generate_vapid_keys()
    print(f"HERALD_VAPID_PRIVATE_KEY={private}\napplicationServerKey (public): {public}")
    return 0


def _endpoint(service: str) -> tuple[str, str] | None:
    """The endpoint boto3 will use for `service` from the environment, and its variable."""
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for name in (f"AWS_ENDPOINT_URL_{service.upper()}", "AWS_ENDPOINT_URL"):
        if os.environ.get(name):
            return os.environ[name], name
    return None


def unreachable_local_endpoint(services: tuple[str, ...]) -> str | None:
    """A one-line reason if a service's endpoint is on this machine and nothing listens there
    (checked at once, instead of after boto3's retries)."""
    for service in services:
        found = _endpoint(service)
        if found is None:
            continue
        url, name = found
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return f"{name}={url!r} is not a URL"
        if host not in LOOPBACK:
            continue
        try:
            with socket.create_connection((host, port), timeout=2):
                pass
        except OSError:
            return f"nothing answers at {url} ({name}): to start the local stack, {LOCAL_STACK_HINT}"
    return None


def explain(exc: Exception) -> str | None:
    """One line for an AWS failure the operator can fix, or None for anything else."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    from chalicelib.storage.table import Cancelled, ConditionFailed

    if isinstance(exc, ConditionFailed | Cancelled) and isinstance(exc.__cause__, ClientError):
        exc = exc.__cause__  # the table layer's name for DynamoDB's answer: explain the answer
    found = _endpoint("dynamodb")
    where = found[0] if found else "AWS"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            f"no AWS credentials: for the local stack, {LOCAL_STACK_HINT}; for a deployed stage, "
            "set AWS credentials and HERALD_TABLE"
        )
    if isinstance(exc, ConnectionError):
        return f"cannot reach {where} ({exc}): for the local stack, {LOCAL_STACK_HINT}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code == "ResourceNotFoundException":
            return (
                f"table {get_settings().table_name} does not exist at {where}: for the local stack, "
                f"{LOCAL_STACK_HINT}; for a deployed stage, set HERALD_TABLE (e.g. herald-prod)"
            )
        return f"{where} answered {code}: {message}"
    return None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="herald", description="Herald operator commands.")
    commands = root.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="mint an API key for an account (shown once)")
    create.add_argument("--account", required=True)
    create.add_argument("--key", help="register this key instead of generating one")
    create.add_argument("--quiet", action="store_true", help="print only the key")
    create.set_defaults(run=_keys_create, aws=("dynamodb",))
    revoke = keys.add_parser("revoke", help="revoke a key, given the key or its id")
    revoke.add_argument("key")
    revoke.set_defaults(run=_keys_revoke, aws=("dynamodb",))
    link = commands.add_parser("portal-link", help="a short-lived link to an account's delivery portal")
    link.add_argument("--account", required=True)
    link.add_argument("--url", help="Herald's base URL (default: $HERALD_PUBLIC_URL, else $HERALD_URL)")
    link.set_defaults(run=_portal_link, aws=("dynamodb",))
    dlq = commands.add_parser("dlq", help="the deliveries dead-letter queue").add_subparsers(
        dest="action", required=True
    )
    replay = dlq.add_parser("redrive", help="replay dead-lettered deliveries with fresh attempts")
    replay.add_argument("--limit", type=int, default=1000)
    replay.set_defaults(run=_dlq_redrive, aws=("dynamodb", "sqs"))
    vapid = commands.add_parser("vapid", help="Web Push VAPID keys").add_subparsers(
        dest="action", required=True
    )
    vapid.add_parser("generate", help="print a new VAPID key pair").set_defaults(run=_vapid_generate)
    add_commands(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    services: tuple[str, ...] = getattr(args, "aws", ())
    down = unreachable_local_endpoint(services)
    if down is not None:
        print(f"herald: {down}", file=sys.stderr)
        return 1
    try:
        return run(args)
    except Exception as exc:
        reason = explain(exc) if services else None
        if reason is None:
            raise
        print(f"herald: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
