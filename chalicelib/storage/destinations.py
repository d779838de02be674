"""Destinations' send rates: each destination's next free send slot, shared by every Lambda
container, so a burst to one Slack webhook or Telegram chat goes out at the platform's
rate instead of collecting 429s.

A generic cell rate algorithm (GCRA) that reserves: each delivery takes the next slot
(one conditional UpdateItem: `next_ms = next_ms + interval`) and waits until it; the slot
may lie up to `burst - 1` intervals in the past, which is the burst allowed after a quiet
spell. A 429's Retry-After moves the next slot past it for every sender.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib.storage import keys
from chalicelib.storage.table import ConditionFailed, Key, Table

EXPIRY_SECONDS = 24 * 3600
"""A destination's slot is forgotten (TTL) a day after it passed: by then it is idle."""
_TRIES = 4


class DestinationStore(Protocol):
    def reserve_slot(self, destination: str, *, interval_ms: int, burst: int, now_ms: int) -> int:
        """Take the destination's next send slot (epoch ms; at most `now_ms` if the send
        may go now), `interval_ms` apart from the next one."""
        ...

    def hold(self, destination: str, until_ms: int) -> None:
        """Make the destination's next slot no earlier than `until_ms` (a 429's Retry-After)."""
        ...


def _key(destination: str) -> Key:
    return keys.destination_pk(destination), keys.destination_sk()


class DynamoDestinationStore:
    def __init__(self, table: Table) -> None:
        self.table = table

    def reserve_slot(self, destination: str, *, interval_ms: int, burst: int, now_ms: int) -> int:
        """While the destination is busy, one UpdateItem; after a quiet spell longer than
        the burst, a second one restarts its slots at the burst's start."""
        floor = now_ms - (burst - 1) * interval_ms
        for _ in range(_TRIES):
            try:
                old = self.table.update(
                    _key(destination),
                    "SET next_ms = next_ms + :interval, expires_at = :exp",
                    condition="next_ms >= :floor",
                    values={
                        ":interval": interval_ms,
                        ":floor": floor,
                        ":exp": now_ms // 1000 + EXPIRY_SECONDS,
                    },
                    returns="UPDATED_OLD",
                )
                return int(old["next_ms"])
            except ConditionFailed:
                pass
            try:
                self.table.update(
                    _key(destination),
                    "SET next_ms = :next, expires_at = :exp",
                    condition="attribute_not_exists(next_ms) OR next_ms < :floor",
                    values={
                        ":next": floor + interval_ms,
                        ":floor": floor,
                        ":exp": now_ms // 1000 + EXPIRY_SECONDS,
                    },
                )
                return floor
            except ConditionFailed:
                continue  # another sender restarted it first: take the slot after theirs
        raise RuntimeError(f"destination {destination}: no send slot after {_TRIES} tries")

    def hold(self, destination: str, until_ms: int) -> None:
        try:
            self.table.update(
                _key(destination),
                "SET next_ms = :until, expires_at = :exp",
                condition="attribute_not_exists(next_ms) OR next_ms < :until",
                values={":until": until_ms, ":exp": until_ms // 1000 + EXPIRY_SECONDS},
            )
        except ConditionFailed:
            return  # held as long already
