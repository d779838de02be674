"""moto's server in a thread of the stack: SQS and SES (and DynamoDB when Java is missing).

Three of moto's habits make a long-running server grow or slow down without end, and are
put right here, in the local stack only:
- every model object it ever creates (each SQS message, and the copy of it made at every
  receive) is appended to a per-class list for moto's dashboard, which the stack does not
  serve: about 9 KB per delivery, 75 MB an hour under the soak. Objects are no longer listed;
- each queue remembers every receipt handle it ever deleted, so that deleting twice is not
  an error: only the newest DELETED_HANDLES_KEPT are remembered now (a handle is a few
  seconds old when it is deleted twice, if ever);
- its SQS walks every message of the queue, reading the clock through `datetime` twice per
  message, several times per call: each sent message recounts the queue's approximate
  numbers four times, each received one three times more (to read the retention period),
  each deleted handle is searched twice. Deliveries waiting for a retry stay in the queue,
  so after an hour against a failing receiver (about 15,000 waiting) one batch of ten
  took seconds and deliveries fell from ~500 to ~70 a minute. The walks now read the clock
  once per call, the retention period is read directly, a send no longer counts the queue
  (it reads the queue's attributes only for ContentBasedDeduplication) and a delete looks
  from the newest message back; every answer is the same.
"""

from __future__ import annotations

import logging
import threading
import time
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


_sending = threading.local()
"""`active` while this thread runs a SendMessage, which needs no message counts."""


def _now_ms() -> float:
    return time.time() * 1000.0


def _ready(queue: Any) -> list[Any]:
    """The queue's messages that a receive may return: visible and no longer delayed."""
    now = _now_ms()
    return [m for m in queue._messages if m.visible_at < now and m.delayed_until <= now]


def _ready_count(queue: Any) -> int:
    if getattr(_sending, "active", False):
        return 0
    return len(_ready(queue))


def _delayed_count(queue: Any) -> int:
    if getattr(_sending, "active", False):
        return 0
    now = _now_ms()
    return sum(1 for m in queue._messages if m.delayed_until > now)


def _in_flight_count(queue: Any) -> int:
    if getattr(_sending, "active", False):
        return 0
    now = _now_ms()
    return sum(1 for m in queue._messages if m.visible_at >= now)


def _delete_message(queue: Any, receipt_handle: str) -> None:
    """moto's `Queue.delete_message` in one pass: deleting twice is fine, a handle no
    message ever had is `ReceiptHandleIsInvalid`."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    if receipt_handle in queue.deleted_messages:
        return
    for index in range(len(queue._messages) - 1, -1, -1):
        message = queue._messages[index]
        if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles:
            queue._messages = queue._messages[:index] + queue._messages[index + 1 :]
            queue.pending_messages.discard(message)
            queue.deleted_messages.update(message.all_receipt_handles)
            return
    raise ReceiptHandleIsInvalid()


def _within_retention(backend: Any, queue_name: str, message: Any) -> bool:
    retention_seconds = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention_seconds + message.sent_timestamp / 1000 > time.time())


def _counting_nothing(send: Any) -> Any:
    def send_message(backend: Any, *args: Any, **kwargs: Any) -> Any:
        _sending.active = True
        try:
            return send(backend, *args, **kwargs)
        finally:
            _sending.active = False

    return send_message


_patched = False


def keep_moto_bounded() -> None:
    """Apply the three fixes (once per process)."""
    global _patched  # noqa: PLW0603 - patches moto's classes once
    if _patched:
        return
    from moto.core.common_models import BaseModel
    from moto.sqs.models import Queue, SQSBackend

    def untracked(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(untracked)  # type: ignore[method-assign]
    init = Queue.__init__

    def init_bounded(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.deleted_messages = RecentHandles()

    Queue.__init__ = init_bounded  # type: ignore[method-assign]
    Queue.messages = property(_ready)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages = property(_ready_count)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_delayed = property(_delayed_count)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_not_visible = property(_in_flight_count)  # type: ignore[assignment,method-assign]
    Queue.delete_message = _delete_message  # type: ignore[assignment,method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = _counting_nothing(SQSBackend.send_message)  # type: ignore[method-assign]
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
