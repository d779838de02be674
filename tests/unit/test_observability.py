"""Herald's log lines and metrics, on the in-memory stores: one JSON line per delivery
attempt with its fields and its EMF metrics, the dead-letter and publish lines' metrics,
no secret in any line, the level per stage, and the local stack's readable rendering."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import clients, logs
from chalicelib.delivery import report, worker
from chalicelib.delivery.fanout import Published
from chalicelib.delivery.safe_http import HttpResult
from chalicelib.metrics import NAMESPACE
from chalicelib.storage.stores import Stores
from herald_local.log_lines import ReadableFormatter
from tests.fakes.delivery import RecordingQueues, RecordingSender
from tests.json_lines import Lines, captured_lines
from tests.unit.test_worker import BAD_REQUEST, GONE, OK, UNAVAILABLE, given, make_handler, records, task

SECRET_PATH = "/T0123/B0456/s3cr3t-path-token"
ATTEMPT_FIELDS = {
    "account",
    "handler_id",
    "channel",
    "event_id",
    "event_type",
    "sqs_message_id",
    "attempt",
    "outcome",
    "http_status",
    "duration_ms",
}


@pytest.fixture
def lines() -> Iterator[Lines]:
    RecordingQueues(clients.client("sqs"))
    with captured_lines() as captured:
        yield captured


def metrics_of(line: dict[str, Any]) -> dict[str, Any]:
    """{metric name: value} of an EMF line, checked against its directive."""
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    for dimension_set in directive["Dimensions"]:
        assert all(name in line for name in dimension_set)
    return {metric["Name"]: line[metric["Name"]] for metric in directive["Metrics"]}


@pytest.mark.parametrize(
    "case",
    [(OK, "delivered", 0), (UNAVAILABLE, "retrying", 1), (BAD_REQUEST, "failed", 0)],
    ids=["delivered", "retrying", "failed"],
)
def test_an_attempt_writes_one_json_line_with_its_fields_and_metrics(
    stores: Stores, sender: RecordingSender, lines: Lines, case: tuple[HttpResult, str, int]
) -> None:
    answer, outcome, retries = case
    given(stores, make_handler())
    sender.answer = answer
    worker.deliver_batch(records(task()))
    [line] = lines.parsed("delivery attempt")
    assert set(line) >= ATTEMPT_FIELDS
    assert (line["account"], line["handler_id"], line["event_id"], line["sqs_message_id"]) == (
        "acme",
        1,
        "ev1",
        "m-0",
    )
    assert (line["channel"], line["outcome"], line["http_status"], line["attempt"]) == (
        "webhook",
        outcome,
        answer.status,
        1,
    )
    assert metrics_of(line) == {"Deliveries": 1, "AttemptLatency": line["duration_ms"], "Retries": retries}
    assert (line["Channel"], line["Outcome"]) == ("webhook", outcome)
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Channel", "Outcome"], ["Outcome"]]


def test_a_dead_lettered_delivery_counts_a_dlq_arrival(
    stores: Stores, sender: RecordingSender, lines: Lines
) -> None:
    worker.deliver_batch(records("not a delivery task"))
    [line] = lines.parsed("dead-lettered a message")
    assert metrics_of(line) == {"DlqArrivals": 1}
    assert line["Queue"] == "herald-deliveries-dlq"


def test_a_published_event_counts_itself_and_its_fan_out_a_duplicate_nothing(lines: Lines) -> None:
    report.published("acme", Published("ev1", matched=7, duplicate=False, fan_out="inline"))
    report.published("acme", Published("ev1", matched=7, duplicate=True, fan_out="inline"))
    first, again = lines.parsed("event published")
    assert metrics_of(first) == {"EventsPublished": 1, "FanoutSize": 7}
    assert "_aws" not in again


def test_a_queued_fan_out_counts_its_size_when_it_ends(lines: Lines) -> None:
    report.fanned_out("acme", "ev1", 20_000)
    [line] = lines.parsed("event fanned out")
    assert metrics_of(line) == {"FanoutSize": 20_000}
    assert (line["account"], line["event_id"]) == ("acme", "ev1")


def test_no_line_holds_a_url_path_or_a_secret(stores: Stores, sender: RecordingSender, lines: Lines) -> None:
    handlers = [
        make_handler(i).model_copy(
            update={"settings": {"webhook": f"https://hooks.example.com{SECRET_PATH}/{i}"}}
        )
        for i in (1, 2, 3, 4)
    ]
    given(stores, *handlers)
    answers = (GONE, UNAVAILABLE, BAD_REQUEST)  # the fourth cannot connect
    sender.answers = {h.settings["webhook"]: a for h, a in zip(handlers, answers, strict=False)}
    sender.answer = HttpResult(None, {}, b"", 3, "connection to https://hooks.example.com:443 refused")
    worker.deliver_batch(records(*(task(h.id) for h in handlers)))
    text = "\n".join(lines.text)
    assert len(lines.parsed("delivery attempt")) == 4
    assert "s3cr3t" not in text
    assert handlers[0].signing_secret is not None
    assert handlers[0].signing_secret not in text


def test_the_stage_sets_the_level_and_lambda_gets_json_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    logger = logging.getLogger(logs.ROOT)
    saved = (logger.level, logger.propagate, list(logger.handlers))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "herald-prod-deliver")
    monkeypatch.setenv(logs.LEVEL_VARIABLE, "warning")
    try:
        logs.configure()
        logs.configure()  # once per process: a second call changes nothing
        logging.getLogger("herald.delivery").info("not at this stage's level")
        with logs.bound(correlation_id="c-1"):
            logging.getLogger("herald.delivery").warning("shown", extra={"fields": {"handler_id": 3}})
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers[:] = saved[2]
    [line] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert (line["message"], line["level"], line["handler_id"], line["correlation_id"]) == (
        "shown",
        "WARNING",
        3,
        "c-1",
    )


def test_off_lambda_configure_leaves_logging_to_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    logger = logging.getLogger(logs.ROOT)
    before = (list(logger.handlers), logger.propagate, logger.level)
    logs.configure()
    assert (list(logger.handlers), logger.propagate, logger.level) == before


def test_an_unknown_level_falls_back_to_info(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.LEVEL_VARIABLE, "chatty")
    assert logs.level() == logging.INFO


def test_the_local_stack_prints_one_short_line_per_attempt(
    stores: Stores, sender: RecordingSender, lines: Lines
) -> None:
    given(stores, make_handler())
    sender.answer = UNAVAILABLE
    readable = Lines()
    readable.setFormatter(ReadableFormatter())
    logging.getLogger(logs.ROOT).addHandler(readable)
    try:
        worker.deliver_batch(records(task()))
    finally:
        logging.getLogger(logs.ROOT).removeHandler(readable)
    [line] = [text for text in readable.text if "attempt" in text]
    assert "\n" not in line
    assert line.endswith(
        "attempt 1  handler 1 (webhook)  event ev1 (deployment)  "
        "retrying HTTP 503  3 ms  (HTTP 503: try later)"
    )
    assert "_aws" not in "".join(readable.text)
