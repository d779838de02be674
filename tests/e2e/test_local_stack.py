"""`make dev` end to end: the real stack in a subprocess, driven over HTTP like the seeds' curl calls."""

from __future__ import annotations

import os
import shlex
import signal
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
import requests

from herald_local.dynamodb_local import free_port
from tests.receiver import Receiver

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
def stack() -> Iterator[Stack]:
    saved = ENV_FILE.read_bytes() if ENV_FILE.exists() else None
    aws_port = free_port()
    api_port = free_port()
    while api_port == aws_port:
        api_port = free_port()
    env = {**clean_env(), "PORT": str(api_port), "LOCAL_AWS_PORT": str(aws_port), "API_KEY": KEY}
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


def test_the_seed_curl_calls_work(stack: Stack) -> None:
    base = stack.url
    created = requests.post(
        f"{base}/notification-handlers",
        files={"name": (None, "Example"), "type": (None, "email"), "email": (None, "hello@example.com")},
        headers=auth(),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert created.json() == {"data": {"id": 1}}

    for path in ("/notification-handlers", "/notification-handlers/"):
        listed = requests.get(f"{base}{path}", headers=auth(), timeout=30)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert [h["id"] for h in body["data"]] == [1]
        assert body["meta"] == {"page": 1, "results_per_page": 25, "total": 1, "total_pages": 1}
        assert body["links"]["self"] == f"{base}{path}?page=1"
        assert body["links"]["first"] == body["links"]["last"] == f"{base}{path}?page=1"
        assert body["links"]["next"] is None
        assert body["links"]["prev"] is None

    got = requests.get(f"{base}/notification-handlers/1", headers=auth(), timeout=30)
    assert got.status_code == 200, got.text
    data = got.json()["data"]
    assert (data["id"], data["name"], data["type"]) == (1, "Example", "email")
    assert data["settings"] == {"email": "hello@example.com"}

    updated = requests.post(
        f"{base}/notification-handlers/1",
        files={"name": (None, "Example new name"), "is_enabled": (None, "1")},
        headers=auth(),
        timeout=30,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json() == {"data": {"id": 1}}
    data = requests.get(f"{base}/notification-handlers/1", headers=auth(), timeout=30).json()["data"]
    assert data["name"] == "Example new name"
    assert data["is_enabled"] is True

    deleted = requests.delete(f"{base}/notification-handlers/1", headers=auth(), timeout=30)
    assert deleted.status_code == 204, deleted.text
    gone = requests.get(f"{base}/notification-handlers/1", headers=auth(), timeout=30)
    assert gone.status_code == 404, gone.text


def test_a_missing_key_is_a_json_401(stack: Stack) -> None:
    answer = requests.get(f"{stack.url}/notification-handlers", timeout=30)
    assert answer.status_code == 401
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["errors"][0]["status"] == 401


def mint_key(account: str) -> str:
    """`herald keys create` from a fresh shell that sourced .herald/local.env."""
    herald = shlex.quote(str(BIN / "herald"))
    minted = subprocess.run(
        ["bash", "-c", f". .herald/local.env && {herald} keys create --account {account} --quiet"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def test_local_env_lets_another_shell_mint_a_working_key(stack: Stack) -> None:
    assert ENV_FILE.exists()
    exported = ENV_FILE.read_text()
    assert f"export HERALD_URL={stack.url}\n" in exported
    assert f"export AWS_ENDPOINT_URL=http://{HOST}:{stack.aws_port}\n" in exported
    assert f"export HERALD_API_KEY={KEY}\n" in exported

    key = mint_key("second")
    assert key.startswith("hk_")
    answer = requests.get(f"{stack.url}/notification-handlers", headers=auth(key), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == []


def test_an_event_reaches_a_local_webhook_through_the_sqs_poller(stack: Stack, receiver: Receiver) -> None:
    key = mint_key("hooks")
    hook = requests.post(
        f"{stack.url}/notification-handlers",
        json={"name": "hook", "type": "webhook", "webhook": receiver.url("/hook")},
        headers=auth(key),
        timeout=30,
    )
    assert hook.status_code == 201, hook.text
    published = requests.post(
        f"{stack.url}/v1/events", json={"type": "deployment", "app": "my-app"}, headers=auth(key), timeout=30
    )
    assert published.status_code == 202, published.text

    deadline = time.monotonic() + 30
    while not receiver.to("/hook") and time.monotonic() < deadline:
        time.sleep(0.1)
    delivered = receiver.to("/hook")
    assert delivered, f"no delivery reached the webhook:\n{stack.output.text}"
    assert delivered[0].json()["id"] == published.json()["id"]


def test_sigterm_stops_everything(stack: Stack) -> None:
    stack.process.send_signal(signal.SIGTERM)
    try:
        code = stack.process.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stack ignored SIGTERM:\n{stack.output.text}")
    assert code == 0, stack.output.text
    assert not listening(stack.api_port), "chalice local still listens"
    assert not listening(stack.aws_port), "moto still listens"
    # Another stack (a concurrent test run) may have rewritten the file since; only ours must go.
    left = ENV_FILE.read_text() if ENV_FILE.exists() else ""
    assert f"HERALD_URL={stack.url}" not in left, "a stopped stack left its env file behind"
