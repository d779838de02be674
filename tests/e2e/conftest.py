"""The real local stack (`python -m herald_local.stack`) in a subprocess, for end-to-end tests.

Each stack gets free loopback ports and a data directory of its own (LOCAL_DATA_DIR), so
tests never touch a developer's `.herald/` or a running `make dev`.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from herald_local.harness import HOST, StackFailed, StackProcess, clean_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEY = "hk_e2e-known-key-0123456789abcdef"

__all__ = ["BIN", "HOST", "KEY", "ROOT", "Stack", "auth", "clean_env", "listening", "start_stack"]

pytestmark = pytest.mark.skipif(
    not (BIN / "chalice").exists(), reason=f"no chalice executable in {BIN}: `make install` first"
)

Stack = StackProcess


def listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


def start_stack(data_dir: Path, env: dict[str, str] | None = None, api_key: str | None = KEY) -> Stack:
    """A started stack, or the test fails with the stack's output."""
    try:
        return StackProcess(data_dir, env, api_key=api_key).start()
    except StackFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def local_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack per test module; a module's STACK_ENV adds to its environment."""
    stack = start_stack(tmp_path_factory.mktemp("herald"), dict(getattr(request.module, "STACK_ENV", {})))
    try:
        yield stack
    finally:
        stack.stop()


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
