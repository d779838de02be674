"""The real local stack (`python -m herald_local.stack`) in a subprocess, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from herald_local.dynamodb_local import free_port

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / ".herald" / "local.env"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
KEY = "hk_e2e-known-key-0123456789abcdef"
READY_TIMEOUT = 90.0

pytestmark = pytest.mark.skipif(
    not (BIN / "chalice").exists(), reason=f"no chalice executable in {BIN}: `make install` first"
)


def clean_env() -> dict[str, str]:
    """This environment without AWS or Herald settings: what a fresh shell would have."""
    dropped = ("AWS_", "HERALD_")
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(dropped) and name not in ("API_KEY", "PORT", "LOCAL_AWS_PORT")
    }


@dataclass
class Output:
    """Everything the stack prints, read in the background so its pipe never fills."""

    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            if "ready" in line:
                self.ready.set()

    @property
    def text(self) -> str:
        return "".join(self.lines)


@dataclass
class Stack:
    process: subprocess.Popen[str]
    output: Output
    aws_port: int
    api_port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.api_port}"


def listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def local_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """One stack per test module; a module's STACK_ENV adds to its environment."""
    saved = ENV_FILE.read_bytes() if ENV_FILE.exists() else None
    aws_port = free_port()
    api_port = free_port()
    while api_port == aws_port:
        api_port = free_port()
    env = {
        **clean_env(),
        "PORT": str(api_port),
        "LOCAL_AWS_PORT": str(aws_port),
        "API_KEY": KEY,
        **getattr(request.module, "STACK_ENV", {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "herald_local.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output()
    assert process.stdout is not None
    pump = threading.Thread(target=output.pump, args=(process.stdout,), daemon=True)
    pump.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not output.ready.wait(0.2) and process.poll() is None and time.monotonic() < deadline:
            pass
        if not output.ready.is_set():
            pytest.fail(f"the stack never printed a ready line (exit code {process.poll()}):\n{output.text}")
        yield Stack(process, output, aws_port, api_port)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        pump.join(5)
        if ENV_FILE.exists() and f"HERALD_URL=http://{HOST}:{api_port}\n" in ENV_FILE.read_text():
            ENV_FILE.unlink()  # left by our stack if it died; another run's file is not ours to touch
        if saved is not None and not ENV_FILE.exists():  # a developer's `make dev` was running
            ENV_FILE.touch(mode=0o600)
            ENV_FILE.write_bytes(saved)


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
