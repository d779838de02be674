"""What the benchmark parts share: a scoped environment and the local AWS they run on."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block, then restore what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def local_aws() -> Iterator[dict[str, str]]:
    """DynamoDB Local for DynamoDB (realistic latency) and moto's server for SQS and SES, as
    the local stack runs it (its SQS no longer walks the whole queue on every send: plain moto
    enqueued a 20,000-handler fan-out at 19 deliveries a second, slowing as the queue grew);
    yields the environment pointing Herald at them (already applied)."""
    from chalicelib import clients
    from herald_local.dynamodb_local import DynamoDBLocal, free_port
    from herald_local.moto_server import MotoServer

    port = free_port()
    moto = MotoServer("127.0.0.1", port)
    moto.start()
    try:
        with DynamoDBLocal() as ddb:
            env = {
                **AWS_ENV,
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                "AWS_ENDPOINT_URL_DYNAMODB": ddb.endpoint,
            }
            with environment(env):
                clients.reset()
                try:
                    yield env
                finally:
                    clients.reset()
    finally:
        moto.stop()


def _serve_slowly(delay: float, count: Any, ready: Any) -> None:
    """The receiver process: answer every POST with 200 after `delay` seconds."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            with count.get_lock():
                count.value += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.send(server.server_address[1])
    server.serve_forever()


class SlowReceiver:
    """A webhook endpoint that answers 200 after `delay` seconds, counting requests.

    It runs in a process of its own, as a real receiver would: parsing requests in the
    benchmark's process would take interpreter time from the code being measured."""

    def __init__(self, delay: float) -> None:
        import multiprocessing

        self.delay_ms = round(delay * 1000)
        context = multiprocessing.get_context("spawn")
        self._count = context.Value("i", 0)
        ready, child_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_serve_slowly, args=(delay, self._count, child_end), daemon=True
        )
        self._process.start()
        self.url = f"http://127.0.0.1:{ready.recv()}/hook"

    @property
    def count(self) -> int:
        return int(self._count.value)

    def close(self) -> None:
        self._process.terminate()
        self._process.join()
