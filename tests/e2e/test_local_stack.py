"""`make dev` end to end: the real stack in a subprocess, driven over HTTP like the seeds' curl calls."""

from __future__ import annotations

import json
import shlex
import subprocess
import time

import requests

from tests.e2e.conftest import HOST, KEY, ROOT, Stack, auth, clean_env, listening
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


def fresh_shell(stack: Stack, command: str) -> subprocess.CompletedProcess[str]:
    """`command` in a new shell that sourced the stack's local.env, with only the system's
    tools on PATH: the project's `herald` must come from local.env."""
    env = {**clean_env(), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    return subprocess.run(
        ["bash", "-c", f". {shlex.quote(str(stack.env_file))} && {command}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def mint_key(stack: Stack, account: str) -> str:
    """`herald keys create` as the README says, from a fresh shell."""
    minted = fresh_shell(stack, f"herald keys create --account {account} --quiet")
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def test_local_env_lets_another_shell_mint_a_working_key(local_stack: Stack) -> None:
    exported = local_stack.env_file.read_text()
    assert f"export HERALD_URL={local_stack.url}\n" in exported
    assert f"export AWS_ENDPOINT_URL=http://{HOST}:{local_stack.aws_port}\n" in exported
    assert f"export AWS_ENDPOINT_URL_DYNAMODB=http://{HOST}:{local_stack.dynamodb_port}\n" in exported
    assert f"export HERALD_API_KEY={KEY}\n" in exported

    key = mint_key(local_stack, "second")
    assert key.startswith("hk_")
    answer = requests.get(f"{local_stack.url}/notification-handlers", headers=auth(key), timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == []


def test_sourcing_local_env_twice_puts_the_cli_on_path_once(local_stack: Stack) -> None:
    env_file = shlex.quote(str(local_stack.env_file))
    shell = fresh_shell(local_stack, f'. {env_file} && command -v herald && echo "$PATH"')
    assert shell.returncode == 0, shell.stderr
    where, path = shell.stdout.splitlines()
    assert where == str(local_stack.data_dir / "bin" / "herald")
    assert path.split(":").count(str(local_stack.data_dir / "bin")) == 1


def test_the_dev_stage_allows_a_generous_rate(local_stack: Stack) -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    limit = config["stages"]["dev"]["environment_variables"]["HERALD_RATE_LIMIT_PER_MINUTE"]
    assert int(limit) >= 600
    answer = requests.get(f"{local_stack.url}/notification-handlers", headers=auth(), timeout=30)
    assert answer.headers["X-RateLimit-Limit"] == limit


def test_an_event_reaches_a_local_webhook_through_the_sqs_poller(
    local_stack: Stack, receiver: Receiver
) -> None:
    key = mint_key(local_stack, "hooks")
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
    roles = {proc.role for proc in local_stack.processes()}
    assert roles == {"stack", "chalice-local", "dynamodb-local"}, local_stack.processes()
    _, left = local_stack.terminate()
    assert not left, f"still running after SIGTERM: {left}\n{local_stack.output.text}"
    assert local_stack.process is not None
    assert local_stack.process.returncode == 0, local_stack.output.text
    for port in (local_stack.api_port, local_stack.aws_port, local_stack.dynamodb_port):
        assert not listening(port), f"port {port} still listens"
    assert not local_stack.env_file.exists(), "a stopped stack left its env file behind"
