"""The soak and issue 13's races, run short against real local stacks: no 5xx, no lost or
rewritten attempt-log entry, distinct ids under concurrent creation, a clean stop."""

from __future__ import annotations

from bench.concurrency import concurrent_creators, failing_receiver
from bench.soak import SoakConfig, run_soak
from bench.stackload import Api, Receivers, Table
from tests.e2e.conftest import KEY, Stack

SHORT = SoakConfig(
    minutes=0.25,
    sample_every=3,
    burst_every=6,
    check_every=6,
    warmup=3,
    drain=90,
    settle=20,
)


def test_a_short_soak_finds_no_5xx_and_no_lost_log_entry_and_stops_on_sigterm() -> None:
    result = run_soak(SHORT, progress=lambda _: None)
    assert result["server_error_count"] == 0, result["server_errors"]
    assert result["unexpected"] == []
    assert result["events_published"] > 0
    assert result["attempts_by_receiver"]["ok"] > 0
    assert result["attempts_by_receiver"]["flaky"] > 0
    assert (result["drain"]["undelivered"], result["drain"]["delivered twice"]) == (0, 0)
    # The always-failing receiver's retries wait in the queue: the samples show them.
    assert result["drain"]["still queued"] >= 1
    assert any(isinstance(point["deliveries_queued"], int) for point in result["timeline"])
    assert result["ledger"]["problems"] == {}, result["ledger"]["examples"]
    assert result["ledger"]["entries_checked"] == result["attempts_received"]
    assert result["bursts"]["count"] >= 1
    assert result["bursts"]["all_distinct"]
    assert set(result["memory_mib"]) == {"stack", "chalice-local", "dynamodb-local"}
    assert len(result["timeline"]) >= 3
    assert result["sigterm"]["still_running"] == []
    assert result["stack_errors_logged"] == 0, result["stack_error_examples"]


def test_retries_beside_first_attempts_lose_no_log_entry(local_stack: Stack) -> None:
    receivers = Receivers(flaky_share=2 / 3)
    try:
        api = Api(local_stack.url, KEY)
        result = failing_receiver(
            api,
            receivers,
            Table.of(local_stack.exported(), account="dev"),
            handlers=6,
            events=10,
            deadline=120,
            settle=20,
        )
    finally:
        receivers.close()
    assert result["delivered"] == result["event x handler"] == 60, result
    assert result["refused first attempts"] > 0
    assert result["ledger problems"] == {}, result["ledger examples"]
    assert result["5xx or no answer"] == 0, api.server_errors
    assert result["unexpected answers"] == []


def test_twenty_clients_creating_at_once_get_distinct_ids(local_stack: Stack) -> None:
    receivers = Receivers()
    try:
        api = Api(local_stack.url, KEY)
        result = concurrent_creators(api, receivers, clients=20, per_client=3)
    finally:
        receivers.close()
    assert result == {
        "creates": 60,
        "201": 60,
        "distinct ids": 60,
        "list total grew by": 60,
        "5xx or no answer": 0,
        "unexpected answers": [],
    }, api.server_errors
