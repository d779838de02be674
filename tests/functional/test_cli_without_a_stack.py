"""The `herald` CLI with no reachable AWS says in one line what to do, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import cli
from herald_local.dynamodb_local import free_port
from herald_local.harness import clean_env

ROOT = Path(__file__).resolve().parents[2]


def herald(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chalicelib.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_stopped_local_stack_is_named_with_what_to_do(tmp_path: Path) -> None:
    """What a shell that sourced local.env sees once the stack has stopped."""
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        **clean_env(),
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": dead,
        "AWS_ENDPOINT_URL_DYNAMODB": dead,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "HERALD_TABLE": "herald-dev",
    }
    line = one_line(herald(env, "keys", "create", "--account", "other"))
    assert line.startswith(f"herald: nothing answers at {dead} (AWS_ENDPOINT_URL_DYNAMODB)")
    assert "make dev" in line
    assert ". .herald/local.env" in line


def test_no_credentials_at_all_is_named_with_what_to_do(tmp_path: Path) -> None:
    """A fresh shell that never sourced local.env (and no AWS profile)."""
    env = {**clean_env(), "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"}
    line = one_line(herald(env, "keys", "revoke", "hk_nothing"))
    assert line.startswith("herald: no AWS credentials")
    assert "make dev" in line


def test_a_missing_table_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(*_: Any) -> int:
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "PutItem")

    monkeypatch.setattr(cli, "_keys_create", missing)
    monkeypatch.setenv("HERALD_TABLE", "herald-nowhere")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb.example.com")
    assert cli.main(["keys", "create", "--account", "a"]) == 1
    line = capsys.readouterr().err.strip()
    assert line.startswith("herald: table herald-nowhere does not exist at http://dynamodb.example.com")
    assert "\n" not in line


def test_other_failures_are_not_disguised() -> None:
    assert cli.explain(ValueError("a bug")) is None
