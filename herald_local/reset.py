"""`make reset`: wipe the local stack's data (DynamoDB Local's database); the dev key stays."""

from __future__ import annotations

import sys

from herald_local.data import Busy, data_dir


def main() -> int:
    data = data_dir()
    try:
        had = data.wipe()
    except Busy as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 1
    state = "wiped" if had else "nothing to wipe in"
    print(f"{state} {data.shown(data.dynamodb)}: the next `make dev` starts with fresh data")
    if data.saved_key():
        print(f"kept the dev API key ({data.shown(data.key_file)}); delete that file for a new one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
