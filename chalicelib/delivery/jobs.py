"""The fan-out queue's function: runs each fan-out job until shortly before the Lambda's
time is up, then hands the rest to a new job (see `fanout.run_fan_out`)."""

from __future__ import annotations

import logging
import time
from typing import Any

from pydantic import ValidationError

from chalicelib.delivery import report
from chalicelib.delivery.fanout import FanOutJob, run_fan_out
from chalicelib.settings import get_settings
from chalicelib.storage.stores import get_stores

logger = logging.getLogger("herald.fanout")

HAND_OVER_MARGIN_SECONDS = 15
"""Time left for the chunk in progress and the hand-over when a job stops taking chunks."""


def fan_out_batch(records: list[dict[str, Any]], context: Any = None) -> dict[str, list[dict[str, str]]]:
    """Run each record's job; a failed one comes back (same message id: it resumes)."""
    budget = get_settings().fan_out_job_seconds
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if remaining_ms is not None:
        budget = min(budget, remaining_ms() / 1000 - HAND_OVER_MARGIN_SECONDS)
    deadline = time.monotonic() + max(budget, 0.0)
    failures = []
    for record in records:
        try:
            job = FanOutJob.model_validate_json(record["body"])
        except ValidationError:
            logger.error("fan-out message %s is not a job; dropping it", record.get("messageId"))
            continue
        try:
            matched = run_fan_out(get_stores(), job, record["messageId"], deadline)
        except Exception:
            logger.exception("fan-out of %s/%s failed; it will resume", job.account, job.event_id)
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        if matched is not None:
            report.fanned_out(job.account, job.event_id, matched)
    return {"batchItemFailures": failures}
