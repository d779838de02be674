"""The chat channels against a local receiver: wire format, limits, escaping, error classes.

Table-driven over the six platforms; X's OAuth and Telegram's token have their own files.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.channels import get_channel
from chalicelib.channels.chat import ZWSP, utf16_len
from chalicelib.delivery.context import DeliveryContext, delivery_context
from chalicelib.delivery.safe_http import SafeSender
from chalicelib.models.deliveries import Outcome, SendResult
from chalicelib.models.events import Event
from chalicelib.models.handlers import Handler
from chalicelib.text import TRUNCATION_MARKER
from tests.fakes.stores import memory_stores
from tests.receiver import Received, Receiver, Reply

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT_ID = "-1001234567890"
X_KEYS = {
    "x_consumer_key": "xvz1evFS4wEEPTGEFPHBog",
    "x_consumer_secret": "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
    "x_access_token": "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
    "x_access_token_secret": "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
}
PATHS = {
    "slack": "/services/T000/B000/XXXX",
    "discord": "/api/webhooks/1234/webhook-token",
    "microsoft_teams": "/workflows/abc/triggers/manual/paths/invoke",
    "google_chat": "/v1/spaces/AAAA/messages",
    "telegram": f"/bot{TOKEN}/sendMessage",
    "x": "/2/tweets",
}
OK_REPLIES = {
    "slack": Reply(200, "ok"),
    "discord": Reply(204),
    "microsoft_teams": Reply(202),
    "google_chat": Reply(200, {"name": "spaces/AAAA/messages/1"}),
    "telegram": Reply(200, {"ok": True, "result": {"message_id": 1}}),
    "x": Reply(201, {"data": {"id": "1", "text": "posted"}}),
}
KINDS = tuple(PATHS)
SEED: dict[str, Any] = {  # seed 001's deployment event
    "app": "my-app",
    "user": {"username": "johndoe", "email": "john@doe.com", "id": "51e6bc626edfe40bbb000001"},
    "type_data": {
        "deployment_id": "5343eccd",
        "pusher": "johndoe",
        "git_ref": "0123abc",
        "status": "success",
        "duration": 40,
    },
}
HOSTILE = (
    "<script>alert(1)</script> @everyone @here <!channel> <@U024BE7LH> <users/all> "
    '[click](http://evil.example/x) [ref][1] <a href="http://evil.example">y</a> & *b* `c`'
)


def make_event(type_: str = "deployment", **fields: Any) -> Event:
    return Event(account="acme", id="664f1c2a9b1e8a0012345678", type=type_, created_at=NOW, **fields)


def seed_event() -> Event:
    return make_event(**SEED)


def settings_for(kind: str, receiver: Receiver) -> dict[str, str]:
    if kind == "telegram":
        return {"telegram": TOKEN, "telegram_chat_id": CHAT_ID}
    if kind == "x":
        return dict(X_KEYS)
    query = "?key=AIzaSy-key&token=abc%3D" if kind == "google_chat" else ""
    return {kind: receiver.url(PATHS[kind] + query)}


def make_handler(kind: str, settings: dict[str, str]) -> Handler:
    return Handler(
        account="acme", id=7, type=kind, name=kind, settings=settings, created_at=NOW, updated_at=NOW
    )


@pytest.fixture
def sender() -> Iterator[SafeSender]:
    sender = SafeSender(allow_private=True, deadline=5.0)
    yield sender
    sender.close()


@pytest.fixture(autouse=True)
def platform_urls(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Telegram's and X's base URLs point at the receiver."""
    monkeypatch.setenv("HERALD_TELEGRAM_API_URL", receiver.base)
    monkeypatch.setenv("HERALD_X_API_URL", receiver.base)


def context(sender: SafeSender) -> DeliveryContext:
    """A delivery at NOW through `sender`, on the configuration as the test set it."""
    return delivery_context(memory_stores(), sender, lambda: NOW)


def send(
    kind: str, receiver: Receiver, sender: SafeSender, event: Event, reply: Reply | None = None
) -> tuple[SendResult, Received]:
    """Deliver `event` through the channel to the receiver, which answers `reply`."""
    receiver.script(PATHS[kind], reply or OK_REPLIES[kind])
    channel = get_channel(kind)
    result = channel.deliver(event, make_handler(kind, settings_for(kind, receiver)), context(sender))
    (request,) = receiver.to(PATHS[kind])[-1:]
    return result, request


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON document, keys excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# ---------------------------------------------------------------- the seed event, exactly


SEED_FIELDS = [
    ("App", "my-app"),
    ("Deployment id", "5343eccd"),
    ("Git ref", "0123abc"),
    ("Status", "success"),
    ("Duration", "40"),
]
TITLE = "Deployment of my-app: success"
BODY = "johndoe deployed 0123abc to my-app in 40 s."
EXPECTED: dict[str, Any] = {
    "slack": {
        "text": f"{TITLE}\n{BODY}\n" + "\n".join(f"{n}: {v}" for n, v in SEED_FIELDS),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": TITLE, "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": BODY}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{n}*\n{v}"} for n, v in SEED_FIELDS],
            },
        ],
    },
    "discord": {
        "embeds": [
            {
                "title": TITLE,
                "timestamp": "2024-05-01T12:00:00+00:00",
                "description": BODY,
                "fields": [{"name": n, "value": v, "inline": True} for n, v in SEED_FIELDS],
            }
        ],
        "allowed_mentions": {"parse": []},
    },
    "microsoft_teams": {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {
                            "type": "TextBlock",
                            "text": TITLE,
                            "weight": "Bolder",
                            "size": "Medium",
                            "wrap": True,
                        },
                        {"type": "TextBlock", "text": BODY, "wrap": True},
                        {"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in SEED_FIELDS]},
                    ],
                },
            }
        ],
    },
    "google_chat": {
        "text": TITLE,
        "cardsV2": [
            {
                "cardId": "herald-664f1c2a9b1e8a0012345678",
                "card": {
                    "header": {"title": TITLE},
                    "sections": [
                        {
                            "widgets": [
                                {"textParagraph": {"text": BODY}},
                                *(
                                    {"decoratedText": {"topLabel": n, "text": v, "wrapText": True}}
                                    for n, v in SEED_FIELDS
                                ),
                            ]
                        }
                    ],
                },
            }
        ],
    },
    "telegram": {
        "chat_id": CHAT_ID,
        "text": f"<b>{TITLE}</b>\n{BODY}\n\n" + "\n".join(f"<b>{n}:</b> {v}" for n, v in SEED_FIELDS),
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
    },
    "x": {"text": f"{TITLE}\n{BODY}"},
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_seed_deployment_is_sent_in_the_platform_format(
    kind: str, receiver: Receiver, sender: SafeSender
) -> None:
    result, request = send(kind, receiver, sender, seed_event())
    assert result.outcome == Outcome.SENT, result
    assert result.http_status == OK_REPLIES[kind].status
    assert result.error is None
    assert request.method == "POST"
    assert request.path.split("?")[0] == PATHS[kind]
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == EXPECTED[kind]
    assert not any(TRUNCATION_MARKER in s for s in strings(request.json()))


def test_google_chat_keeps_the_webhook_query(receiver: Receiver, sender: SafeSender) -> None:
    _, request = send("google_chat", receiver, sender, seed_event())
    assert request.path == PATHS["google_chat"] + "?key=AIzaSy-key&token=abc%3D"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("given", "link"),
    [
        ("https://dashboard.example.com/apps/my-app/deployments/5343eccd?tab=logs&x=1",) * 2,
        ('https://example.com/a b"c<d>|e\x01', "https://example.com/a%20b%22c%3Cd%3E%7Ce%01"),
    ],
    ids=["plain", "made-valid"],
)
def test_a_link_is_offered_where_the_platform_has_a_place_for_it(
    kind: str, given: str, link: str, receiver: Receiver, sender: SafeSender
) -> None:
    event = make_event(**{**SEED, "type_data": {**SEED["type_data"], "url": given}})
    result, request = send(kind, receiver, sender, event)
    assert result.outcome == Outcome.SENT
    payload = request.json()
    where: dict[str, Callable[[Any], Any]] = {
        "slack": lambda p: p["blocks"][-1],
        "discord": lambda p: p["embeds"][0]["url"],
        "microsoft_teams": lambda p: p["attachments"][0]["content"]["actions"],
        "google_chat": lambda p: p["cardsV2"][0]["card"]["sections"][0]["widgets"][-1],
        "telegram": lambda p: p["text"].rsplit("\n", 1)[-1],
        "x": lambda p: p["text"].rsplit("\n", 1)[-1],
    }
    expected = {
        "slack": {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"<{link.replace('&', '&amp;')}|Open>"}],
        },
        "discord": link,
        "microsoft_teams": [{"type": "Action.OpenUrl", "title": "Open", "url": link}],
        "google_chat": {
            "buttonList": {"buttons": [{"text": "Open", "onClick": {"openLink": {"url": link}}}]}
        },
        "telegram": link.replace("&", "&amp;"),
        "x": link,
    }
    assert where[kind](payload) == expected[kind]


# ---------------------------------------------------------------- errors, classified


TELEGRAM_429 = {
    "ok": False,
    "error_code": 429,
    "description": "Too Many Requests: retry after 7",
    "parameters": {"retry_after": 7},
}
CASES: list[tuple[str, Reply, Outcome, float | None, str]] = [
    # slack: text answers, Retry-After header
    (
        "slack",
        Reply(429, "rate_limited", {"Retry-After": "30"}),
        Outcome.RETRY,
        30.0,
        "HTTP 429: rate_limited",
    ),
    ("slack", Reply(400, "invalid_payload"), Outcome.PERMANENT, None, "HTTP 400: invalid_payload"),
    ("slack", Reply(400, "no_text"), Outcome.PERMANENT, None, "HTTP 400: no_text"),
    ("slack", Reply(403, "action_prohibited"), Outcome.GONE, None, "HTTP 403: action_prohibited"),
    ("slack", Reply(404, "channel_not_found"), Outcome.GONE, None, "HTTP 404: channel_not_found"),
    ("slack", Reply(410, "channel_is_archived"), Outcome.GONE, None, "HTTP 410: channel_is_archived"),
    ("slack", Reply(500, "rollup_error"), Outcome.RETRY, None, "HTTP 500: rollup_error"),
    # discord: the 429 body's float wins over the rounded header
    (
        "discord",
        Reply(
            429,
            {"message": "You are being rate limited.", "retry_after": 1.75, "global": False},
            {"Retry-After": "2"},
        ),
        Outcome.RETRY,
        1.75,
        "HTTP 429: You are being rate limited.",
    ),
    ("discord", Reply(429, "", {"Retry-After": "3"}), Outcome.RETRY, 3.0, "HTTP 429"),
    (
        "discord",
        Reply(401, {"message": "Invalid Webhook Token", "code": 50027}),
        Outcome.GONE,
        None,
        "HTTP 401: Invalid Webhook Token",
    ),
    (
        "discord",
        Reply(403, {"message": "Missing Access", "code": 50001}),
        Outcome.GONE,
        None,
        "HTTP 403: Missing Access",
    ),
    (
        "discord",
        Reply(404, {"message": "Unknown Webhook", "code": 10015}),
        Outcome.GONE,
        None,
        "HTTP 404: Unknown Webhook",
    ),
    (
        "discord",
        Reply(400, {"message": "Invalid Form Body", "code": 50035}),
        Outcome.PERMANENT,
        None,
        "HTTP 400: Invalid Form Body",
    ),
    ("discord", Reply(502, "Bad Gateway"), Outcome.RETRY, None, "HTTP 502: Bad Gateway"),
    # microsoft teams (Power Automate)
    (
        "microsoft_teams",
        Reply(
            429,
            {"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded."}},
            {"Retry-After": "60"},
        ),
        Outcome.RETRY,
        60.0,
        "HTTP 429: Rate limit is exceeded.",
    ),
    (
        "microsoft_teams",
        Reply(404, {"error": {"code": "WorkflowNotFound", "message": "The workflow could not be found."}}),
        Outcome.GONE,
        None,
        "HTTP 404: The workflow could not be found.",
    ),
    (
        "microsoft_teams",
        Reply(401, {"error": {"code": "DirectApiAuthorizationRequired"}}),
        Outcome.PERMANENT,
        None,
        "HTTP 401: DirectApiAuthorizationRequired",
    ),
    (
        "microsoft_teams",
        Reply(
            400, {"error": {"code": "InvalidRequestContent", "message": "The input body is not valid JSON."}}
        ),
        Outcome.PERMANENT,
        None,
        "HTTP 400: The input body is not valid JSON.",
    ),
    ("microsoft_teams", Reply(503, ""), Outcome.RETRY, None, "HTTP 503"),
    # google chat
    (
        "google_chat",
        Reply(
            429,
            {
                "error": {
                    "code": 429,
                    "message": "Resource has been exhausted",
                    "status": "RESOURCE_EXHAUSTED",
                }
            },
            {"Retry-After": "10"},
        ),
        Outcome.RETRY,
        10.0,
        "HTTP 429: Resource has been exhausted",
    ),
    (
        "google_chat",
        Reply(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}),
        Outcome.RETRY,
        None,
        "HTTP 429: RESOURCE_EXHAUSTED",
    ),
    (
        "google_chat",
        Reply(
            404, {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}}
        ),
        Outcome.GONE,
        None,
        "HTTP 404: Requested entity was not found.",
    ),
    (
        "google_chat",
        Reply(
            400,
            {
                "error": {
                    "code": 400,
                    "message": "Invalid JSON payload received.",
                    "status": "INVALID_ARGUMENT",
                }
            },
        ),
        Outcome.PERMANENT,
        None,
        "HTTP 400: Invalid JSON payload received.",
    ),
    (
        "google_chat",
        Reply(
            403,
            {
                "error": {
                    "code": 403,
                    "message": "The caller does not have permission",
                    "status": "PERMISSION_DENIED",
                }
            },
        ),
        Outcome.PERMANENT,
        None,
        "HTTP 403: The caller does not have permission",
    ),
    (
        "google_chat",
        Reply(500, {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}),
        Outcome.RETRY,
        None,
        "HTTP 500: Internal error encountered.",
    ),
    # telegram
    ("telegram", Reply(429, TELEGRAM_429), Outcome.RETRY, 7.0, "HTTP 429: Too Many Requests: retry after 7"),
    (
        "telegram",
        Reply(400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}),
        Outcome.PERMANENT,
        None,
        "HTTP 400: Bad Request: chat not found",
    ),
    (
        "telegram",
        Reply(403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
        Outcome.PERMANENT,
        None,
        "HTTP 403: Forbidden: bot was blocked by the user",
    ),
    (
        "telegram",
        Reply(
            403,
            {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked from the group chat"},
        ),
        Outcome.PERMANENT,
        None,
        "bot was kicked",
    ),
    (
        "telegram",
        Reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"}),
        Outcome.GONE,
        None,
        "HTTP 401: Unauthorized",
    ),
    (
        "telegram",
        Reply(404, {"ok": False, "error_code": 404, "description": "Not Found"}),
        Outcome.PERMANENT,
        None,
        "HTTP 404: Not Found",
    ),
    ("telegram", Reply(502, "<html>Bad Gateway</html>"), Outcome.RETRY, None, "HTTP 502"),
    # x
    (
        "x",
        Reply(401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
        Outcome.GONE,
        None,
        "HTTP 401: Unauthorized",
    ),
    (
        "x",
        Reply(
            403,
            {
                "detail": "You are not allowed to create a Tweet with duplicate content.",
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
            },
        ),
        Outcome.PERMANENT,
        None,
        "HTTP 403: You are not allowed to create a Tweet with duplicate content.",
    ),
    (
        "x",
        Reply(
            403,
            {
                "errors": [
                    {
                        "message": "Your client app is not configured with the appropriate "
                        "oauth1 app permissions",
                        "code": 453,
                    }
                ]
            },
        ),
        Outcome.PERMANENT,
        None,
        "appropriate oauth1 app permissions",
    ),
    (
        "x",
        Reply(
            400,
            {
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "status": 400,
            },
        ),
        Outcome.PERMANENT,
        None,
        "HTTP 400: One or more parameters",
    ),
    (
        "x",
        Reply(503, {"title": "Service Unavailable", "status": 503}),
        Outcome.RETRY,
        None,
        "HTTP 503: Service Unavailable",
    ),
    (
        "x",
        Reply(429, {"title": "Too Many Requests", "status": 429}, {"Retry-After": "42"}),
        Outcome.RETRY,
        42.0,
        "HTTP 429: Too Many Requests",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1].status}-{i}" for i, c in enumerate(CASES)])
def test_answers_are_classified(
    case: tuple[str, Reply, Outcome, float | None, str], receiver: Receiver, sender: SafeSender
) -> None:
    kind, reply, outcome, retry_after, error = case
    result, _ = send(kind, receiver, sender, seed_event(), reply)
    assert result.outcome == outcome
    assert result.http_status == reply.status
    assert result.retry_after == retry_after
    assert result.error is not None
    assert error in result.error


@pytest.mark.parametrize("kind", KINDS)
def test_no_answer_is_retried(kind: str, receiver: Receiver, sender: SafeSender) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    settings = {**settings_for(kind, receiver)}
    if kind in ("telegram", "x"):
        env = {"telegram": "HERALD_TELEGRAM_API_URL", "x": "HERALD_X_API_URL"}[kind]
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(env, closed)
            result = get_channel(kind).deliver(seed_event(), make_handler(kind, settings), context(sender))
    else:
        settings[kind] = closed + PATHS[kind]
        result = get_channel(kind).deliver(seed_event(), make_handler(kind, settings), context(sender))
    assert result.outcome == Outcome.RETRY
    assert result.http_status is None
    assert result.error == f"connection refused by {closed}"


def test_every_chat_channel_uses_the_chat_schedule() -> None:
    from chalicelib.channels.base import CHAT_SCHEDULE

    for kind in KINDS:
        channel = get_channel(kind)
        assert channel.name == kind
        assert channel.retry_schedule == CHAT_SCHEDULE


# ---------------------------------------------------------------- limits


def _slack(payload: dict[str, Any], raw: bytes) -> str:
    blocks = payload["blocks"]
    assert utf16_len(blocks[0]["text"]["text"]) <= 150
    assert utf16_len(payload["text"]) <= 3000
    for block in blocks[1:]:
        if "text" in block:
            assert utf16_len(block["text"]["text"]) <= 3000
        for field in block.get("fields", []):
            assert utf16_len(field["text"]) <= 2000
        assert len(block.get("fields", [])) <= 10
    return str(blocks[1]["text"]["text"])


def _discord(payload: dict[str, Any], raw: bytes) -> str:
    (embed,) = payload["embeds"]
    fields = embed.get("fields", [])
    assert utf16_len(embed["title"]) <= 256
    assert utf16_len(embed["description"]) <= 4096
    assert len(fields) <= 25
    for field in fields:
        assert 0 < utf16_len(field["name"]) <= 256
        assert 0 < utf16_len(field["value"]) <= 1024
    total = sum(utf16_len(embed[k]) for k in ("title", "description"))
    total += sum(utf16_len(f["name"]) + utf16_len(f["value"]) for f in fields)
    assert total <= 6000
    assert utf16_len(payload.get("content", "")) <= 2000
    return str(embed["description"])


def _teams(payload: dict[str, Any], raw: bytes) -> str:
    assert len(raw) <= 28_000
    return str(payload["attachments"][0]["content"]["body"][1]["text"])


def _google_chat(payload: dict[str, Any], raw: bytes) -> str:
    assert len(raw) <= 32_000
    return str(payload["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]["text"])


def _telegram(payload: dict[str, Any], raw: bytes) -> str:
    assert utf16_len(payload["text"]) <= 4096
    return str(payload["text"].split("\n")[1])


def x_length(text: str) -> int:
    from chalicelib.channels.x import weighted_length

    return weighted_length(text)


def _x(payload: dict[str, Any], raw: bytes) -> str:
    assert x_length(payload["text"]) <= 280
    return str(payload["text"].split("\n")[1])


WITHIN_LIMITS: dict[str, Callable[[dict[str, Any], bytes], str]] = {
    "slack": _slack,
    "discord": _discord,
    "microsoft_teams": _teams,
    "google_chat": _google_chat,
    "telegram": _telegram,
    "x": _x,
}
"""Check every platform limit on a sent payload; return its body text."""
BYTE_LIMITS = {"microsoft_teams": 28_000, "google_chat": 32_000}
EXACT = {"slack": 3000, "discord": 4096, "telegram": 4096}
"""Where the body alone decides: the cut lands exactly on the limit."""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("unit", ["0123456789", "é", "🚀"], ids=["ascii", "latin", "emoji"])
def test_a_10000_character_message_is_cut_at_the_limit_with_the_marker(
    kind: str, unit: str, receiver: Receiver, sender: SafeSender
) -> None:
    message = (unit * 10_000)[:10_000]
    event = make_event("app_crashed", app="my-app", type_data={"message": message})
    result, request = send(kind, receiver, sender, event)
    assert result.outcome == Outcome.SENT
    payload = request.json()
    body = WITHIN_LIMITS[kind](payload, request.body)
    if kind in BYTE_LIMITS and len(message.encode()) < BYTE_LIMITS[kind] - 1000:
        assert body == message  # 10,000 characters of ASCII or Latin fit in 28 KB whole
        return
    assert body.endswith(TRUNCATION_MARKER)
    assert message.startswith(body.removesuffix(TRUNCATION_MARKER))
    assert len(body) > 100  # the room went to the body
    if kind in EXACT:
        whole = payload["text"] if kind == "telegram" else body
        # an emoji is two UTF-16 units: the cut may land one short
        assert EXACT[kind] - (1 if unit == "🚀" else 0) <= utf16_len(whole) <= EXACT[kind]
    if kind in BYTE_LIMITS:
        assert len(request.body) > BYTE_LIMITS[kind] - 4  # an emoji is 4 bytes
    if kind == "x":
        assert x_length(payload["text"]) >= 279


@pytest.mark.parametrize("kind", sorted(BYTE_LIMITS))
@pytest.mark.parametrize("unit", ["0123456789", "é", "\u0001"], ids=["ascii", "latin", "control"])
def test_a_card_is_cut_to_the_byte_limit_of_its_json(
    kind: str, unit: str, receiver: Receiver, sender: SafeSender
) -> None:
    message = unit * 40_000  # a control character is 6 bytes of JSON
    event = make_event("app_crashed", app="my-app", type_data={"message": message})
    result, request = send(kind, receiver, sender, event)
    assert result.outcome == Outcome.SENT
    body = WITHIN_LIMITS[kind](request.json(), request.body)
    assert body.endswith(TRUNCATION_MARKER)
    assert BYTE_LIMITS[kind] - 6 < len(request.body) <= BYTE_LIMITS[kind]


def worst_case_event() -> Event:
    """Every part at once too long, full of characters that grow when escaped."""
    nasty = "&<>*_[]@" * 300
    data: dict[str, Any] = {f"{'k' * 150}{i}": nasty for i in range(12)}
    data |= {
        "status": "é&<" * 2000,
        "pusher": nasty,
        "url": "https://example.com/?" + "&a=1" * 500,
    }
    return make_event(app="my-app", user={"username": "x"}, type_data=data)


@pytest.mark.parametrize("kind", KINDS)
def test_everything_too_long_at_once_still_fits_every_limit(
    kind: str, receiver: Receiver, sender: SafeSender
) -> None:
    result, request = send(kind, receiver, sender, worst_case_event())
    assert result.outcome == Outcome.SENT
    payload = request.json()
    WITHIN_LIMITS[kind](payload, request.body)
    assert any(TRUNCATION_MARKER in s for s in strings(payload))


def test_slack_fields_are_capped_but_visible(receiver: Receiver, sender: SafeSender) -> None:
    _, request = send("slack", receiver, sender, worst_case_event())
    sections = [b for b in request.json()["blocks"] if "fields" in b]
    texts = [f["text"] for s in sections for f in s["fields"]]
    assert len(texts) == 10  # render() keeps ten fields, the last saying how many did not fit
    assert texts[0] == "*App*\nmy-app"
    assert all(t.endswith(TRUNCATION_MARKER) for t in texts[1:-1])
    assert texts[-1].startswith("*More*\n… and ") and texts[-1].endswith(" more fields")


# ---------------------------------------------------------------- hostile text


def hostile_event() -> Event:
    return make_event(
        app="my-app",
        type_data={"status": HOSTILE, "pusher": HOSTILE, "note": HOSTILE, "deployment_id": "5343eccd"},
    )


def _no_slack_markup(payload: dict[str, Any]) -> None:
    for text in strings(payload):
        assert "<" not in text and ">" not in text, text
    body = payload["blocks"][1]["text"]["text"]
    assert "&lt;!channel&gt;" in body
    assert "&lt;@U024BE7LH&gt;" in body
    assert "&amp; *b*" in body
    assert payload["blocks"][0]["text"]["text"].startswith("Deployment of my-app: &lt;script&gt;")


def _no_discord_markup(payload: dict[str, Any]) -> None:
    assert payload["allowed_mentions"] == {"parse": []}
    assert "content" not in payload
    for text in strings(payload["embeds"]):
        unmarked = text.replace(TRUNCATION_MARKER, "")
        assert not re.search(r"(?<!\\)[\[\]<>*_`|~]", unmarked), text
        assert "@everyone" not in text and "@here" not in text
    description = payload["embeds"][0]["description"]
    assert f"@{ZWSP}everyone @{ZWSP}here" in description
    assert r"\[click\](http://evil.example/x)" in description
    assert r"\<script\>" in description


def _no_teams_links(payload: dict[str, Any]) -> None:
    content = payload["attachments"][0]["content"]
    assert "actions" not in content
    for text in strings(content["body"]):
        assert "](" not in text and "][" not in text, text
    assert f"[click]{ZWSP}(http://evil.example/x)" in content["body"][1]["text"]


def _no_google_chat_markup(payload: dict[str, Any]) -> None:
    assert "<users/all>" not in payload["text"]
    assert f"<{ZWSP}users/all>" in payload["text"]
    for text in strings(payload["cardsV2"]):
        assert "<" not in text and ">" not in text, text
    body = payload["cardsV2"][0]["card"]["sections"][0]["widgets"][0]["textParagraph"]["text"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert '&lt;a href="http://evil.example"&gt;y&lt;/a&gt;' in body


def _no_telegram_markup(payload: dict[str, Any]) -> None:
    text = payload["text"]
    assert "<" not in re.sub(r"</?b>", "", text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert f"@{ZWSP}everyone" in text and "@everyone" not in text


def _no_x_mentions(payload: dict[str, Any]) -> None:
    text = payload["text"]
    assert f"@{ZWSP}everyone @{ZWSP}here" in text
    assert not re.search(r"(?<!\w)@(?!\u200b)", text)


NEUTRALISED: dict[str, Callable[[dict[str, Any]], None]] = {
    "slack": _no_slack_markup,
    "discord": _no_discord_markup,
    "microsoft_teams": _no_teams_links,
    "google_chat": _no_google_chat_markup,
    "telegram": _no_telegram_markup,
    "x": _no_x_mentions,
}


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_event_text_is_escaped(kind: str, receiver: Receiver, sender: SafeSender) -> None:
    result, request = send(kind, receiver, sender, hostile_event())
    assert result.outcome == Outcome.SENT
    NEUTRALISED[kind](request.json())


@pytest.mark.parametrize("kind", KINDS)
def test_an_email_address_is_not_mangled(kind: str, receiver: Receiver, sender: SafeSender) -> None:
    event = make_event("app_crashed", app="my-app", type_data={"message": "Contact ops@example.com now"})
    _, request = send(kind, receiver, sender, event)
    assert any("ops@example.com" in s for s in strings(request.json()))


def test_payloads_are_compact_utf8_json(receiver: Receiver, sender: SafeSender) -> None:
    event = make_event("app_crashed", app="my-app", type_data={"message": "déploiement échoué 🚀"})
    _, request = send("discord", receiver, sender, event)
    assert "déploiement échoué 🚀".encode() in request.body
    assert json.loads(request.body)["embeds"][0]["description"] == "déploiement échoué 🚀"
