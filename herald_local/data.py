"""What `make dev` keeps between runs: `.herald/` (or `$LOCAL_DATA_DIR`).

    local.env     the running stack's environment, for another shell (removed at stop)
    bin/herald    the project's CLI, put on PATH by local.env
    api_key       the dev API key, reused by every run unless API_KEY is set (private)
    dynamodb/     DynamoDB Local's database (one SQLite file); `make reset` wipes it
    stack.lock    held by the running stack, so two stacks never share the database

Standard library only: `make reset` runs it without the virtualenv.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".herald"


class Busy(RuntimeError):
    """Another stack holds this data directory."""


@dataclass(frozen=True)
class DataDir:
    path: Path

    @property
    def env_file(self) -> Path:
        return self.path / "local.env"

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def key_file(self) -> Path:
        return self.path / "api_key"

    @property
    def dynamodb(self) -> Path:
        return self.path / "dynamodb"

    @property
    def lock_file(self) -> Path:
        return self.path / "stack.lock"

    def shown(self, path: Path | None = None) -> str:
        """`path` (default: the directory) as the developer would type it from the project."""
        path = path or self.path
        with contextlib.suppress(ValueError):
            return str(path.relative_to(ROOT))
        return str(path)

    def has_dynamodb_data(self) -> bool:
        return self.dynamodb.is_dir() and any(self.dynamodb.glob("*.db"))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory for this process's life; Busy if another stack holds it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                raise Busy(
                    f"another local stack (pid {holder}) uses {self.shown()}: stop it first, "
                    "or give this one its own LOCAL_DATA_DIR"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                handle.truncate(0)
                fcntl.flock(handle, fcntl.LOCK_UN)

    def saved_key(self) -> str | None:
        try:
            return self.key_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def save_key(self, key: str) -> None:
        write_private(self.key_file, key + "\n")

    def wipe(self) -> bool:
        """Remove DynamoDB Local's database (refused while a stack runs); True if there was one.

        The dev API key stays: it is registered again in the fresh table at the next start,
        so clients that saved it keep working."""
        with self.locked():
            had = self.dynamodb.exists()
            shutil.rmtree(self.dynamodb, ignore_errors=True)
            return had


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds a credential)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text)


def data_dir() -> DataDir:
    """`$LOCAL_DATA_DIR` (relative to the current directory) or the project's .herald/."""
    raw = os.environ.get("LOCAL_DATA_DIR", "")
    return DataDir(Path(raw).resolve() if raw else DEFAULT_DIR)
