"""`make dev`: the whole of Herald on this machine, with no AWS account.

moto's server stands in for DynamoDB, SQS and SES on one local endpoint, `chalice local`
serves the API and a `LocalPoller` runs the SQS handlers that Lambda would run. The
code under test is unchanged: it finds the endpoint through boto3's standard variables
(AWS_ENDPOINT_URL...), exported here, so a service-specific one set by the caller (say
AWS_ENDPOINT_URL_DYNAMODB for AWS's DynamoDB Local) still wins for that service.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import boto3
import requests
from botocore.exceptions import ClientError
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from moto.server import ThreadedMotoServer

from herald_local.poller import LocalPoller

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".herald" / "local.env"
STAGE = "dev"
HOST = "127.0.0.1"
DUMMY_CREDENTIAL = "testing"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class StackError(RuntimeError):
    """Something the developer has to fix; reported as one line, exit code 1."""


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StackError(f"{name}={raw!r} is not a TCP port")
    return int(raw)


def port_in_use(port: int) -> bool:
    """Whether a server could not bind HOST:port (same SO_REUSEADDR as http.server)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def chalice_config() -> Config:
    """The stage's configuration, read as `chalice local` reads it."""
    try:
        return CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=STAGE)
    except RuntimeError as exc:  # chalice's own "no .chalice/config.json" and the like
        raise StackError(str(exc)) from exc


def configure_environment(aws_port: int, api_url: str, config: Config) -> dict[str, str]:
    """Point this process (and so its children) at the local stack.

    Returns the variables another shell needs to reach it, for .herald/local.env."""
    env = os.environ
    # The stack must never reach real AWS, even if the caller's shell says to ignore endpoints.
    env.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
    env["AWS_ENDPOINT_URL"] = f"http://{HOST}:{aws_port}"
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    env.setdefault("AWS_REGION", region)
    env.setdefault("AWS_DEFAULT_REGION", region)
    exported = {name: env[name] for name in sorted(env) if name.startswith("AWS_ENDPOINT_URL")}
    exported.update(AWS_REGION=env["AWS_REGION"], AWS_DEFAULT_REGION=env["AWS_DEFAULT_REGION"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if name not in env:  # the caller's own credentials are never written to disk
            env[name] = exported[name] = DUMMY_CREDENTIAL
    # `chalice local` applies the stage's variables over its environment; so does the
    # poller's process, so that both halves of the app see the same settings.
    env.update(config.environment_variables)
    # Links (pagination, email confirmation) point at this server unless the caller names
    # another root (a tunnel, say); the dev stage's config leaves it unset for that.
    env.setdefault("HERALD_PUBLIC_URL", api_url)
    env.setdefault("HERALD_ALLOW_PRIVATE_TARGETS", "1")
    # The local poller honours batchItemFailures, like an event source mapping with
    # ReportBatchItemFailures (deployed stages set it only where the template enables that).
    env.setdefault("HERALD_REPORT_BATCH_ITEM_FAILURES", "1")
    # Exchanged bearer tokens (the PaaS face) need a signing secret; one per run locally.
    env.setdefault("HERALD_TOKEN_SECRET", secrets.token_urlsafe(32))
    # chalicelib (and app.py) read queue names at import: import them only once this is final.
    from chalicelib.settings import ConfigurationError, get_settings

    try:
        settings = get_settings()
    except ConfigurationError as exc:
        raise StackError(str(exc)) from exc
    herald = {
        "HERALD_TABLE": settings.table_name,
        "HERALD_DELIVERIES_QUEUE": settings.deliveries_queue,
        "HERALD_DELIVERIES_DLQ": settings.deliveries_dlq,
        "HERALD_INGEST_QUEUE": settings.ingest_queue,
        "HERALD_INGEST_DLQ": settings.ingest_dlq,
    }
    env.update(herald)
    return exported | herald


def register_key(account: str, key: str | None) -> tuple[str, str]:
    """Register the API key; returns (key, its account).

    A key that is already there (a persistent DynamoDB Local kept it) is reused as is."""
    from chalicelib import apikeys
    from chalicelib.errors import Unauthorized
    from chalicelib.storage.dynamo import get_store

    store = get_store()
    key = key or apikeys.new_key()
    try:
        apikeys.create_key(store, account, key)
    except ValueError as exc:
        raise StackError(f"API_KEY / HERALD_ACCOUNT: {exc}") from exc
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        try:
            account = apikeys.authenticate(store, f"Bearer {key}").account
        except Unauthorized as revoked:
            raise StackError("API_KEY is revoked in this table; unset it to get a new one") from revoked
    return key, account


def write_env_file(values: dict[str, str]) -> str:
    """Write .herald/local.env (private: it holds the API key); returns its text."""
    text = "# Written by `make dev` for the running local stack: . .herald/local.env\n" + "".join(
        f"export {name}={shlex.quote(value)}\n" for name, value in values.items()
    )
    ENV_FILE.parent.mkdir(exist_ok=True)
    ENV_FILE.touch(mode=0o600)
    ENV_FILE.chmod(0o600)
    ENV_FILE.write_text(text)
    return text


def remove_env_file(text: str) -> None:
    """Remove .herald/local.env unless another stack has rewritten it since."""
    with contextlib.suppress(FileNotFoundError):
        if ENV_FILE.read_text() == text:
            ENV_FILE.unlink()


def start_chalice(port: int) -> subprocess.Popen[bytes]:
    """`chalice local` (herald_local.chalice_local) in its own session, so stopping it can
    take its whole process group."""
    command = [sys.executable, "-m", "herald_local.chalice_local", "local", "--host", HOST]
    return subprocess.Popen(
        [*command, "--port", str(port), "--stage", STAGE, "--no-autoreload"],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
    )


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_ready(url: str, key: str, chalice: subprocess.Popen[bytes], stopping: threading.Event) -> bool:
    """Wait for an authenticated 200 from the API; False if a signal came first."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer yet"
    while not stopping.is_set():
        if chalice.poll() is not None:
            raise StackError(f"chalice local exited with code {chalice.returncode} before serving")
        try:
            answer = requests.get(
                f"{url}/notification-handlers", headers={"Authorization": f"Bearer {key}"}, timeout=5
            )
        except requests.RequestException as exc:
            last = str(exc)
        else:
            if answer.status_code == 200:
                return True
            last = f"HTTP {answer.status_code}: {answer.text[:300]}"
        if time.monotonic() > deadline:
            raise StackError(f"{url} did not answer 200 within {READY_TIMEOUT:.0f}s (last: {last})")
        stopping.wait(0.2)
    return False


def start_poller(config: Config) -> LocalPoller:
    """Run app.py's SQS handlers in this process (imported now that the environment is final)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from app import app

    poller = LocalPoller(
        app,
        lambda_timeout=config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT,
        lambda_memory_size=config.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE,
    )
    poller.start()
    return poller


def run(stopping: threading.Event) -> int:
    """Start everything, wait for a signal or for chalice to die, then stop everything."""
    aws_port, api_port = _port("LOCAL_AWS_PORT", 4566), _port("PORT", 8000)
    for name, port in (("LOCAL_AWS_PORT", aws_port), ("PORT", api_port)):
        if port_in_use(port):
            raise StackError(f"port {port} on {HOST} is in use (set {name} to another port)")
    config = chalice_config()
    url = f"http://{HOST}:{api_port}"
    exported = configure_environment(aws_port, url, config)
    with contextlib.ExitStack() as cleanup:
        moto = ThreadedMotoServer(ip_address=HOST, port=aws_port, verbose=False)
        moto.start()
        cleanup.callback(moto.stop)
        print(f"AWS endpoint (moto): {os.environ['AWS_ENDPOINT_URL']}", flush=True)
        for name, value in exported.items():
            if name.startswith("AWS_ENDPOINT_URL_"):
                print(f"kept {name}={value} (it wins for that service)", flush=True)

        from chalicelib.settings import get_settings
        from herald_local.bootstrap import ensure_resources

        settings = get_settings()
        ensure_resources(boto3.session.Session(), settings)
        print(
            f"table {settings.table_name}, queues {settings.deliveries_queue} and {settings.ingest_queue}",
            flush=True,
        )
        if settings.allow_private_targets:
            print("private targets allowed (development)", flush=True)
        else:
            print("private targets refused, like production", flush=True)
        key, account = register_key(os.environ.get("HERALD_ACCOUNT", "dev"), os.environ.get("API_KEY"))
        text = write_env_file({**exported, "HERALD_API_KEY": key, "HERALD_URL": url})
        cleanup.callback(remove_env_file, text)

        cleanup.callback(start_poller(config).stop)
        chalice = start_chalice(api_port)
        cleanup.callback(stop_process_group, chalice)
        print(f"API:     {url}\nAPI key: {key} (account {account})", flush=True)
        print(f"Another shell: . {ENV_FILE.relative_to(ROOT)}", flush=True)
        if not wait_ready(url, key, chalice, stopping):
            return 0
        print(f"Herald ready on {url} (Ctrl-C stops it)", flush=True)
        while not stopping.wait(0.5):
            if chalice.poll() is not None:
                print(f"chalice local exited unexpectedly (code {chalice.returncode}); stopping", flush=True)
                return 1
        print("stopping", flush=True)
    return 0


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("herald_local").setLevel(logging.INFO)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        return run(stopping)
    except StackError as exc:
        print(f"herald: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
