"""The soak's judgement, on made-up logs: what counts as a lost, rewritten or renumbered
attempt-log entry, a drifting counter, and memory that does not stay flat."""

from __future__ import annotations

from typing import Any

import pytest

from bench.stackload import Findings, Hit, Ledger, first_attempt_fails, memory_summary, settled

HANDLER = 7


def entry(seq: int, event: str, attempt: int, status: str, http_status: int = 200) -> dict[str, Any]:
    return {
        "id": seq,
        "event_id": event,
        "event_type": "deployment",
        "attempt": attempt,
        "status": status,
        "http_status": http_status,
        "duration_ms": 3,
        "error": None,
        "datetime": "2026-01-01 00:00:00",
    }


def hit(event: str, status: int, at: float) -> Hit:
    return Hit("/flaky/1", event, f"msg_{event}_{HANDLER}", status, at)


# event "a": refused once, then delivered; event "b": delivered at once
LOG = [entry(3, "a", 2, "delivered"), entry(2, "b", 1, "delivered"), entry(1, "a", 1, "retrying", 503)]
HITS = [hit("a", 503, 1.0), hit("b", 200, 2.0), hit("a", 200, 6.0)]
RECORDS = {"a": {"status": "delivered", "attempts": 2}, "b": {"status": "delivered", "attempts": 1}}


def kinds(findings: Findings) -> set[str]:
    return set(findings.kinds())


def test_a_log_that_matches_every_attempt_and_record_is_clean() -> None:
    findings = Ledger().check(HANDLER, LOG, 3, HITS, RECORDS)
    assert findings.problems == set()
    assert (findings.checked_entries, findings.checked_hits) == (3, 3)


def test_an_attempt_the_receiver_answered_but_nobody_logged_is_lost() -> None:
    log = [e for e in LOG if e["id"] != 3]
    found = Ledger().check(HANDLER, log, 2, HITS, None)
    assert "unlogged attempt" in kinds(found)
    assert "last status" in kinds(found)  # the log still says retrying after a 200


def test_a_number_handed_out_twice_or_skipped_is_found() -> None:
    repeated = [*LOG, entry(3, "b", 2, "delivered")]
    assert "repeated number" in kinds(Ledger().check(HANDLER, repeated, 3, HITS, None))
    assert "gap in numbering" in kinds(Ledger().check(HANDLER, LOG, 4, HITS, None))


def test_an_entry_that_changes_or_vanishes_after_it_was_seen_is_found() -> None:
    ledger = Ledger()
    ledger.observe(HANDLER, LOG)
    changed = [entry(3, "a", 2, "retrying"), *LOG[1:]]
    assert "rewritten entry" in kinds(ledger.check(HANDLER, changed, 3, HITS, None))
    assert "vanished entry" in kinds(ledger.check(HANDLER, LOG[:2], 3, HITS, None))


def test_attempts_must_count_one_two_three_per_event() -> None:
    log = [entry(3, "a", 1, "delivered"), LOG[1], LOG[2]]
    assert "attempt numbers" in kinds(Ledger().check(HANDLER, log, 3, HITS, None))


def test_a_delivery_record_whose_counter_drifted_from_the_log_is_found() -> None:
    drifted = {**RECORDS, "a": {"status": "delivered", "attempts": 3}}
    assert kinds(Ledger().check(HANDLER, LOG, 3, HITS, drifted)) == {"delivery record"}


def test_a_logged_attempt_no_receiver_saw_is_found() -> None:
    assert "logged, never received" in kinds(Ledger().check(HANDLER, LOG, 3, HITS[:2], None))


def test_a_discrepancy_that_clears_is_in_flight_one_that_stays_is_lost() -> None:
    answers = iter(
        [{("gap in numbering", 1, "#4"), ("unlogged attempt", 1, "x")}, {("unlogged attempt", 1, "x")}]
    )
    findings = settled(
        lambda: Findings(next(answers, {("unlogged attempt", 1, "x")})), window=0.05, every=0.01
    )
    assert findings.problems == {("unlogged attempt", 1, "x")}
    clearing = iter([{("gap in numbering", 1, "#4")}, set()])
    assert settled(lambda: Findings(next(clearing, set())), window=5, every=0.01).problems == set()


def test_memory_growth_is_measured_after_the_warm_up() -> None:
    samples = [(0.0, {"stack": 100 * 1024}), (60.0, {"stack": 200 * 1024})]
    samples += [(60.0 + 60 * i, {"stack": (200 + i) * 1024}) for i in range(1, 11)]
    summary = memory_summary(samples, warmup=60)["stack"]
    assert summary["after_warmup_mib"] == 200
    assert summary["end_mib"] == summary["peak_mib"] == 210
    assert summary["growth_after_warmup_mib"] == 10
    assert summary["slope_mib_per_hour"] == pytest.approx(60)


def test_a_flaky_receiver_refuses_a_stable_share_of_first_attempts() -> None:
    ids = [f"msg_{n}_1" for n in range(3000)]
    refused = [i for i in ids if first_attempt_fails(i, 2 / 3)]
    assert 0.6 < len(refused) / len(ids) < 0.73
    assert refused == [i for i in ids if first_attempt_fails(i, 2 / 3)]
    assert not any(first_attempt_fails(i, 0) for i in ids)
    assert all(first_attempt_fails(i, 1) for i in ids)
