"""X: the OAuth 1.0a signature checked the way X's server checks it, weighted lengths, rate limits."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from oauthlib.oauth1.rfc5849 import signature, utils

from chalicelib.channels.x import weighted_length
from chalicelib.delivery.safe_http import SafeSender
from chalicelib.models.deliveries import Outcome
from chalicelib.text import TRUNCATION_MARKER
from tests.functional.test_channels_chat import (
    NOW,
    X_KEYS,
    make_event,
    platform_urls,
    seed_event,
    send,
    sender,
    x_length,
)
from tests.receiver import Received, Receiver, Reply

__all__ = ["platform_urls", "sender"]  # fixtures shared with the table-driven tests

ZWSP = "\u200b"


def oauth_params(request: Received) -> dict[str, str]:
    """The Authorization header's parameters, percent-decoded as the spec says."""
    header = request.headers["Authorization"]
    return {key: utils.unescape(value) for key, value in utils.parse_authorization_header(header)}


def verify(request: Received, url: str, consumer_secret: str, token_secret: str) -> bool:
    """Server side: rebuild the base string from the received header and the URL, no body."""
    params = signature.collect_parameters(
        headers={"Authorization": request.headers["Authorization"]}, exclude_oauth_signature=True
    )
    checked = SimpleNamespace(
        params=params, uri=url, http_method=request.method, signature=oauth_params(request)["oauth_signature"]
    )
    return bool(signature.verify_hmac_sha1(checked, consumer_secret, token_secret))


def test_the_post_is_signed_with_oauth1_and_verifies_server_side(
    receiver: Receiver, sender: SafeSender
) -> None:
    result, request = send("x", receiver, sender, seed_event())
    assert result.outcome == Outcome.SENT
    assert result.http_status == 201
    assert request.path == "/2/tweets"
    assert request.json() == {
        "text": "Deployment of my-app: success\njohndoe deployed 0123abc to my-app in 40 s."
    }
    params = oauth_params(request)
    assert params["oauth_consumer_key"] == X_KEYS["x_consumer_key"]
    assert params["oauth_token"] == X_KEYS["x_access_token"]
    assert params["oauth_signature_method"] == "HMAC-SHA1"
    assert params["oauth_version"] == "1.0"
    assert params["oauth_timestamp"] == str(int(NOW.timestamp()))
    assert len(params["oauth_nonce"]) >= 16
    url = receiver.url("/2/tweets")
    assert verify(request, url, X_KEYS["x_consumer_secret"], X_KEYS["x_access_token_secret"])
    # no secret ever travels
    assert X_KEYS["x_consumer_secret"] not in str(request.headers) + request.body.decode()
    assert X_KEYS["x_access_token_secret"] not in str(request.headers) + request.body.decode()


@pytest.mark.parametrize(
    ("consumer_secret", "token_secret", "path"),
    [
        ("tampered", X_KEYS["x_access_token_secret"], "/2/tweets"),
        (X_KEYS["x_consumer_secret"], "tampered", "/2/tweets"),
        (X_KEYS["x_consumer_secret"], X_KEYS["x_access_token_secret"], "/1.1/statuses/update.json"),
    ],
    ids=["consumer-secret", "token-secret", "other-endpoint"],
)
def test_a_wrong_secret_or_url_fails_verification(
    consumer_secret: str, token_secret: str, path: str, receiver: Receiver, sender: SafeSender
) -> None:
    _, request = send("x", receiver, sender, seed_event())
    assert not verify(request, receiver.url(path), consumer_secret, token_secret)


def test_every_post_gets_a_fresh_nonce(receiver: Receiver, sender: SafeSender) -> None:
    _, first = send("x", receiver, sender, seed_event())
    _, second = send("x", receiver, sender, seed_event())
    assert oauth_params(first)["oauth_nonce"] != oauth_params(second)["oauth_nonce"]


def test_429_waits_until_the_rate_limit_resets(receiver: Receiver, sender: SafeSender) -> None:
    reset = int(time.time()) + 120
    reply = Reply(429, {"title": "Too Many Requests", "status": 429}, {"x-rate-limit-reset": str(reset)})
    result, _ = send("x", receiver, sender, seed_event(), reply)
    assert result.outcome == Outcome.RETRY
    assert result.retry_after is not None
    assert 117 <= result.retry_after <= 120


def test_a_reset_in_the_past_means_retry_now(receiver: Receiver, sender: SafeSender) -> None:
    reply = Reply(429, {"status": 429}, {"x-rate-limit-reset": str(int(time.time()) - 30)})
    result, _ = send("x", receiver, sender, seed_event(), reply)
    assert (result.outcome, result.retry_after) == (Outcome.RETRY, 0.0)


@pytest.mark.parametrize(
    ("text", "weight"),
    [
        ("hello", 5),
        ("déjà vu — “quoted”", 18),  # Latin-1, general punctuation: 1 each
        ("漢字かな", 8),  # CJK: 2 each
        ("🚀", 2),
        ("👩\u200d💻", 2),  # one emoji to X; we count its code points: 2 + 1 + 2
        ("see main.py", 4 + 23),  # X makes main.py a link: 23
        ("at https://example.com/a/very/long/path/that/x/shortens", 3 + 23),
        ("at https://example.com/path.", 3 + 23 + 1),  # the final dot is not part of the link
    ],
)
def test_weighted_length_never_undercounts(text: str, weight: int) -> None:
    assert weight <= weighted_length(text) <= weight + 23


@pytest.mark.parametrize(
    ("link", "shortened"),
    [
        ("https://example.com/deployments/5343eccd?tab=logs&x=1", True),
        ("https://dashboard.example.com/" + "a" * 500, True),
        ("https://example.com/", True),
        ("https://example.com:8443/a_b/c-d/(x)", False),  # parentheses: X's own rules
        ("http://localhost:8080/deployments/1", False),
        ("https://ci.internal/deployments/1", False),  # not a TLD X knows
        ("https://example.com/a.", False),  # X leaves the final dot outside the link
        ("https://user@example.com/a", False),
        ("https://exämple.com/a", False),
    ],
)
def test_a_link_counts_23_only_when_x_surely_shortens_all_of_it(link: str, shortened: bool) -> None:
    expected = 23 if shortened else len(link)
    assert weighted_length(link) >= expected
    assert (weighted_length(link) == 23) == shortened or len(link) <= 23


def event_with(message: str, link: str | None = None) -> Any:
    data: dict[str, Any] = {"message": message}
    if link:
        data["url"] = link
    return make_event("app_crashed", app="my-app", type_data=data)


def test_a_long_link_costs_23_and_the_body_gets_the_rest(receiver: Receiver, sender: SafeSender) -> None:
    link = "https://dashboard.example.com/apps/my-app/crashes/" + "0" * 150
    _, request = send("x", receiver, sender, event_with("x" * 1000, link))
    text = request.json()["text"]
    _, body, sent_link = text.split("\n")
    assert sent_link == link
    assert body.endswith(TRUNCATION_MARKER)
    assert x_length(text) == 280
    assert len(text) > 280  # the long link is only 23 of them


def test_cjk_counts_double(receiver: Receiver, sender: SafeSender) -> None:
    _, request = send("x", receiver, sender, event_with("漢" * 1000))
    text = request.json()["text"]
    assert 279 <= x_length(text) <= 280
    assert text.count("漢") == (280 - len("Application crashed — my-app\n") - 14) // 2  # the marker weighs 14


def test_mentions_are_defused_but_addresses_kept(receiver: Receiver, sender: SafeSender) -> None:
    wide_at = "\uff20"
    _, request = send("x", receiver, sender, event_with(f"cc @elonmusk {wide_at}jack, mail ops@example.com"))
    body = request.json()["text"].split("\n")[1]
    assert body == f"cc @{ZWSP}elonmusk {wide_at}{ZWSP}jack, mail ops@example.com"


def test_text_is_sent_nfc_normalised(receiver: Receiver, sender: SafeSender) -> None:
    _, request = send("x", receiver, sender, event_with("cafe\u0301"))
    assert request.json()["text"].split("\n")[1] == "caf\u00e9"
