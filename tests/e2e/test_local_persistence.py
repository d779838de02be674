"""`make dev` keeps its data and key across restarts, `make reset` wipes the data, settings in
the environment win over the dev stage's, and without Java the stack still runs (on moto)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from herald_local.harness import free_ports
from tests.e2e.conftest import ROOT, Stack, auth, clean_env, start_stack
from tests.receiver import Receiver


def reset(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`make reset` for this data directory (what the Makefile runs)."""
    return subprocess.run(
        [sys.executable, "-m", "herald_local.reset"],
        cwd=ROOT,
        env={**clean_env(), "LOCAL_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stop(stack: Stack) -> None:
    _, left = stack.terminate()
    assert not left, stack.output.text
    assert stack.process is not None
    assert stack.process.returncode == 0, stack.output.text


def wait_for_log(stack: Stack, key: str, handler_id: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = requests.get(
            f"{stack.url}/notification-handlers/{handler_id}/deliveries", headers=auth(key), timeout=30
        )
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, object]] = answer.json()["data"]
        if entries:
            return entries
        time.sleep(0.2)
    raise AssertionError(f"no attempt was logged:\n{stack.output.text}")


def test_a_restart_keeps_handlers_deliveries_and_the_key_and_reset_wipes_the_data(
    tmp_path: Path, receiver: Receiver
) -> None:
    data = tmp_path / "herald"
    first = start_stack(data, api_key=None)
    try:
        assert "data: fresh" in first.output.text
        key = first.exported()["HERALD_API_KEY"]
        assert (data / "api_key").read_text().strip() == key
        assert oct((data / "api_key").stat().st_mode & 0o777) == "0o600"
        created = requests.post(
            f"{first.url}/notification-handlers",
            json={"name": "hook", "type": "webhook", "webhook": receiver.url("/hook")},
            headers=auth(key),
            timeout=30,
        )
        assert created.status_code == 201, created.text
        handler_id = created.json()["data"]["id"]
        published = requests.post(
            f"{first.url}/v1/events", json={"type": "deployment", "app": "a"}, headers=auth(key), timeout=30
        )
        assert published.status_code == 202, published.text
        logged = wait_for_log(first, key, handler_id)
        refused = reset(data)
        assert refused.returncode == 1
        assert "stop it first" in refused.stderr
        stop(first)
    finally:
        first.stop()

    second = start_stack(data, api_key=None)
    try:
        assert "data: reused" in second.output.text, second.output.text
        assert second.exported()["HERALD_API_KEY"] == key
        got = requests.get(f"{second.url}/notification-handlers/{handler_id}", headers=auth(key), timeout=30)
        assert got.status_code == 200, got.text
        log = requests.get(
            f"{second.url}/notification-handlers/{handler_id}/deliveries", headers=auth(key), timeout=30
        )
        assert log.json()["data"] == logged
        another = requests.post(
            f"{second.url}/notification-handlers",
            json={"name": "next", "type": "webhook", "webhook": receiver.url("/next")},
            headers=auth(key),
            timeout=30,
        )
        assert another.json()["data"]["id"] == handler_id + 1  # the id counter was kept too
        stop(second)
    finally:
        second.stop()

    wiped = reset(data)
    assert wiped.returncode == 0, wiped.stderr
    assert "wiped" in wiped.stdout
    third = start_stack(data, api_key=None)
    try:
        assert "data: fresh" in third.output.text
        assert third.exported()["HERALD_API_KEY"] == key  # the key is kept and registered again
        listed = requests.get(f"{third.url}/notification-handlers", headers=auth(key), timeout=30)
        assert listed.status_code == 200, listed.text
        assert listed.json()["data"] == []
        stop(third)
    finally:
        third.stop()


def test_a_herald_setting_in_the_environment_wins_over_the_dev_stage(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "herald", {"HERALD_RATE_LIMIT_PER_MINUTE": "5"})
    try:
        assert "from your environment (over the dev stage's config): HERALD_RATE_LIMIT_PER_MINUTE" in (
            stack.output.text
        )
        answer = requests.get(f"{stack.url}/notification-handlers", headers=auth(), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-RateLimit-Limit"] == "5"
    finally:
        stack.stop()


def test_a_second_stack_on_the_same_data_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "herald"
    stack = start_stack(data)
    try:
        other = subprocess.run(
            [sys.executable, "-m", "herald_local.stack"],
            cwd=ROOT,
            env={
                **clean_env(),
                "LOCAL_DATA_DIR": str(data),
                **dict(
                    zip(
                        ("PORT", "LOCAL_AWS_PORT", "LOCAL_DYNAMODB_PORT"),
                        map(str, free_ports(3)),
                        strict=True,
                    )
                ),
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert other.returncode == 1
        assert "another local stack" in other.stderr
        assert "Traceback" not in other.stderr
    finally:
        stack.stop()


def test_without_java_dynamodb_falls_back_to_moto_with_a_warning(tmp_path: Path) -> None:
    no_java = {"PATH": os.path.dirname(sys.executable)}  # the virtualenv's tools, no java
    stack = start_stack(tmp_path / "herald", no_java)
    try:
        text = stack.output.text
        assert "WARNING: Java is not installed" in text
        assert "falls back to moto" in text
        assert "data: fresh (moto keeps it in memory" in text
        assert "AWS_ENDPOINT_URL_DYNAMODB" not in stack.env_file.read_text()
        assert {proc.role for proc in stack.processes()} == {"stack", "chalice-local"}
        created = requests.post(
            f"{stack.url}/notification-handlers",
            json={"name": "inbox", "type": "internal_notification"},
            headers=auth(),
            timeout=30,
        )
        assert created.status_code == 201, created.text
        stop(stack)
    finally:
        stack.stop()
