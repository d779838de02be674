"""One event on the real local stack reaches a handler of every type (issue: channels)."""

from __future__ import annotations

import time
from typing import Any

import boto3
import requests

from tests.e2e.conftest import Stack, auth
from tests.e2e.destinations import loopback_stack_env, settings_of_every_type
from tests.functional.test_push import Browser
from tests.receiver import Receiver, Reply

RECEIVER = Receiver()  # started at import: the stack's environment needs its URL
STACK_ENV = loopback_stack_env(RECEIVER)
RECEIVER.script("/x/2/tweets", Reply(201, {"data": {"id": "1", "text": "ok"}}))
RECEIVER.script("/telegram/bot123:secret/sendMessage", Reply(200, {"ok": True, "result": {}}))
RECEIVER.script("/teams", Reply(202))
RECEIVER.script("/discord", Reply(204))


def wait_for(predicate: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_one_event_reaches_a_handler_of_every_type(local_stack: Stack) -> None:
    base = local_stack.url
    browser = Browser.new()
    subscribed = requests.post(
        f"{base}/push-subscribers",
        json=browser.subscription(RECEIVER.url("/push")),
        headers=auth(),
        timeout=30,
    )
    assert subscribed.status_code == 201, subscribed.text
    handlers = settings_of_every_type(RECEIVER, subscribed.json()["data"]["id"])
    for kind, settings in handlers.items():
        created = requests.post(
            f"{base}/notification-handlers",
            json={"name": kind, "type": kind, **settings},
            headers=auth(),
            timeout=30,
        )
        assert created.status_code == 201, (kind, created.text)
    event = {
        "type": "deployment",
        "app": "my-app",
        "user": {"username": "johndoe", "email": "john@doe.com", "id": "51e6bc626edfe40bbb000001"},
        "type_data": {
            "deployment_id": "5343eccd",
            "pusher": "johndoe",
            "git_ref": "0123abc",
            "status": "success",
            "duration": 40,
        },
    }
    published = requests.post(f"{base}/v1/events", json=event, headers=auth(), timeout=30)
    assert published.status_code == 202, published.text
    assert published.json()["matched"] == len(handlers)

    paths = [
        "/webhook",
        "/slack",
        "/discord",
        "/teams",
        "/chat",
        "/telegram/bot123:secret/sendMessage",
        "/x/2/tweets",
        "/push",
    ]
    arrived = wait_for(lambda: all(RECEIVER.to(p) for p in paths))
    assert arrived, (
        {p: len(RECEIVER.to(p)) for p in paths},
        [line for line in local_stack.output.lines if "rror" in line or "Traceback" in line][-20:],
    )
    assert "my-app" in RECEIVER.to("/slack")[0].body.decode()
    assert browser.decrypt(RECEIVER.to("/push")[0].body)["title"].startswith("Deployment of my-app")

    def in_the_inbox() -> bool:  # delivered by the worker like the rest, maybe in a later batch
        inbox = requests.get(f"{base}/notifications", headers=auth(), timeout=30).json()
        return any("my-app" in n["title"] for n in inbox["data"])

    assert wait_for(in_the_inbox)
    ses = boto3.client(
        "ses",
        endpoint_url=f"http://127.0.0.1:{local_stack.aws_port}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert wait_for(lambda: ses.get_send_quota()["SentLast24Hours"] >= 1)
    for kind in handlers:
        listed = requests.get(f"{base}/notification-handlers", headers=auth(), timeout=30).json()["data"]
        handler = next(h for h in listed if h["type"] == kind)
        assert wait_for(lambda h=handler: h["last_datetime"] is not None or _refreshed(base, h["id"])), kind


def _refreshed(base: str, handler_id: int) -> bool:
    data = requests.get(f"{base}/notification-handlers/{handler_id}", headers=auth(), timeout=30).json()[
        "data"
    ]
    return data["last_datetime"] is not None
