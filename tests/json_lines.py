"""Herald's log lines as the JSON formatter writes them, captured in a test."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.logs import ROOT, JsonFormatter


class Lines(logging.Handler):
    """Every line of Herald's loggers, formatted as on Lambda."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.text.append(self.format(record))

    def parsed(self, message: str | None = None) -> list[dict[str, Any]]:
        """Each line as JSON (every one must parse), those of `message` if given."""
        lines = [json.loads(line) for line in self.text]
        return [line for line in lines if message is None or line["message"] == message]


@contextmanager
def captured_lines() -> Iterator[Lines]:
    logger = logging.getLogger(ROOT)
    lines = Lines()
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
