"""The ingest queue: producers inside AWS publish events by SQS instead of HTTP.

A message is an event body plus its `account`. Without a client id the SQS message id
becomes the event id, so a redelivered message is still one event.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib import clients, safe_json
from chalicelib.apikeys import check_account_name
from chalicelib.delivery import report
from chalicelib.delivery.fanout import publish
from chalicelib.errors import HeraldError
from chalicelib.settings import get_settings
from chalicelib.storage.stores import get_stores

logger = logging.getLogger("herald.ingest")


class BadMessage(ValueError):
    """The message can never be ingested: it goes to the ingest DLQ with the reason."""


def ingest_batch(records: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    stores = get_stores()
    failures = []
    for record in records:
        try:
            account, body = _parse(record)
            report.published(account, publish(stores, account, body))
        except BadMessage as exc:
            _dead_letter(record["body"], str(exc))
        except HeraldError as exc:
            if exc.status < 500:
                _dead_letter(record["body"], exc.detail)
            else:
                failures.append({"itemIdentifier": record["messageId"]})
        except Exception:
            logger.exception("ingest of message %s failed; it will be retried", record.get("messageId"))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def _parse(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    body = safe_json.loads(record["body"])
    if not isinstance(body, dict) or not isinstance(body.get("account"), str):
        raise BadMessage("the message must be a JSON object with an 'account' string")
    account = body.pop("account")
    try:
        check_account_name(account)
    except ValueError as exc:
        raise BadMessage(str(exc)) from None
    body.setdefault("id", record["messageId"])
    return account, body


def _dead_letter(body: str, reason: str) -> None:
    logger.error("ingest message refused: %s", reason)
    clients.dead_letter(get_settings().ingest_dlq, body, reason)
