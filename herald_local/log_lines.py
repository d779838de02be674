"""Herald's JSON log lines, printed for a person: one short line per delivery attempt and per
request, the other lines as `level logger: message key=value ...`. The fields are the ones
the JSON lines carry (`chalicelib.logs.fields_of`); the EMF metrics member is left out."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.logs import fields_of

_SHOWN_ELSEWHERE = {"timestamp", "level", "logger", "message", "exception", "_aws"}


def _attempt(line: dict[str, Any]) -> str:
    status = f" HTTP {line['http_status']}" if line.get("http_status") is not None else ""
    error = f"  ({line['error']})" if line.get("error") and line["outcome"] != "delivered" else ""
    return (
        f"attempt {line['attempt']}  handler {line['handler_id']} ({line['channel']})  "
        f"event {line['event_id']} ({line['event_type']})  {line['outcome']}{status}  "
        f"{line['duration_ms']} ms{error}"
    )


def _request(line: dict[str, Any]) -> str:
    took = f"{line['status']}  {line['duration_ms']} ms"
    return f"{line['method']} {line['route']}  {took}  [{line['correlation_id']}]"


def _other(line: dict[str, Any]) -> str:
    extra = " ".join(f"{k}={v}" for k, v in line.items() if k not in _SHOWN_ELSEWHERE and v is not None)
    return f"{line['level']} {line['logger']}: {line['message']}" + (f"  {extra}" if extra else "")


class ReadableFormatter(logging.Formatter):
    """`12:00:01 attempt 1  handler 3 (webhook)  event 65f0... (deployment)  delivered HTTP 204  41 ms`"""

    def format(self, record: logging.LogRecord) -> str:
        line = fields_of(record)
        if line["message"] == "delivery attempt" and "outcome" in line:
            text = _attempt(line)
        elif line["message"] == "request" and "route" in line:
            text = _request(line)
        else:
            text = _other(line)
        text = f"{line['timestamp'][11:19]} {text}"
        if "exception" in line:
            text += "\n" + line["exception"]
        return text
