"""Scalingo's own npm client (`scalingo`, unchanged) against the real local stack.

The package is installed once into .cache/scalingo-npm (git-ignored) with npm; the test
skips, saying why, when node or npm are missing or the registry cannot be reached.
Scalingo's Go client and CLI are not exercised: they come from GitHub, which this
environment cannot reach; the functional tests send the Go client's update body instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import KEY, ROOT, Stack
from tests.receiver import Receiver, Reply
from tests.scalingo_seed import NOTIFIER_KEYS, WEBHOOK

PACKAGE = "scalingo"
VERSION = "0.14.6"
CACHE = ROOT / ".cache" / "scalingo-npm"
SCRIPT = Path(__file__).with_name("scalingo_client.js")
APP = "e2e-app"
APP_CRASHED = "59c52a9c7651ce001f62f578"
INSTALL_TIMEOUT = 300
RUN_TIMEOUT = 120


def scalingo_package() -> Path:
    """The installed package's directory, installing it first if needed (or skip)."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: Scalingo's npm client cannot run")
    package = CACHE / "node_modules" / PACKAGE
    manifest = package / "package.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("version") == VERSION:
        return package
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [
        "npm",
        "install",
        "--prefix",
        str(CACHE),
        "--no-audit",
        "--no-fund",
        "--no-package-lock",
        "--no-save",
        f"{PACKAGE}@{VERSION}",
    ]
    env = {**os.environ, "npm_config_cache": str(CACHE / "npm-cache"), "npm_config_update_notifier": "false"}
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"`npm install {PACKAGE}@{VERSION}` took more than {INSTALL_TIMEOUT}s")
    if done.returncode != 0 or not manifest.exists():
        pytest.skip(f"could not fetch {PACKAGE}@{VERSION} from npm: {done.stderr.strip()[-500:]}")
    return package


@pytest.fixture(scope="module")
def package() -> Path:
    """Installed (or the test skipped) before the stack starts."""
    return scalingo_package()


def run_client(package: Path, stack: Stack, receiver: Receiver, event_id: str = "") -> dict[str, Any]:
    env = {
        **os.environ,
        "SCALINGO_MODULE": str(package),
        "HERALD_URL": stack.url,
        "HERALD_API_KEY": KEY,
        "APP": APP,
        "EVENT_ID": event_id,
        "HOOK_URL": receiver.url("/hook"),
        "BROKEN_HOOK_URL": receiver.url("/broken"),
    }
    done = subprocess.run(
        ["node", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{done.stderr}\n--- stack output ---\n{stack.output.text[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_scalingos_npm_client_drives_notifiers_end_to_end(
    package: Path, local_stack: Stack, receiver: Receiver
) -> None:
    receiver.script("/broken", Reply(500, "no"))
    published = requests.post(
        f"{local_stack.url}/v1/apps/{APP}/events",
        json={"type": "deployment", "type_data": {"status": "success"}},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
    )
    assert published.status_code == 202, published.text
    event_id = published.json()["id"]
    out = run_client(package, local_stack, receiver, event_id)

    # Auth: Tokens.exchange (Basic, key as password) gives the JWT the other calls use.
    assert out["badKey"]["ok"] is False
    assert out["badKey"]["status"] == 401
    assert set(out["badKey"]["data"]) == {"error"}
    assert out["token"].count(".") == 2

    platforms = out["platforms"]["value"]
    assert len(platforms) == 10
    assert {p["id"]: p["name"] for p in platforms}[WEBHOOK] == "webhook"
    assert APP_CRASHED in {t["id"] for t in out["eventTypes"]["value"]}
    assert out["self"]["value"]["username"] == "dev"
    assert out["regions"]["value"] == [
        {
            "name": "local",
            "display_name": "Herald",
            "api": local_stack.url,
            "database_api": local_stack.url,
            "dashboard": local_stack.url,
            "ssh": "",
            "default": True,
        }
    ]

    # Events.for: the app's events with Scalingo's pagination; Events.find: one of them.
    listed_events = out["events"]["value"]
    assert [e["id"] for e in listed_events["events"]] == [event_id]
    assert listed_events["events"][0]["app_name"] == APP
    assert listed_events["meta"] == {
        "pagination": {
            "prev_page": None,
            "current_page": 1,
            "next_page": None,
            "total_pages": 1,
            "total_count": 1,
        }
    }
    assert out["event"]["value"] == listed_events["events"][0]

    created = out["created"]["value"]
    assert set(created) == NOTIFIER_KEYS
    assert created["id"].startswith("no-")
    assert (created["type"], created["platform_id"], created["app"]) == ("webhook", WEBHOOK, APP)
    assert (created["active"], created["send_all_events"], created["send_all_alerts"]) == (True, True, False)
    assert created["type_data"] == {"webhook_url": receiver.url("/hook")}

    assert out["invalid"]["status"] == 422
    assert out["invalid"]["data"] == {"errors": {"type_data.webhook_url": ["required for type webhook"]}}

    assert out["listed"]["value"] == [created]
    assert out["otherApp"]["value"] == []
    assert out["got"]["value"] == created

    updated = out["updated"]["value"]
    assert (updated["name"], updated["send_all_events"], updated["selected_event_ids"]) == (
        "Crashes only",
        False,
        [APP_CRASHED],
    )
    assert {
        k: v
        for k, v in updated.items()
        if k not in ("name", "send_all_events", "selected_event_ids", "updated_at")
    } == {
        k: v
        for k, v in created.items()
        if k not in ("name", "send_all_events", "selected_event_ids", "updated_at")
    }

    # Notifiers.test: the receiver got the test notification before the call returned.
    assert out["tested"]["value"] == {"notifier": updated}
    (posted,) = receiver.to("/hook")
    assert posted.json()["type"] == "test"
    assert posted.json()["app_name"] == APP
    assert out["brokenTest"]["status"] == 502
    assert out["brokenTest"]["message"].startswith("the test notification was not delivered")

    assert out["destroyed"]["ok"] is True
    assert out["gone"]["status"] == 404
    assert out["gone"]["data"] == {"resource": "notifier", "error": "not found"}
    assert out["listedAfter"]["value"] == []


def test_the_go_clients_exchange_and_zero_value_update_over_http(
    local_stack: Stack, receiver: Receiver
) -> None:
    """What Scalingo's Go client sends (it cannot be fetched here): Basic auth with an
    empty user, then an update carrying zero values for everything it does not set."""
    base = local_stack.url
    exchanged = requests.post(f"{base}/v1/tokens/exchange", auth=("", KEY), json={}, timeout=30)
    assert exchanged.status_code == 200, exchanged.text
    bearer = {"Authorization": f"Bearer {exchanged.json()['token']}"}
    path = f"{base}/v1/apps/go-app/notifiers"
    body = {
        "notifier": {
            "platform_id": WEBHOOK,
            "name": "Go",
            "active": True,
            "type": "",
            "type_data": {"webhook_url": receiver.url("/go"), "phone_number": ""},
        }
    }
    created = requests.post(path, json=body, headers=bearer, timeout=30)
    assert created.status_code == 201, created.text
    notifier = created.json()["notifier"]
    zero = {
        "notifier": {
            "id": "",
            "app_id": "",
            "type": "",
            "platform_id": "",
            "type_data": {"phone_number": ""},
            "created_at": "0001-01-01T00:00:00Z",
            "updated_at": "0001-01-01T00:00:00Z",
        }
    }
    updated = requests.patch(f"{path}/{notifier['id']}", json=zero, headers=bearer, timeout=30)
    assert updated.status_code == 200, updated.text
    same = {k: v for k, v in updated.json()["notifier"].items() if k != "updated_at"}
    assert same == {k: v for k, v in notifier.items() if k != "updated_at"}
