"""The `herald` command: operator tasks against whatever AWS the environment points at."""

from __future__ import annotations

import argparse
import sys

from chalicelib import apikeys
from chalicelib.storage.dynamo import get_store


def _keys_create(args: argparse.Namespace) -> int:
    try:
        key, key_id = apikeys.create_key(get_store(), args.account, args.key)
    except ValueError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 2
    if args.quiet:
        print(key)
    else:
        print(f"account: {args.account}\nkey id:  {key_id}\napi key: {key}\n(shown once; store it now)")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    if apikeys.revoke_key(get_store(), args.key):
        print("revoked")
        return 0
    print("herald: no such key", file=sys.stderr)
    return 1


def _dlq_redrive(args: argparse.Namespace) -> int:
    from chalicelib.delivery.redrive import redrive

    print(f"redriven: {redrive(get_store(), args.limit)}")
    return 0


def _vapid_generate(args: argparse.Namespace) -> int:
    from chalicelib.vapid import generate_vapid_keys

    private, public = generate_vapid_keys()
    print(f"HERALD_VAPID_PRIVATE_KEY={private}\napplicationServerKey (public): {public}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="herald", description="Herald operator commands.")
    commands = root.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="mint an API key for an account (shown once)")
    create.add_argument("--account", required=True)
    create.add_argument("--key", help="register this key instead of generating one")
    create.add_argument("--quiet", action="store_true", help="print only the key")
    create.set_defaults(run=_keys_create)
    revoke = keys.add_parser("revoke", help="revoke a key, given the key or its id")
    revoke.add_argument("key")
    revoke.set_defaults(run=_keys_revoke)
    dlq = commands.add_parser("dlq", help="the deliveries dead-letter queue").add_subparsers(
        dest="action", required=True
    )
    replay = dlq.add_parser("redrive", help="replay dead-lettered deliveries with fresh attempts")
    replay.add_argument("--limit", type=int, default=1000)
    replay.set_defaults(run=_dlq_redrive)
    vapid = commands.add_parser("vapid", help="Web Push VAPID keys").add_subparsers(
        dest="action", required=True
    )
    vapid.add_parser("generate", help="print a new VAPID key pair").set_defaults(run=_vapid_generate)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
