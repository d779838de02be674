"""Each chat channel's outbound request, rendered in a fake delivery context: no sockets.

A table of cases as in Apprise's plugin tests: the handler's settings and the platform
base URLs in the context's settings, and the exact URL, headers and JSON body posted.
(The sender's one verb is POST; tests/functional checks the request on the wire.)
"""

from __future__ import annotations

from typing import Any

import pytest
from oauthlib.oauth1.rfc5849 import utils

from chalicelib.channels import get_channel
from chalicelib.models.deliveries import Outcome
from tests.fakes.delivery import RecordingSender, fake_context
from tests.functional.test_channels_chat import (
    CHAT_ID,
    EXPECTED,
    NOW,
    TOKEN,
    X_KEYS,
    make_handler,
    seed_event,
)

TELEGRAM_BASE = "https://telegram.example.test"
X_BASE = "https://x.example.test"
JSON = {"Content-Type": "application/json"}

# (type, the handler's settings, the URL posted to)
CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "slack",
        {"slack": "https://hooks.slack.com/services/T0/B0/X"},
        "https://hooks.slack.com/services/T0/B0/X",
    ),
    (
        "discord",
        {"discord": "https://discord.com/api/webhooks/1234/webhook-token"},
        "https://discord.com/api/webhooks/1234/webhook-token",
    ),
    (
        "microsoft_teams",
        {"microsoft_teams": "https://prod.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke"},
        "https://prod.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke",
    ),
    (
        "google_chat",
        {"google_chat": "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=AIzaSy-key&token=abc%3D"},
        "https://chat.googleapis.com/v1/spaces/AAAA/messages?key=AIzaSy-key&token=abc%3D",
    ),
    (
        "telegram",
        {"telegram": TOKEN, "telegram_chat_id": CHAT_ID},
        f"{TELEGRAM_BASE}/bot{TOKEN}/sendMessage",
    ),
    ("x", dict(X_KEYS), f"{X_BASE}/2/tweets"),
]


def post(kind: str, settings: dict[str, str]) -> tuple[Outcome, Any]:
    """Deliver the seed deployment at NOW; the outcome and the one request posted."""
    sender = RecordingSender()
    context = fake_context(NOW, sender=sender, telegram_api_url=TELEGRAM_BASE, x_api_url=X_BASE)
    result = get_channel(kind).deliver(seed_event(), make_handler(kind, settings), context)
    (request,) = sender.posted
    return result.outcome, request


@pytest.mark.parametrize(("kind", "settings", "url"), CASES, ids=[case[0] for case in CASES])
def test_the_seed_deployment_is_one_json_post_in_the_platform_format(
    kind: str, settings: dict[str, str], url: str
) -> None:
    outcome, request = post(kind, settings)
    assert outcome == Outcome.SENT
    assert request.url == url
    headers = dict(request.headers)
    if kind == "x":  # signed per request (a fresh nonce): checked below
        headers.pop("Authorization")
    assert headers == JSON
    assert request.json() == EXPECTED[kind]


def test_the_x_post_is_signed_for_the_contexts_clock_and_keys() -> None:
    _, request = post("x", dict(X_KEYS))
    scheme, _, _ = request.headers["Authorization"].partition(" ")
    params = dict(utils.parse_authorization_header(request.headers["Authorization"]))
    assert scheme == "OAuth"
    assert params["oauth_timestamp"] == str(int(NOW.timestamp()))
    assert params["oauth_consumer_key"] == X_KEYS["x_consumer_key"]
    assert params["oauth_token"] == X_KEYS["x_access_token"]
    assert params["oauth_signature_method"] == "HMAC-SHA1"
