"""Herald's log lines: one JSON object per line, with the request's or the attempt's fields.

The standard library's logging with a JSON formatter, not Powertools' Logger: what Herald
needs from it (JSON lines, a correlation id bound per request, a level per stage) is this
module, so the Lambda zip and its cold start gain no package. CloudWatch Logs Insights
reads the fields of each line (`fields handler_id, outcome | filter outcome = "failed"`).

Every line carries the fields bound for the current request (`bound`) and those passed
with the record as `extra={"fields": {...}}`. Nothing here filters secrets: callers log
ids, names, outcomes and statuses, never URLs, settings or keys.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

ROOT = "herald"
"""Every Herald logger is a child of this one (`herald.delivery`, `herald.api`, ...)."""
LEVEL_VARIABLE = "HERALD_LOG_LEVEL"

_bound: ContextVar[dict[str, Any]] = ContextVar("herald_log_fields", default={})  # noqa: B039 - never mutated
_HANDLER_NAME = "herald-json"


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged in this context (a request, in its thread)."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


def bind(**fields: Any) -> None:
    """Add `fields` to the lines still to come in the current `bound` context (e.g. the
    account, once the request is authenticated)."""
    _bound.set({**_bound.get(), **fields})


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """A record as the JSON object its line holds."""
    line: dict[str, Any] = {
        "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        **_bound.get(),
        **getattr(record, "fields", {}),
    }
    if record.exc_info:
        line["exception"] = logging.Formatter().formatException(record.exc_info)
    return line


class JsonFormatter(logging.Formatter):
    """One compact JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(fields_of(record), default=str, separators=(",", ":"))


def level() -> int:
    """The stage's level (`HERALD_LOG_LEVEL`, INFO when unset or unknown)."""
    named = logging.getLevelName(os.environ.get(LEVEL_VARIABLE, "INFO").strip().upper())
    return named if isinstance(named, int) else logging.INFO


def configure(formatter: logging.Formatter | None = None, *, force: bool = False) -> None:
    """Send Herald's lines to stdout at the stage's level, once per process.

    On Lambda (or with `force`, as the local stack does with its readable formatter) only:
    elsewhere (tests, tools) Herald's loggers propagate to whatever the process set up.
    Lambda's runtime logs WARNING and up of the root logger; Herald's lines skip it, so
    info lines are visible and none is printed twice. Call it before `Chalice(app_name=
    "herald")`: `app.log` is this same logger, and Chalice leaves one that already writes
    to stdout as it is (otherwise it adds its own text handler at ERROR)."""
    if not force and "AWS_LAMBDA_FUNCTION_NAME" not in os.environ:
        return
    logger = logging.getLogger(ROOT)
    logger.setLevel(level())
    logger.propagate = False
    for existing in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(existing)
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter or JsonFormatter())
    logger.addHandler(handler)
