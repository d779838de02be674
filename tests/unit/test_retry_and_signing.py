"""Retry policy and Standard Webhooks signing, without I/O."""

from __future__ import annotations

import random
import time

from standardwebhooks.webhooks import Webhook

from chalicelib.channels.base import CHAT_SCHEDULE, WEBHOOK_SCHEDULE
from chalicelib.delivery.retry import MAX_DELAY_SECONDS, next_delay
from chalicelib.delivery.signing import new_secret, signature_headers


def test_the_webhook_schedule_follows_svix_with_jitter() -> None:
    rng = random.Random(7)
    for attempt, base in enumerate(WEBHOOK_SCHEDULE, start=1):
        delay = next_delay(WEBHOOK_SCHEDULE, attempt, None, rng)
        assert delay is not None
        assert base * 0.8 <= delay <= base * 1.2 + 1


def test_no_retry_after_the_last_attempt() -> None:
    assert next_delay(WEBHOOK_SCHEDULE, len(WEBHOOK_SCHEDULE) + 1, None) is None
    assert next_delay(CHAT_SCHEDULE, len(CHAT_SCHEDULE) + 1, None) is None


def test_chat_channels_give_up_sooner() -> None:
    assert sum(CHAT_SCHEDULE) < sum(WEBHOOK_SCHEDULE) / 10


def test_retry_after_longer_than_the_schedule_wins_but_is_capped() -> None:
    assert next_delay(WEBHOOK_SCHEDULE, 1, 600.0) == 600
    assert next_delay(WEBHOOK_SCHEDULE, 1, 10**9) == MAX_DELAY_SECONDS


def test_jitter_spreads_retries() -> None:
    rng = random.Random(1)
    assert len({next_delay(WEBHOOK_SCHEDULE, 3, None, rng) for _ in range(20)}) > 5


def test_signatures_verify_with_the_standardwebhooks_library() -> None:
    secret = new_secret()
    body = b'{"type":"deployment"}'
    headers = signature_headers([secret], "msg_1", int(time.time()), body)
    assert Webhook(secret).verify(body, headers) == {"type": "deployment"}


def test_each_secret_in_use_adds_a_signature() -> None:
    old, new = new_secret(), new_secret()
    headers = signature_headers([new, old], "msg_2", 1, b"{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
