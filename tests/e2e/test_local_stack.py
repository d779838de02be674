"""`make dev` end to end: the real stack in a subprocess, driven over HTTP like the seeds' curl calls."""

from __future__ import annotations

import shlex
import signal
import subprocess
import time

import pytest
import requests

from tests.e2e.conftest import BIN, ENV_FILE, HOST, KEY, ROOT, Stack, auth, clean_env, listening
from tests.receiver import Receiver


def test_the_seed_curl_calls_work(local_stack: Stack) -> None:
    base = local_stack.url
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
        # HERALD_PUBLIC_URL (make dev's server) and the route, whatever the path's spelling
        assert body["links"]["self"] == f"{base}/notification-handlers?page=1"
        assert body["links"]["first"] == body["links"]["last"] == body["links"]["self"]
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


def test_a_missing_key_is_a_json_401(local_stack: Stack) -> None:
    answer = requests.get(f"{local_stack.url}/notification-handlers", timeout=30)
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


def test_local_env_lets_another_shell_mint_a_working_key(local_stack: Stack) -> None:
    assert ENV_FILE.exists()
    exported = ENV_FILE.read_text()
    assert f"export HERALD_URL={local_stack.url}\n" in exported
    assert f"export AWS_ENDPOINT_URL=http://{HOST}:{local_stack.aws_port}\n" in exported
    assert f"export HERALD_API_KEY={KEY}\n" in exported

    key = mint_key("second")
    assert key.startswith("hk_")
    answer = requests.get(f"{local_stack.url}/notification-handlers", headers=auth(key), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == []


def test_an_event_reaches_a_local_webhook_through_the_sqs_poller(
    local_stack: Stack, receiver: Receiver
) -> None:
    key = mint_key("hooks")
    hook = requests.post(
        f"{local_stack.url}/notification-handlers",
        json={"name": "hook", "type": "webhook", "webhook": receiver.url("/hook")},
        headers=auth(key),
        timeout=30,
    )
    assert hook.status_code == 201, hook.text
    published = requests.post(
        f"{local_stack.url}/v1/events",
        json={"type": "deployment", "app": "my-app"},
        headers=auth(key),
        timeout=30,
    )
    assert published.status_code == 202, published.text

    deadline = time.monotonic() + 30
    while not receiver.to("/hook") and time.monotonic() < deadline:
        time.sleep(0.1)
    delivered = receiver.to("/hook")
    assert delivered, f"no delivery reached the webhook:\n{local_stack.output.text}"
    assert delivered[0].json()["id"] == published.json()["id"]


def test_sigterm_stops_everything(local_stack: Stack) -> None:
    local_stack.process.send_signal(signal.SIGTERM)
    try:
        code = local_stack.process.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the stack ignored SIGTERM:\n{local_stack.output.text}")
    assert code == 0, local_stack.output.text
    assert not listening(local_stack.api_port), "chalice local still listens"
    assert not listening(local_stack.aws_port), "moto still listens"
    # Another stack (a concurrent test run) may have rewritten the file since; only ours must go.
    left = ENV_FILE.read_text() if ENV_FILE.exists() else ""
    assert f"HERALD_URL={local_stack.url}" not in left, "a stopped stack left its env file behind"
