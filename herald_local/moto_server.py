"""moto's server in a thread of the stack: SQS and SES (and DynamoDB when Java is missing)."""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer


class MotoServer:
    """moto's ThreadedMotoServer, quiet, with a `stop` that returns within about half a second
    (its serving loop polls for shutdown twice a second)."""

    def __init__(self, host: str, port: int) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self.endpoint = f"http://{host}:{port}"
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._started = False

    def start(self) -> None:
        self._server.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False
