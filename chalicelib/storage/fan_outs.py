"""A large event's fan-out progress, kept on its event item: which fan-out job works on it,
how far through the event's handlers (a `by_app` key) it has enqueued, and how many matched.

Every step is a conditional update naming the job (its SQS message id, which a redelivery
keeps), so however many copies of a job exist, one chain of jobs makes progress: a copy
that lost the event to another job stops, and a job redelivered after a crash resumes from
the progress stored, not from where its message started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.storage.deliveries import event_key
from chalicelib.storage.table import ConditionFailed, Table


@dataclass(frozen=True)
class FanOutProgress:
    """Where a fan-out stands: the last `by_app` key enqueued (None: none yet) and how many
    handlers matched so far."""

    after: str | None
    matched: int


class FanOutStore(Protocol):
    def take_fan_out(self, account: str, event_id: str, job: str, after: str | None) -> FanOutProgress | None:
        """Let `job` work on the event's fan-out: if it is the job already working on it
        (redelivered), or its message starts where the stored progress is (the hand-over
        from the job before). The progress to resume from; None if the event is fanned out
        already, is gone, or another job has moved on."""
        ...

    def advance_fan_out(
        self, account: str, event_id: str, job: str, done: FanOutProgress, now: FanOutProgress
    ) -> bool:
        """Record that `job` has enqueued up to `now.after` (None: every handler, so the
        event is fanned out), if it still holds the event at `done`; False if it does not."""
        ...


class DynamoFanOutStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def take_fan_out(self, account: str, event_id: str, job: str, after: str | None) -> FanOutProgress | None:
        values: dict[str, Any] = {":job": job, ":false": False}
        resumable = "fan_out_job = :job OR "
        if after is None:
            resumable += "attribute_not_exists(fan_out_after)"
        else:
            resumable += "fan_out_after = :after"
            values[":after"] = after
        try:
            stored = self.table.update(
                event_key(account, event_id),
                "SET fan_out_job = :job",
                condition=f"fanned_out = :false AND ({resumable})",
                values=values,
                returns="ALL_NEW",
            )
        except ConditionFailed:
            return None
        return FanOutProgress(stored.get("fan_out_after"), int(stored.get("matched", 0)))

    def advance_fan_out(
        self, account: str, event_id: str, job: str, done: FanOutProgress, now: FanOutProgress
    ) -> bool:
        values: dict[str, Any] = {":job": job, ":matched": now.matched}
        condition = "fan_out_job = :job AND "
        if done.after is None:
            condition += "attribute_not_exists(fan_out_after)"
        else:
            condition += "fan_out_after = :done"
            values[":done"] = done.after
        if now.after is None:
            expression = "SET matched = :matched, fanned_out = :true, fan_out = :queued REMOVE fan_out_after"
            values |= {":true": True, ":queued": "queued"}
        else:
            expression = "SET matched = :matched, fan_out_after = :after"
            values[":after"] = now.after
        try:
            self.table.update(event_key(account, event_id), expression, condition=condition, values=values)
        except ConditionFailed:
            return False
        return True
