"""moto's server in a thread of the stack: SQS and SES (and DynamoDB when Java is missing).

Two of moto's habits make a long-running server grow without end, and are put right here,
in the local stack only:
- every model object it ever creates (each SQS message, and the copy of it made at every
  receive) is appended to a per-class list for moto's dashboard, which the stack does not
  serve: about 9 KB per delivery, 75 MB an hour under the soak. Objects are no longer listed;
- each queue remembers every receipt handle it ever deleted, so that deleting twice is not
  an error: only the newest DELETED_HANDLES_KEPT are remembered now (a handle is a few
  seconds old when it is deleted twice, if ever).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

from moto.server import ThreadedMotoServer

DELETED_HANDLES_KEPT = 10_000


class RecentHandles(set[str]):
    """A set that keeps only the newest `limit` strings added through `update` or `add`."""

    def __init__(self, limit: int = DELETED_HANDLES_KEPT) -> None:
        super().__init__()
        self.limit = limit
        self._order: deque[str] = deque()

    def add(self, handle: str) -> None:
        if handle not in self:
            super().add(handle)
            self._order.append(handle)
            while len(self._order) > self.limit:
                super().discard(self._order.popleft())

    def update(self, *others: Iterable[str]) -> None:
        for other in others:
            for handle in other:
                self.add(handle)


_patched = False


def keep_moto_bounded() -> None:
    """Apply both fixes (once per process)."""
    global _patched  # noqa: PLW0603 - patches moto's classes once
    if _patched:
        return
    from moto.core.common_models import BaseModel
    from moto.sqs.models import Queue

    def untracked(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(untracked)  # type: ignore[method-assign]
    init = Queue.__init__

    def init_bounded(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.deleted_messages = RecentHandles()

    Queue.__init__ = init_bounded  # type: ignore[method-assign]
    _patched = True


class MotoServer:
    """moto's ThreadedMotoServer, quiet and bounded, with a `stop` that returns within about
    half a second (its serving loop polls for shutdown twice a second)."""

    def __init__(self, host: str, port: int) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        keep_moto_bounded()
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
