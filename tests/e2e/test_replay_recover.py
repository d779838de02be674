"""Following, recovering and replaying one event on the real local stack, through the API
and the `herald` commands (which call the API as the account)."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import BIN, HOST, KEY, ROOT, Stack, auth, clean_env
from tests.e2e.test_local_stack import mint_key
from tests.functional.test_readme import section
from tests.receiver import Receiver, Reply


@pytest.fixture(scope="module")
def hooks() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def herald(stack: Stack, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "herald"), *args],
        cwd=ROOT,
        env={**clean_env(), "HERALD_URL": stack.url, "HERALD_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tail_until(stack: Stack, event_id: str, count: int) -> list[str]:
    """The event's attempts, once there are `count` of them (the stack's worker is live)."""
    done = herald(
        stack, "tail", "--event", event_id, "--count", str(count), "--interval", "0.2", "--deadline", "60"
    )
    assert done.returncode == 0, (done.stdout, done.stderr, stack.output.text)
    return done.stdout.splitlines()


def call(method: str, url: str, key: str = KEY, **options: Any) -> requests.Response:
    return requests.request(method, url, headers=auth(key), timeout=30, **options)


def test_a_failed_event_is_followed_recovered_once_and_replayed_with_its_webhook_id(
    local_stack: Stack, hooks: Receiver
) -> None:
    base = local_stack.url
    hooks.script("/hook", Reply(400, "not ready"))
    created = call(
        "POST",
        f"{base}/notification-handlers",
        json={"name": "h", "type": "webhook", "webhook": hooks.url("/hook")},
    )
    assert created.status_code == 201, created.text
    handler_id = created.json()["data"]["id"]
    event_id = call("POST", f"{base}/v1/events", json={"type": "deployment", "app": "shop"}).json()["id"]

    [first] = tail_until(local_stack, event_id, 1)
    assert f"handler {handler_id}  event {event_id}  attempt 1  failed HTTP 400" in first
    shown = call("GET", f"{base}/v1/events/{event_id}").json()["data"]
    assert [(d["handler_id"], d["status"], d["http_status"]) for d in shown["deliveries"]] == [
        (handler_id, "failed", 400)
    ]

    recovered = herald(local_stack, "recover", str(handler_id), "--since", "1h")
    assert recovered.returncode == 0, recovered.stderr
    assert "requeued 1 event(s)" in recovered.stdout and event_id in recovered.stdout
    again = call("POST", f"{base}/notification-handlers/{handler_id}/recover", json={})
    assert again.json()["data"]["requeued"] == [], "a second recover queues nothing"
    second = tail_until(local_stack, event_id, 2)[-1]
    assert "attempt 1  delivered HTTP 200" in second

    replayed = herald(local_stack, "replay", event_id, "--handler", str(handler_id))
    assert replayed.returncode == 0, replayed.stderr
    assert "delivered HTTP 200" in tail_until(local_stack, event_id, 3)[-1]
    assert call("POST", f"{base}/v1/events/{event_id}/replay").json()["data"]["replayed"] == [handler_id]
    tail_until(local_stack, event_id, 4)

    sent = hooks.to("/hook")
    assert len(sent) == 4, "one failure, one recover, two replays: nothing sent twice"
    assert {r.headers["webhook-id"] for r in sent} == {f"msg_{event_id}_{handler_id}"}
    state = call("GET", f"{base}/v1/events/{event_id}").json()["data"]["deliveries"][0]
    assert (state["status"], state["replays"]) == ("delivered", 3)

    failed = herald(local_stack, "deliveries", str(handler_id), "--status", "failed")
    assert failed.returncode == 0, failed.stderr
    assert len(failed.stdout.splitlines()) == 1 and "failed HTTP 400" in failed.stdout
    listed = herald(local_stack, "events", "list", "--app", "shop")
    assert event_id in listed.stdout
    shown_cli = herald(local_stack, "events", "show", event_id)
    assert f"handler {handler_id}: delivered, 1 attempt(s), last HTTP 200" in shown_cli.stdout


def test_another_account_neither_sees_nor_replays_nor_recovers_the_accounts_events(
    local_stack: Stack, hooks: Receiver
) -> None:
    base = local_stack.url
    created = call(
        "POST",
        f"{base}/notification-handlers",
        json={"name": "h", "type": "webhook", "webhook": hooks.url("/mine")},
    )
    handler_id = created.json()["data"]["id"]
    event_id = call("POST", f"{base}/v1/events", json={"type": "deployment"}).json()["id"]
    tail_until(local_stack, event_id, 1)
    other = mint_key(local_stack, "intruder")

    assert call("GET", f"{base}/v1/events", other).json()["data"] == []
    for method, path in [
        ("GET", f"/v1/events/{event_id}"),
        ("POST", f"/v1/events/{event_id}/replay"),
        ("POST", f"/v1/events/{event_id}/deliveries/{handler_id}/replay"),
        ("POST", f"/notification-handlers/{handler_id}/recover"),
        ("GET", f"/notification-handlers/{handler_id}/deliveries"),
    ]:
        assert call(method, f"{base}{path}", other).status_code == 404, path
    assert call("POST", f"{base}/v1/dead-letters/redrive", other).json()["data"] == {"redriven": 0}
    refused = herald(local_stack, "replay", event_id, key=other)
    assert refused.returncode == 1
    assert "HTTP 404" in refused.stderr
    assert len(hooks.to("/mine")) == 1, "nothing was sent again"


def test_the_readmes_walk_through_follows_recovers_and_replays_an_event_as_written(
    local_stack: Stack,
) -> None:
    text = section("Two commands")
    text = text[text.index("### Follow one event") :]
    start = text.index("```sh\n") + len("```sh\n")
    block = text[start : text.index("```", start)]
    with socket.socket() as probe:  # the receiver's port, free on this machine
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    # an account of its own: the module's other handlers would receive its event too
    fresh = mint_key(local_stack, "walkthrough")
    sourced = f". '{local_stack.env_file}' && export HERALD_API_KEY={fresh}"
    script = block.replace(". .herald/local.env", sourced).replace("9001", str(port))
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=ROOT,
        env={**clean_env(), "PATH": "/usr/local/bin:/usr/bin:/bin"},  # `herald` comes from local.env
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    out = done.stdout
    assert "attempt 1  failed HTTP 400" in out
    assert out.count("attempt 1  delivered HTTP 204") == 3, (
        "tail --count 2 and 3 print the earlier attempts too"
    )
    assert '"requeued":["' in out
    assert '"replayed":[' in out
    assert re.search(r"handler \d+: delivered, 1 attempt\(s\), last HTTP 204", out)
    assert '"errors"' not in out
