"""Metrics in CloudWatch's embedded metric format (EMF): a log line that CloudWatch Logs
turns into metrics of the namespace "Herald" as it ingests it.

Each metric rides on the log line that reports the same fact (an attempt's line carries
Deliveries, AttemptLatency and Retries; a dead-lettered message's line DlqArrivals), so a
metric is written exactly when its line is, nothing is held between lines, and an
invocation that crashes still has every metric it logged. No PutMetricData call, no
package: `emf(...)` builds the `_aws` member of a line's fields.

Metrics (dimensions): Deliveries, AttemptLatency (ms), Retries (Channel, Outcome; and
Outcome alone); DlqArrivals (Queue); EventsPublished, FanoutSize (none).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

NAMESPACE = "Herald"


def emf(
    metrics: dict[str, tuple[float, str]],
    dimensions: dict[str, str] | None = None,
    rollups: Sequence[Sequence[str]] = (),
) -> dict[str, Any]:
    """A log line's fields that make CloudWatch record `metrics` ({name: (value, unit)})
    with `dimensions` (the whole set, and each of the `rollups`, subsets of its names)."""
    names = list(dimensions or {})
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [names, *(list(r) for r in rollups)],
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
                }
            ],
        },
        **(dimensions or {}),
        **{name: value for name, (value, _) in metrics.items()},
    }
